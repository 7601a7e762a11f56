"""Everything the real bot sends is within the contract (``contract.payloads``).

Straight at Rasa's webhook, as the API talks to it: conversations that press every button the
bot offers (the guided decision support, options, values, readiness, checklist, cost,
summary, callback, every topic and answer: each button once per message that offers it),
then typed messages for what buttons cannot say (red flags at every level, a declined
request, another language, a callback's name and number). Every message's ``custom`` must
pass ``check_custom``.

"""

from __future__ import annotations

import secrets
from collections import Counter, deque

import httpx
import pytest

from contract import commands
from contract.payloads import check_custom

MAX_TURNS = 1500
TYPED = [
    "my throat is closing up and i cant breathe",
    "i want to end my life",
    "there is pus coming out of the injection spots",
    "a hard lump has stayed where they injected for weeks",
    "how many mg of minoxidil should i take",
    "combien coûte une séance ?",
    "how much does it cost and does it hurt?",
    "which of those is cheapest?",
]
CALLBACK_ANSWERS = ["Ann Example", "07700 900123", "weekday mornings"]
CALLBACK_CONSENT = "I can pass your name"  # utter_ask_callback_consent: then the typed answers
MAX_DEPTH = 4


@pytest.fixture(scope="module")
def webhook(stack: dict[str, str]) -> httpx.Client:
    with httpx.Client(base_url=stack["MESO_RASA_URL"], timeout=60,
                      headers={"Authorization": f"Bearer {stack['MESO_RASA_TOKEN']}"}) as client:
        yield client


def _send(webhook: httpx.Client, sender: str, text: str, command: bool, seen: Counter,
          problems: list) -> list[dict]:
    response = webhook.post("/webhooks/meso/webhook",
                            json={"sender": sender, "message": text, "command": command})
    assert response.status_code == 200, response.text
    messages = response.json()["messages"]
    for message in messages:
        custom = message.get("custom")
        seen.update((custom or {}).keys())
        problems.extend((text, p) for p in check_custom(custom)[1])
    return messages


Step = tuple[str, bool]  # (text, command)


def test_every_reply_of_every_guided_step_is_within_the_contract(webhook: httpx.Client) -> None:
    seen: Counter = Counter()
    problems: list = []
    pressed: set[tuple[str, str]] = set()  # (the offering message's text, the payload)
    frontier: deque[list[Step]] = deque([[]])
    turns = 0
    while frontier and turns < MAX_TURNS:
        path = frontier.popleft()  # breadth first: every guided step is reached from the start
        sender = secrets.token_urlsafe(32)
        messages = _send(webhook, sender, commands.start_command(True), True, seen, problems)
        for text, command in path:
            messages = _send(webhook, sender, text, command, seen, problems)
        turns += 1 + len(path)
        for message in messages:
            for button in message.get("buttons") or []:
                key = ((message.get("text") or "")[:60], button["payload"])
                if key in pressed:
                    continue
                pressed.add(key)
                step = [(button["payload"], True)]
                if key[0].startswith(CALLBACK_CONSENT) and button["payload"] == commands.command("affirm"):
                    step += [(answer, False) for answer in CALLBACK_ANSWERS]
                if len(path) < MAX_DEPTH:
                    frontier.append(path + step)
    sender = secrets.token_urlsafe(32)
    _send(webhook, sender, commands.start_command(False), True, seen, problems)
    for text in TYPED:
        _send(webhook, sender, text, False, seen, problems)
    # The checklist kept with consent, each answer the first button offered, to its end (the
    # record): the breadth-first walk spends its turns before it gets this deep.
    sender = secrets.token_urlsafe(32)
    _send(webhook, sender, commands.start_command(True), True, seen, problems)
    messages = _send(webhook, sender, "/start_checklist", True, seen, problems)
    messages = _send(webhook, sender, commands.command("affirm"), True, seen, problems)
    for _ in range(15):  # 11 questions, then the list with the record
        buttons = [b for m in messages for b in m.get("buttons") or []]
        if seen["record"] or not buttons:
            break
        messages = _send(webhook, sender, buttons[0]["payload"], True, seen, problems)

    assert problems == []
    # The walk reached the blocks the API acts on, and the guided steps' own blocks.
    for block in ("sources", "entry_id", "red_flag", "record", "callback", "summary", "decision",
                  "cost_estimate", "declined", "language"):
        assert seen[block], (block, sorted(seen))
    assert len(pressed) > 40, len(pressed)

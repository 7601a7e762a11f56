"""After a failed turn, the API's transcript and Rasa's tracker come back into agreement
(api/tracker_sync.py): a late reply is stored once, never asked for twice; a turn the safety
net answered while Rasa was away reaches the tracker."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from api_fakes import Harness, answer_reply, messages_url

pytestmark = pytest.mark.anyio


def user_turns(h: Harness, conversation_id: str) -> list[str | None]:
    """The ``message_id`` of every user event in the fake Rasa's tracker, in order."""
    return [e.get("message_id") for e in h.rasa.events.get(conversation_id, []) if e["event"] == "user"]


def rows(h: Harness, conversation_id: str) -> list[tuple[str, str, Any]]:
    return [(m["role"], m["text"], m["status"]) for m in h.messages(conversation_id)][2:]


async def _worker_dies_mid_turn(h: Harness, conversation_id: str, body: dict[str, Any]) -> None:
    """Send ``body``; once Rasa has kept the turn (``h.rasa.late``), abandon the request: as
    under a SIGKILL, nothing after the message's commit happens."""
    request = asyncio.create_task(h.client.post(messages_url(conversation_id), json=body))
    while not user_turns(h, conversation_id)[1:]:
        await asyncio.sleep(0.01)
    request.cancel()  # the worker is gone
    with pytest.raises(asyncio.CancelledError):
        await request
    h.rasa.late = None


async def test_a_late_reply_is_stored_once_and_a_retry_gets_it_without_asking_again(h: Harness) -> None:
    conversation_id = await h.new_conversation()
    h.rasa.late = answer_reply
    body = {"text": "is it safe?", "client_id": "m-late-0001"}

    failed = await h.client.post(messages_url(conversation_id), json=body)
    h.rasa.late = None
    calls = len(h.rasa.calls)
    retried = await h.client.post(messages_url(conversation_id), json=body)

    assert failed.status_code == 503
    assert retried.status_code == 200
    assert [m["text"] for m in retried.json()["messages"]] == ["reply to is it safe?"]
    assert len(h.rasa.calls) == calls, "Rasa had answered: it is not asked a second time"
    assert rows(h, conversation_id) == [
        ("patient", "is it safe?", "answered"),
        ("assistant", "reply to is it safe?", None),
    ]
    [patient] = [m for m in h.messages(conversation_id) if m["role"] == "patient"]
    assert user_turns(h, conversation_id)[-1] == f"m{patient['id']}"


async def test_a_turn_whose_worker_died_during_it_is_found_in_the_tracker_not_run_again(
    h: Harness,
) -> None:
    """The worker serving a turn dies while Rasa runs it (here: the request is abandoned
    once Rasa has kept the turn; nothing after the message's commit happens, as under a
    SIGKILL). The patient's Retry, on any worker, gets Rasa's answer from the tracker, and
    a new message instead of a retry settles it too."""
    conversation_id = await h.new_conversation()
    h.rasa.late = answer_reply  # Rasa keeps the turn, then never answers this request
    body = {"text": "is it safe?", "client_id": "m-died-0001"}
    await _worker_dies_mid_turn(h, conversation_id, body)
    assert rows(h, conversation_id) == [("patient", "is it safe?", "unanswered")]
    calls = len(h.rasa.calls)

    retried = await h.client.post(messages_url(conversation_id), json=body)

    assert retried.status_code == 200
    assert [m["text"] for m in retried.json()["messages"]] == ["reply to is it safe?"]
    assert len(h.rasa.calls) == calls, "Rasa had run it: it is not run a second time"
    assert len(user_turns(h, conversation_id)) == 2  # the opening and this turn, once
    assert rows(h, conversation_id) == [
        ("patient", "is it safe?", "answered"),
        ("assistant", "reply to is it safe?", None),
    ]


async def test_a_retry_that_cannot_be_checked_against_the_tracker_is_not_sent_again(
    h: Harness,
) -> None:
    """Rasa may have run the first attempt and its tracker cannot be read now: the Retry
    gets a 503 (try again) instead of running the turn a second time; once the tracker
    answers, the Retry gets Rasa's answer from it."""
    conversation_id = await h.new_conversation()
    h.rasa.late = answer_reply
    body = {"text": "is it safe?", "client_id": "m-unchecked1"}
    await _worker_dies_mid_turn(h, conversation_id, body)
    h.rasa.tracker_response = lambda sender: httpx.Response(500)
    calls = len(h.rasa.calls)

    refused = await h.client.post(messages_url(conversation_id), json=body)
    h.rasa.tracker_response = lambda sender: None
    answered = await h.client.post(messages_url(conversation_id), json=body)

    assert refused.status_code == 503 and "If it is urgent, call" in refused.json()["detail"]
    assert answered.status_code == 200
    assert [m["text"] for m in answered.json()["messages"]] == ["reply to is it safe?"]
    assert len(h.rasa.calls) == calls and len(user_turns(h, conversation_id)) == 2


async def test_a_reload_after_a_late_reply_shows_it(h: Harness) -> None:
    conversation_id = await h.new_conversation()
    h.rasa.late = answer_reply
    failed = await h.client.post(messages_url(conversation_id), json={"text": "does it hurt?"})
    h.rasa.late = None

    history = await h.client.get(messages_url(conversation_id))

    assert failed.status_code == 503
    texts = [m["text"] for m in history.json()["messages"]]
    assert texts[-2:] == ["does it hurt?", "reply to does it hurt?"]


async def test_the_safety_nets_turn_reaches_the_tracker_when_rasa_is_back(h: Harness) -> None:
    conversation_id = await h.new_conversation()

    def down(sender: str, message: str, command: bool) -> Any:
        raise httpx.ConnectError("connection refused")

    h.rasa.reply = down
    urgent = await h.client.post(messages_url(conversation_id), json={"text": "i cant breathe"})
    h.rasa.reply = answer_reply
    after = await h.client.post(messages_url(conversation_id), json={"text": "ok, what now?"})

    assert (urgent.status_code, after.status_code) == (200, 200)
    events = h.rasa.events[conversation_id]
    [net_turn] = [e for e in events if e["event"] == "user" and e.get("text") == "i cant breathe"]
    assert net_turn["parse_data"]["intent"]["name"] == "red_flag_emergency"
    bots = [e for e in events if e["event"] == "bot"]
    assert bots[-3]["text"].startswith("Call your local emergency number")
    assert bots[-3]["data"]["custom"]["red_flag"]["level"] == "emergency"
    patients = [m for m in h.messages(conversation_id) if m["role"] == "patient"]
    assert user_turns(h, conversation_id)[-2:] == [f"m{m['id']}" for m in patients]
    assert all(not m["tracker_pending"] for m in patients)


async def test_while_rasa_stays_away_the_turn_stays_marked(h: Harness) -> None:
    conversation_id = await h.new_conversation()

    def down(sender: str, message: str, command: bool) -> Any:
        raise httpx.ConnectError("connection refused")

    h.rasa.reply = down
    h.rasa.tracker_response = lambda sender: httpx.Response(500)
    first = await h.client.post(messages_url(conversation_id), json={"text": "hello?"})
    second = await h.client.post(messages_url(conversation_id), json={"text": "anyone?"})

    assert (first.status_code, second.status_code) == (503, 503)
    patients = [m for m in h.messages(conversation_id) if m["role"] == "patient"]
    assert [(m["status"], m["tracker_pending"]) for m in patients] == [
        ("unanswered", 1),
        ("unanswered", 1),
    ]

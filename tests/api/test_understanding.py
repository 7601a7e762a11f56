"""What the assistant understood, sent only to conversation tests holding the test key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from api_fakes import Harness

from api import understanding
from api.rasa_client import RasaNlu
from api.schemas import TEST_KEY_HEADER

pytestmark = pytest.mark.anyio

KEY = "k-0123456789abcdef0123"


async def _exchange(h: Harness, headers: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    created = await h.client.post("/api/v1/conversations", json={"consent": True}, headers=headers)
    assert created.status_code == 201, created.text
    cid = created.json()["conversation_id"]
    sent = await h.client.post(
        f"/api/v1/conversations/{cid}/messages", json={"text": "how much?"}, headers=headers
    )
    assert sent.status_code == 200, sent.text
    return created.json(), sent.json()


async def test_the_test_key_gets_intent_confidence_actions_and_responses(
    start: Callable[..., Any],
) -> None:
    async with start(test_key=KEY) as h:
        created, sent = await _exchange(h, {TEST_KEY_HEADER: KEY})

    assert sent["understanding"]["intent"] == "ask_cost"
    assert sent["understanding"]["confidence"] == pytest.approx(0.93)
    # The fake tracker records one bot event per message, as Rasa does.
    assert sent["understanding"]["responses"] == ["action_x"]
    assert created["understanding"]["responses"] == ["action_x", "action_x"]
    assert sent["messages"][0]["entry"] == "cost-001"


@pytest.mark.parametrize(
    ("configured", "given"),
    [(KEY, None), (KEY, "wrong-key"), (KEY, KEY.upper()), ("", ""), ("", "anything")],
)
async def test_no_understanding_without_the_right_key(
    start: Callable[..., Any], configured: str, given: str | None
) -> None:
    headers = {} if given is None else {TEST_KEY_HEADER: given}
    async with start(test_key=configured) as h:
        created, sent = await _exchange(h, headers)
        tracker_reads = [r for r in h.rasa.requests if "/tracker" in r.url.path]

    assert created["understanding"] is None
    assert sent["understanding"] is None
    assert tracker_reads == [], "no extra request to Rasa for a patient"
    assert sent["messages"][0]["entry"] == "cost-001", "the entry is public provenance"


async def test_a_tracker_failure_costs_the_details_not_the_reply(
    start: Callable[..., Any],
) -> None:
    import httpx

    async with start(test_key=KEY) as h:
        h.rasa.tracker_response = lambda sender: httpx.Response(500)
        _, sent = await _exchange(h, {TEST_KEY_HEADER: KEY})

    assert sent["messages"][0]["text"] == "reply to how much?"
    assert sent["understanding"] is None


def test_of_turn_reads_only_the_latest_turn() -> None:
    events = [
        {"event": "action", "name": "action_listen"},
        {"event": "user", "text": "first"},
        {"event": "slot", "name": "topic", "value": "pain"},
        {"event": "bot", "text": "old", "metadata": {"utter_action": "utter_old"}},
        {"event": "action", "name": "action_listen"},
        {"event": "user", "text": "second"},
        {"event": "action", "name": "checklist_form"},
        {"event": "active_loop", "name": "checklist_form"},
        {"event": "slot", "name": "requested_slot", "value": "pregnant"},
        {"event": "bot", "text": "", "data": {"custom": {"record": {}}}},
        {"event": "bot", "text": "", "data": {"buttons": [{"title": "Yes", "payload": "/y"}]},
         "metadata": {"utter_action": "utter_ask_pregnant"}},
        {"event": "bot", "text": "composed", "metadata": {}},
        {"event": "action", "name": "action_listen"},
    ]

    result = understanding.of_turn(events, RasaNlu(intent="start_checklist", confidence=0.8))

    assert result.intent == "start_checklist"
    assert result.actions == ["checklist_form"]
    assert result.slots == {"requested_slot": "pregnant"}
    # The empty data-only message is not shown, so it has no place in ``responses``.
    assert result.responses == ["utter_ask_pregnant", None]

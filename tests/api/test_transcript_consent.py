"""Transcript consent: without it no message and no red-flag mark is stored, while the
dialogue, callback requests, the record and the summary still work."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from api_fakes import (
    SummaryLinkTo,
    CALLBACK_REQUEST as CALLBACK,
    COST_PAYLOAD,
    PAIN_PAYLOAD,
    SUMMARY_DOC as SUMMARY,
    Harness,
    default_reply,
    messages_url,
    sent,
)

pytestmark = pytest.mark.anyio

async def say(h: Harness, conversation_id: str, text: str, **extra: Any) -> list[dict[str, Any]]:
    response = await h.client.post(messages_url(conversation_id), json={"text": text, **extra})
    assert response.status_code == 200, response.text
    return list(response.json()["messages"])


def conversation(h: Harness, conversation_id: str) -> Any:
    [row] = h.rows("SELECT * FROM conversations WHERE id = ?", conversation_id)
    return row


async def test_messages_are_answered_but_never_stored(h: Harness) -> None:
    conversation_id = await h.new_conversation(consent=False)
    created = conversation(h, conversation_id)["last_activity_at"]

    replies = await say(h, conversation_id, "How much is it?")

    assert replies[0]["text"] == "reply to How much is it?"
    assert replies[0]["sources"] and replies[0]["topic"] == "cost"
    assert [m["id"] for m in replies] == [None]
    assert h.rows("SELECT * FROM messages") == []
    row = conversation(h, conversation_id)
    assert row["last_activity_at"] > created, "activity is tracked, to know when to delete"
    assert row["transcript_consent"] == 0


async def test_red_flags_are_shown_but_not_recorded(h: Harness) -> None:
    conversation_id = await h.new_conversation(consent=False)
    h.rasa.reply = lambda sender, message, command: {
        "messages": [
            {"text": "Call 999 now.", "custom": {"red_flag": {"level": "emergency"}}},
            {"text": "Then tell the clinic."},
        ]
    }

    replies = await say(h, conversation_id, "my throat is closing")

    assert [m["red_flag"] for m in replies] == ["emergency", "emergency"]
    row = conversation(h, conversation_id)
    assert (row["red_flag_level"], row["red_flag_at"]) == (None, None)
    assert h.rows("SELECT * FROM messages") == []


async def test_a_red_flag_the_safety_net_answers_is_not_recorded_either(h: Harness) -> None:
    conversation_id = await h.new_conversation(consent=False)
    h.rasa.reply = lambda sender, message, command: {
        "messages": [{"custom": {"red_flag": {"level": "crisis"}}}]
    }

    response = await h.client.post(messages_url(conversation_id), json={"text": "help"})

    assert response.status_code == 200
    assert response.json()["messages"][0]["red_flag"] == "crisis"
    assert conversation(h, conversation_id)["red_flag_level"] is None
    assert h.rows("SELECT * FROM messages") == []


async def test_callbacks_record_and_summary_are_kept_with_their_own_consent(h: Harness) -> None:
    conversation_id = await h.new_conversation(consent=False)
    h.rasa.reply = lambda sender, message, command: {
        "messages": [
            {"text": "Noted.", "custom": {"record": {"checklist": {"pregnant": False}}}},
            {"text": "The clinic will call you.", "custom": {"callback": CALLBACK}},
            {"custom": {"summary": SUMMARY}},
            {"text": "Here is your summary."},
        ]
    }

    replies = await say(h, conversation_id, "/affirm")

    summary_link = SummaryLinkTo(conversation_id)
    assert [m["summary_url"] for m in replies] == [None, None, summary_link]
    row = conversation(h, conversation_id)
    assert json.loads(row["record"]) == {"checklist": {"pregnant": False}}
    assert json.loads(row["summary"])["title"] == SUMMARY["title"]
    [callback] = h.rows(
        "SELECT * FROM callback_requests WHERE conversation_id = ?", conversation_id
    )
    assert (callback["name"], callback["status"]) == ("Ann Example", "open")
    page = await h.client.get(replies[2]["summary_url"])
    assert page.status_code == 200 and "Ask for a written quote." in page.text
    assert h.rows("SELECT * FROM messages") == []


async def test_a_button_press_is_recognised_from_rasas_tracker(h: Harness) -> None:
    conversation_id = await h.new_conversation(consent=False)

    await say(h, conversation_id, PAIN_PAYLOAD)

    assert sent(h.rasa.calls[-1]) == {"sender": conversation_id, "message": PAIN_PAYLOAD, "command": True}
    tracker_reads = [r for r in h.rasa.requests if r.url.path.endswith("/tracker")]
    assert len(tracker_reads) == 1
    assert tracker_reads[0].url.params["token"] == "test-token-123"

    # The answer offered no buttons, so the opening's buttons are no longer on offer.
    await say(h, conversation_id, COST_PAYLOAD)
    assert h.rasa.calls[-1]["command"] is False


async def test_plain_words_do_not_read_the_tracker(h: Harness) -> None:
    conversation_id = await h.new_conversation(consent=False)
    await say(h, conversation_id, "does it hurt?")
    assert not [r for r in h.rasa.requests if r.url.path.endswith("/tracker")]
    assert h.rasa.calls[-1]["command"] is False


async def test_a_button_still_counts_after_an_unanswered_press(h: Harness) -> None:
    conversation_id = await h.new_conversation(consent=False)
    h.rasa.reply = lambda sender, message, command: {"messages": [{}]}  # nothing to show
    failed = await h.client.post(messages_url(conversation_id), json={"text": COST_PAYLOAD})
    h.rasa.reply = default_reply

    await say(h, conversation_id, COST_PAYLOAD)

    assert failed.status_code == 503
    assert sent(h.rasa.calls[-1]) == {"sender": conversation_id, "message": COST_PAYLOAD, "command": True}


async def test_rasa_down_while_reading_the_buttons_gives_503(h: Harness) -> None:
    conversation_id = await h.new_conversation(consent=False)
    h.rasa.tracker_response = lambda sender: httpx.Response(500)
    calls = len(h.rasa.calls)

    response = await h.client.post(messages_url(conversation_id), json={"text": PAIN_PAYLOAD})

    assert response.status_code == 503 and list(response.json()) == ["detail"]
    assert len(h.rasa.calls) == calls


async def test_client_ids_are_accepted_but_nothing_is_kept_to_repeat(h: Harness) -> None:
    conversation_id = await h.new_conversation(consent=False)

    first = await say(h, conversation_id, "hello", client_id="msg-00000001")
    second = await say(h, conversation_id, "hello", client_id="msg-00000001")

    assert first == second
    assert [c["message"] for c in h.rasa.calls[1:]] == ["hello", "hello"]
    assert h.rows("SELECT * FROM messages") == []


async def test_with_consent_everything_is_stored_with_the_client_hints(h: Harness) -> None:
    response = await h.client.post(
        "/api/v1/conversations",
        json={"consent": True, "conversation_id": "ignored"},
        headers={"Origin": "https://www.example-clinic.test"},
    )
    conversation_id = response.json()["conversation_id"]
    await say(h, conversation_id, "hello")

    row = conversation(h, conversation_id)
    assert row["transcript_consent"] == 1 and row["consent_at"] is not None
    assert row["origin"] == "https://www.example-clinic.test"
    assert len(h.messages(conversation_id)) == 4

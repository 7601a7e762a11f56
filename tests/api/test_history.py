"""Reading a conversation back (GET .../messages): from the API's record with transcript
consent, from Rasa's tracker without."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from api_fakes import PAIN_PAYLOAD, SUMMARY_DOC as SUMMARY, Harness, default_reply, SummaryLinkTo

from api.models import Conversation, utcnow

pytestmark = pytest.mark.anyio

def url(conversation_id: str) -> str:
    return f"/api/v1/conversations/{conversation_id}/messages"


def flagging_reply(sender: str, message: str, command: bool) -> dict[str, Any]:
    if message == "my lips are swelling":
        return {
            "messages": [
                {"text": "Call 999 now.", "custom": {"red_flag": {"level": "emergency"}}},
                {"text": "Tell the clinic too."},
            ]
        }
    if message == "/get_summary":
        return {
            "messages": [
                {"custom": {"summary": SUMMARY}},
                {"text": "Your summary is ready."},
            ]
        }
    return default_reply(sender, message, command)


async def talk(h: Harness, conversation_id: str) -> list[dict[str, Any]]:
    """Press a button, report a red flag, ask for the summary; return every reply."""
    h.rasa.reply = flagging_reply
    replies: list[dict[str, Any]] = []
    for text in (PAIN_PAYLOAD, "my lips are swelling", "/get_summary"):
        response = await h.client.post(url(conversation_id), json={"text": text})
        assert response.status_code == 200, response.text
        replies += response.json()["messages"]
    return replies


def shape(messages: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(m["role"], m["text"], m["red_flag"], m["summary_url"]) for m in messages]


@pytest.mark.parametrize("consent", [True, False], ids=["consent", "no consent"])
async def test_history_redraws_the_whole_conversation(h: Harness, consent: bool) -> None:
    created = await h.client.post("/api/v1/conversations", json={"consent": consent})
    conversation_id = created.json()["conversation_id"]
    opening = created.json()["messages"]
    replies = await talk(h, conversation_id)

    response = await h.client.get(url(conversation_id))

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["consent"] is consent
    link = SummaryLinkTo(conversation_id)
    # Typed text starting with '/' reaches Rasa as words, without the slash: only the
    # API's own record has it as typed.
    typed = "/get_summary" if consent else "get_summary"
    assert shape(body["messages"]) == [
        ("assistant", opening[0]["text"], None, None),
        ("assistant", opening[1]["text"], None, None),
        ("patient", "Does it hurt?", None, None),  # the button's title, not its payload
        ("assistant", f"reply to {PAIN_PAYLOAD}", None, None),
        ("patient", "my lips are swelling", None, None),
        ("assistant", "Call 999 now.", "emergency", None),
        ("assistant", "Tell the clinic too.", "emergency", None),
        ("patient", typed, None, None),
        ("assistant", "Your summary is ready.", None, link),
    ]
    assistant = [m for m in body["messages"] if m["role"] == "assistant"]
    assert [{k: v for k, v in m.items() if k != "feedback"} for m in assistant] == [
        {k: v for k, v in m.items() if k != "feedback"} for m in opening + replies
    ], "assistant messages look as they did when sent"
    if consent:
        assert [m["id"] for m in body["messages"]] == [str(i) for i in range(1, 10)]
    else:
        assert all(m["id"] is None for m in body["messages"])


async def test_stored_history_shows_ratings(h: Harness) -> None:
    conversation_id = await h.new_conversation()
    sent = await h.client.post(url(conversation_id), json={"text": "cost?"})
    [answer] = sent.json()["messages"]
    rated = await h.client.post(
        f"/api/v1/conversations/{conversation_id}/feedback",
        json={"message_id": answer["id"], "rating": "down"},
    )
    assert rated.status_code == 204

    messages = (await h.client.get(url(conversation_id))).json()["messages"]

    assert [m["feedback"] for m in messages] == [None, None, None, "down"]


async def test_without_consent_the_tracker_is_read_with_the_token(
    h: Harness,
) -> None:
    conversation_id = await h.new_conversation(consent=False)
    h.rasa.events[conversation_id].append(
        {"event": "bot", "text": "A summary.", "data": {"custom": {"summary": SUMMARY}}}
    )
    h.rasa.events[conversation_id].append({"event": "slot", "name": "x", "value": 1})
    h.rasa.events[conversation_id].append({"event": "bot", "text": None, "data": {"buttons": "?"}})

    messages = (await h.client.get(url(conversation_id))).json()["messages"]

    [read] = [r for r in h.rasa.requests if r.url.path.endswith("/tracker")]
    assert read.url.path == f"/conversations/{conversation_id}/tracker"
    assert read.url.params["token"] == "test-token-123"
    assert read.url.params["include_events"] == "ALL"
    assert messages[-1]["text"] == "A summary."
    assert messages[-1]["summary_url"] is None, "the summary was never stored by the API"
    assert [m["role"] for m in messages] == ["assistant"] * 3


async def test_the_start_command_is_never_shown(h: Harness) -> None:
    conversation_id = await h.new_conversation(consent=False)
    messages = (await h.client.get(url(conversation_id))).json()["messages"]
    assert all("start_conversation" not in m["text"] for m in messages)
    assert [m["role"] for m in messages] == ["assistant", "assistant"]


async def test_rasa_down_gives_503(h: Harness) -> None:
    conversation_id = await h.new_conversation(consent=False)
    h.rasa.tracker_response = lambda sender: httpx.Response(200, text="<html>")
    response = await h.client.get(url(conversation_id))
    assert response.status_code == 503 and list(response.json()) == ["detail"]


@pytest.mark.parametrize("which", ["unknown", "malformed", "expired"])
async def test_unknown_malformed_or_expired_ids_are_404(h: Harness, which: str) -> None:
    conversation_id = await h.new_conversation(consent=which != "expired")
    if which == "unknown":
        conversation_id = "B" * 43
    elif which == "malformed":
        conversation_id = "not-an-id"
    else:
        async with h.app.state.runtime.sessionmaker() as session:
            row = await session.get(Conversation, conversation_id)
            assert row is not None
            row.expired_at = utcnow()
            await session.commit()
    reads = len(h.rasa.requests)

    response = await h.client.get(url(conversation_id))

    assert response.status_code == 404
    assert response.json()["detail"].startswith("This conversation does not exist.")
    assert len(h.rasa.requests) == reads
    if which == "expired":
        sent = await h.client.post(url(conversation_id), json={"text": "hello?"})
        assert sent.status_code == 404


async def test_history_is_rate_limited_per_client(start: Callable[..., Any]) -> None:
    async with start(rate_limit_history_per_minute=2) as h:
        conversation_id = await h.new_conversation()
        statuses = [(await h.client.get(url(conversation_id))).status_code for _ in range(2)]
        limited = await h.client.get(url("B" * 43))  # guesses count too

    assert statuses == [200, 200]
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 60

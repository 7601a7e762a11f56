"""The conversation's token, not its id, opens it; the public API lets a long-idle
conversation go; the patient can delete their own conversation."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from api_fakes import (
    CALLBACK_REQUEST,
    SUMMARY_DOC,
    Harness,
    messages_url,
    rasa_tracker_db,
    tracker_counts,
)
from staff_fakes import StaffClient

from api.models import Base, Conversation, utcnow
from api.patient_auth import bearer
from api.routes.access import ENDED_DETAIL, NOT_FOUND_DETAIL

pytestmark = pytest.mark.anyio

SECRET_TEXT = "my scalp has been itchy since Tuesday"


def calls(conversation_id: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    """Every public call on one conversation: method, URL, JSON body."""
    base = f"/api/v1/conversations/{conversation_id}"
    return [
        ("POST", f"{base}/messages", {"text": "hello"}),
        ("GET", f"{base}/messages", None),
        ("POST", f"{base}/feedback", {"message_id": "2", "rating": "up"}),
        ("GET", f"{base}/summary.json", None),
        ("DELETE", base, None),
    ]


async def with_summary_and_callback(h: Harness) -> str:
    conversation_id = await h.new_conversation()
    h.rasa.reply = lambda sender, message, command: {
        "messages": [
            {"text": "We will call you.", "custom": {"callback": CALLBACK_REQUEST}},
            {"text": "Here is your summary.", "custom": {"summary": SUMMARY_DOC}},
        ]
    }
    sent = await h.client.post(messages_url(conversation_id), json={"text": SECRET_TEXT})
    assert sent.status_code == 200
    return conversation_id


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer ", "Bearer wrong-token-wrong-token-wrong-token-wrong-tok", "Basic {token}",
     "{token}", "Bearer {other}"],
    ids=["none", "empty", "wrong", "other scheme", "no scheme", "another conversation's"],
)
async def test_the_id_alone_opens_nothing_and_changes_nothing(
    h: Harness, authorization: str | None
) -> None:
    conversation_id = await with_summary_and_callback(h)
    other = await h.new_conversation()
    before = h.snapshot()
    rasa_calls = len(h.rasa.requests)

    for method, url, body in calls(conversation_id):
        headers = {}
        if authorization is not None:
            headers["Authorization"] = authorization.format(
                token=h.token(conversation_id), other=h.token(other)
            )
        response = await h.client.request(method, url, json=body, headers=headers, auth=None)
        assert response.status_code == 404, (method, url)
        assert response.json() == {"detail": NOT_FOUND_DETAIL}, (method, url)
        assert SECRET_TEXT not in response.text

    # Not even in the query string, where a proxy would log it.
    query = await h.client.get(
        f"{messages_url(conversation_id)}?token={h.token(conversation_id)}", auth=None
    )
    assert query.status_code == 404
    assert h.snapshot() == before
    assert len(h.rasa.requests) == rasa_calls


async def test_the_token_opens_every_call_and_is_stored_only_as_a_hash(h: Harness) -> None:
    conversation_id = await with_summary_and_callback(h)
    token = h.token(conversation_id)

    assert token != conversation_id and len(token) >= 43
    history = await h.client.get(messages_url(conversation_id), headers=bearer(token), auth=None)
    assert history.status_code == 200 and SECRET_TEXT in history.text
    document = await h.client.get(
        f"/api/v1/conversations/{conversation_id}/summary.json", headers=bearer(token), auth=None
    )
    assert document.status_code == 200
    assert token.encode() not in await h.stored_bytes()
    [row] = h.rows("SELECT token_hash FROM conversations WHERE id = ?", conversation_id)
    assert row["token_hash"] and token not in row["token_hash"]


async def test_each_conversation_gets_its_own_token(h: Harness) -> None:
    first = await h.client.post("/api/v1/conversations", json={"consent": True})
    second = await h.client.post("/api/v1/conversations", json={"consent": True})
    tokens = {first.json()["token"], second.json()["token"]}
    assert len(tokens) == 2
    assert first.json()["conversation_id"] not in tokens


async def test_a_long_idle_conversation_is_no_longer_served_but_staff_still_see_it(
    start: Callable[..., Any], admin_client: StaffClient, h: Harness
) -> None:
    conversation_id = await with_summary_and_callback(h)
    link = (await h.client.get(messages_url(conversation_id))).json()["messages"][-1][
        "summary_url"
    ]
    assert link and (await h.client.get(link)).status_code == 200
    resume = h.app.state.runtime.settings.resume_hours
    assert resume == 24  # the default
    idle = utcnow() - timedelta(hours=resume, minutes=1)
    async with h.app.state.runtime.sessionmaker() as session:
        conversation = await session.get(Conversation, conversation_id)
        assert conversation is not None
        conversation.last_activity_at = idle
        await session.commit()

    for method, url, body in calls(conversation_id):
        response = await h.client.request(method, url, json=body)
        assert response.status_code == 404, (method, url)
        assert response.json() == {"detail": ENDED_DETAIL}
    page = await h.client.get(link)  # the link has not expired, the conversation has
    assert page.status_code == 404
    assert h.rows("SELECT id FROM conversations WHERE id = ?", conversation_id)
    transcript = await admin_client.client.get(f"/staff/conversations/{conversation_id}")
    assert transcript.status_code == 200 and SECRET_TEXT in transcript.text
    summary = await admin_client.client.get(f"/staff/conversations/{conversation_id}/summary")
    assert summary.status_code == 200 and SUMMARY_DOC["title"] in summary.text


async def test_the_resume_window_is_a_setting(start: Callable[..., Any]) -> None:
    async with start(resume_hours=0.001) as h:  # 3.6 seconds
        conversation_id = await h.new_conversation()
        async with h.app.state.runtime.sessionmaker() as session:
            conversation = await session.get(Conversation, conversation_id)
            assert conversation is not None
            conversation.last_activity_at = utcnow() - timedelta(seconds=5)
            await session.commit()
        response = await h.client.get(messages_url(conversation_id))
    assert response.status_code == 404 and response.json()["detail"] == ENDED_DETAIL


async def test_the_patient_deletes_their_conversation_everywhere(
    h: Harness, tracker_path: Path
) -> None:
    erased = await with_summary_and_callback(h)
    kept = await with_summary_and_callback(h)
    rasa_tracker_db(tracker_path, {erased: 4, kept: 2})

    response = await h.client.delete(f"/api/v1/conversations/{erased}")

    assert response.status_code == 204 and response.content == b""
    for table in (t for t in Base.metadata.sorted_tables if "conversation_id" in t.c):
        assert h.rows(f"SELECT * FROM {table.name} WHERE conversation_id = ?", erased) == []
    assert h.rows("SELECT id FROM conversations WHERE id = ?", erased) == []
    assert h.rows("SELECT id FROM conversations WHERE id = ?", kept)
    assert tracker_counts(tracker_path) == {kept: 2}
    [entry] = h.rows("SELECT * FROM audit_log WHERE action = 'conversation_erased'")
    assert (entry["actor_name"], entry["target_id"]) == ("patient", erased)
    assert SECRET_TEXT not in entry["detail"]
    # The token opens nothing any more; a second delete is a plain 404.
    for method, url, body in calls(erased):
        assert (await h.client.request(method, url, json=body)).status_code == 404

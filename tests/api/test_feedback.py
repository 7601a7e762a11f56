"""Thumbs up or down on an answer, stored on the assistant message for staff."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from api_fakes import Harness

pytestmark = pytest.mark.anyio


def url(conversation_id: str) -> str:
    return f"/api/v1/conversations/{conversation_id}/feedback"


async def answered(h: Harness) -> tuple[str, str]:
    """A conversation with transcript consent and the id of an answer in it."""
    conversation_id = await h.new_conversation()
    response = await h.client.post(
        f"/api/v1/conversations/{conversation_id}/messages", json={"text": "cost?"}
    )
    return conversation_id, response.json()["messages"][0]["id"]


def rating(h: Harness, conversation_id: str, message_id: str) -> tuple[Any, Any]:
    [row] = h.rows(
        "SELECT feedback, feedback_at FROM messages WHERE conversation_id = ? AND seq = ?",
        conversation_id,
        int(message_id),
    )
    return row["feedback"], row["feedback_at"]


async def test_a_rating_is_stored_replaced_and_withdrawn(h: Harness) -> None:
    conversation_id, message_id = await answered(h)

    for value in ("up", "down", None):
        response = await h.client.post(
            url(conversation_id), json={"message_id": message_id, "rating": value}
        )
        assert response.status_code == 204 and response.content == b""
        stored, at = rating(h, conversation_id, message_id)
        assert stored == value and at is not None


async def test_opening_messages_can_be_rated_too(h: Harness) -> None:
    conversation_id = await h.new_conversation()
    response = await h.client.post(url(conversation_id), json={"message_id": "2", "rating": "up"})
    assert response.status_code == 204
    assert rating(h, conversation_id, "2")[0] == "up"


async def test_only_the_rated_message_changes(h: Harness) -> None:
    conversation_id, message_id = await answered(h)
    await answered(h)  # another conversation with a message of the same id
    await h.client.post(url(conversation_id), json={"message_id": message_id, "rating": "up"})
    rated = h.rows("SELECT conversation_id, seq FROM messages WHERE feedback IS NOT NULL")
    assert [tuple(r) for r in rated] == [(conversation_id, int(message_id))]


@pytest.mark.parametrize(
    ("case", "target", "message_id", "detail"),
    [
        ("unknown conversation", "unknown", "4", "This conversation does not exist."),
        ("malformed id", "malformed", "4", "This conversation does not exist."),
        ("unknown message", "own", "99", "This answer is not in the conversation"),
        ("not a number", "own", "4a", "This answer is not in the conversation"),
        ("a patient message", "own", "3", "This answer is not in the conversation"),
        ("without consent", "unconsented", "1", "Answers can be rated only"),
    ],
)
async def test_what_cannot_be_rated_is_404_and_changes_nothing(
    h: Harness, case: str, target: str, message_id: str, detail: str
) -> None:
    conversation_id, _ = await answered(h)
    targets = {
        "own": conversation_id,
        "unknown": "B" * 43,
        "malformed": "nope",
        "unconsented": await h.new_conversation(consent=False),
    }
    before = h.snapshot()

    response = await h.client.post(
        url(targets[target]), json={"message_id": message_id, "rating": "up"}
    )

    assert response.status_code == 404, case
    assert response.json()["detail"].startswith(detail)
    assert h.snapshot() == before


@pytest.mark.parametrize(
    "body",
    [
        {"message_id": "4", "rating": "meh"},
        {"message_id": "4"},
        {"rating": "up"},
        {"message_id": 4, "rating": "up"},
        {"message_id": "4" * 40, "rating": "up"},
        ["4", "up"],
    ],
)
async def test_a_bad_body_is_422_and_changes_nothing(h: Harness, body: Any) -> None:
    conversation_id, _ = await answered(h)
    before = h.snapshot()

    response = await h.client.post(url(conversation_id), json=body)

    assert response.status_code == 422
    assert list(response.json()) == ["detail"]
    assert h.snapshot() == before


async def test_ratings_count_towards_the_conversations_rate_limit(
    start: Callable[..., Any],
) -> None:
    async with start(rate_limit_messages_per_minute=2) as h:
        conversation_id, message_id = await answered(h)  # one message
        ok = await h.client.post(
            url(conversation_id), json={"message_id": message_id, "rating": "up"}
        )
        limited = await h.client.post(
            url(conversation_id), json={"message_id": message_id, "rating": "down"}
        )

    assert (ok.status_code, limited.status_code) == (204, 429)
    assert "Retry-After" in limited.headers

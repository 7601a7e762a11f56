"""An admin erases a conversation: nothing of it is left in any table of the API's
database, nor in Rasa's tracker store; the audit log keeps its id and counts only."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from api_fakes import CALLBACK_REQUEST, Harness, rasa_tracker_db, tracker_counts
from staff_fakes import StaffClient

from api.models import Base, ConversationTag, StaffNote

pytestmark = pytest.mark.anyio

SECRET_TEXT = "my scalp is itchy since Tuesday"


async def conversation_with_everything(h: Harness) -> str:
    """A consented conversation with messages, a callback request, a tag and a note."""
    conversation_id = await h.new_conversation(consent=True)
    h.rasa.reply = lambda sender, message, command: {
        "messages": [{"text": "We will call you.", "custom": {"callback": CALLBACK_REQUEST}}]
    }
    sent = await h.client.post(
        f"/api/v1/conversations/{conversation_id}/messages", json={"text": SECRET_TEXT}
    )
    assert sent.status_code == 200
    async with h.app.state.runtime.sessionmaker() as session:
        session.add(ConversationTag(conversation_id=conversation_id, tag="itch", created_by="A"))
        session.add(StaffNote(conversation_id=conversation_id, author_name="A", text="call her"))
        await session.commit()
    return conversation_id


def every_value(db_path: Path) -> dict[str, list[str]]:
    """Every value of every row of every table, as text, by table."""
    connection = sqlite3.connect(db_path)
    try:
        tables = [
            name
            for (name,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return {
            table: [
                str(value) for row in connection.execute(f"SELECT * FROM {table}") for value in row
            ]
            for table in tables
        }
    finally:
        connection.close()


async def test_erasure_leaves_nothing_of_the_conversation_anywhere(
    h: Harness, admin_client: StaffClient, tracker_path: Path
) -> None:
    erased = await conversation_with_everything(h)
    kept = await conversation_with_everything(h)
    rasa_tracker_db(tracker_path, {erased: 5, kept: 3})

    tables = [t for t in Base.metadata.sorted_tables if "conversation_id" in t.c]
    counts = {
        t.name: len(h.rows(f"SELECT * FROM {t.name} WHERE conversation_id = ?", erased))
        for t in tables
    }
    assert counts["messages"] >= 2 and counts["callback_requests"] >= 1
    page = await admin_client.client.get(f"/staff/admin/conversations/{erased}/erase")
    assert page.status_code == 200
    assert erased in page.text
    for label, table in [
        ("messages", "messages"),
        ("callback requests", "callback_requests"),
        ("tags", "conversation_tags"),
        ("staff notes", "staff_notes"),
    ]:
        assert f"{counts[table]} {label}" in page.text
    assert h.rows("SELECT id FROM conversations WHERE id = ?", erased), "the page erases nothing"

    response = await admin_client.post(f"/staff/admin/conversations/{erased}/erase")
    assert response.status_code == 303
    assert response.headers["location"] == "/staff"

    assert h.rows("SELECT id FROM conversations WHERE id = ?", erased) == []
    assert {t.name for t in tables} >= {
        "messages",
        "callback_requests",
        "conversation_tags",
        "staff_notes",
    }
    for table in tables:
        assert h.rows(f"SELECT * FROM {table.name} WHERE conversation_id = ?", erased) == []
        assert h.rows(f"SELECT * FROM {table.name} WHERE conversation_id = ?", kept), table.name
    # Not even a stray copy: only the audit log names the id, and no table holds the text.
    values = every_value(h.db_path)
    for table, cells in values.items():
        if table != "audit_log":
            assert not any(erased in cell for cell in cells), table
        assert not any(SECRET_TEXT in cell for cell in cells if table != "messages"), table
    assert tracker_counts(tracker_path) == {kept: 3}

    [entry] = h.rows("SELECT * FROM audit_log WHERE action = 'conversation_erased'")
    assert (entry["actor_name"], entry["target_type"], entry["target_id"]) == (
        "admin",
        "conversation",
        erased,
    )
    assert json.loads(entry["detail"]) == {**counts, "rasa_events": 5}


async def test_erasing_an_unknown_or_erased_conversation_is_a_404(
    h: Harness, admin_client: StaffClient
) -> None:
    conversation_id = await h.new_conversation()
    url = f"/staff/admin/conversations/{conversation_id}/erase"
    assert (await admin_client.post(url)).status_code == 303
    again = await admin_client.post(url)
    assert again.status_code == 404
    assert "no such conversation" in again.text
    assert (await admin_client.client.get(url)).status_code == 404
    bad = await admin_client.client.get("/staff/admin/conversations/not..an..id/erase")
    assert bad.status_code == 404
    assert len(h.rows("SELECT * FROM audit_log WHERE action = 'conversation_erased'")) == 1


async def test_a_reviewer_cannot_erase(
    h: Harness, reviewer_client: StaffClient, tracker_path: Path
) -> None:
    conversation_id = await conversation_with_everything(h)
    rasa_tracker_db(tracker_path, {conversation_id: 2})
    response = await reviewer_client.post(f"/staff/admin/conversations/{conversation_id}/erase")
    assert response.status_code == 403
    assert h.rows("SELECT id FROM conversations WHERE id = ?", conversation_id)
    assert tracker_counts(tracker_path) == {conversation_id: 2}

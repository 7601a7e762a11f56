"""The database layer: SQLite set-up, PostgreSQL's lock timeout, UTC timestamps, cascade deletes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from api_fakes import REFUSED, Harness
from sqlalchemy import select, text

from api.db import API_BUSY_TIMEOUT_MS, create_engine, create_sessionmaker, sqlite_file, upgrade_head
from api.models import Conversation

pytestmark = pytest.mark.anyio


async def test_sqlite_file_and_folder_are_created_with_wal_busy_timeout_and_foreign_keys(
    tmp_path: Path,
) -> None:
    database = tmp_path / "new" / "folder" / "meso.db"
    engine = create_engine(f"sqlite+aiosqlite:///{database}")
    try:
        async with engine.connect() as connection:
            assert (await connection.scalar(text("PRAGMA journal_mode"))) == "wal"
            assert (await connection.scalar(text("PRAGMA busy_timeout"))) == API_BUSY_TIMEOUT_MS
            assert (await connection.scalar(text("PRAGMA foreign_keys"))) == 1
    finally:
        await engine.dispose()
    assert database.exists()


async def test_a_postgresql_connection_waits_at_most_the_busy_timeout_for_a_lock(
    postgres_url: str,
) -> None:
    """As a busy SQLite file makes a statement fail after the busy timeout, so does a lock
    on PostgreSQL (``lock_timeout``): the safety net answers while there is still time."""
    engine = create_engine(postgres_url)
    try:
        async with engine.connect() as connection:
            assert await connection.scalar(text("SHOW lock_timeout")) == f"{API_BUSY_TIMEOUT_MS}ms"
    finally:
        await engine.dispose()


def test_sqlite_file_is_found_only_for_file_urls(tmp_path: Path) -> None:
    assert sqlite_file(f"sqlite+aiosqlite:///{tmp_path}/a.db") == tmp_path / "a.db"
    assert sqlite_file("sqlite+aiosqlite://") is None
    assert sqlite_file("sqlite+aiosqlite:///:memory:") is None
    assert sqlite_file("postgresql+asyncpg://u:p@db/meso") is None


async def test_timestamps_come_back_aware_utc_and_naive_ones_are_refused(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'ts.db'}")
    try:
        await upgrade_head(engine)
        maker = create_sessionmaker(engine)
        paris = timezone(timedelta(hours=1))
        async with maker() as session:
            session.add(
                Conversation(id="c" * 43, created_at=datetime(2026, 1, 1, 13, 0, tzinfo=paris))
            )
            await session.commit()
        async with maker() as session:
            conversation = await session.scalar(select(Conversation))
            assert conversation is not None
            assert conversation.created_at == datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
            assert conversation.created_at.tzinfo is not None
            assert conversation.updated_at.utcoffset() == timedelta(0)
        async with maker() as session:
            session.add(Conversation(id="d" * 43, created_at=datetime(2026, 1, 1)))
            with pytest.raises(Exception, match="naive datetime"):
                await session.commit()
    finally:
        await engine.dispose()


async def test_deleting_a_conversation_deletes_its_messages(h: Harness) -> None:
    keep = await h.new_conversation()
    erase = await h.new_conversation()
    await h.client.post(f"/api/v1/conversations/{erase}/messages", json={"text": "hi"})

    async with h.app.state.runtime.engine.begin() as connection:
        await connection.execute(text("DELETE FROM conversations WHERE id = :id"), {"id": erase})

    assert h.messages(erase) == []
    assert len(h.messages(keep)) == 2


async def test_seq_is_unique_per_conversation(h: Harness) -> None:
    conversation_id = await h.new_conversation()
    insert = ("INSERT INTO messages (conversation_id, seq, role, text, created_at) "
              "VALUES (?, ?, ?, 'x', ?)")
    when = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(REFUSED):
        h.execute(insert, conversation_id, 1, "patient", when)  # seq 1 is taken
    with pytest.raises(REFUSED):
        h.execute(insert, conversation_id, 99, "doctor", when)  # not a role
    h.execute(insert, conversation_id, 99, "patient", when)  # what both change: accepted
    assert [m["seq"] for m in h.messages(conversation_id)][-1] == 99

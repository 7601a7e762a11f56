"""The database layer: SQLite set-up, UTC timestamps, cascade deletes."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from api_fakes import Harness
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
    connection = sqlite3.connect(h.db_path)
    try:
        with pytest.raises(sqlite3.IntegrityError):
            connection.execute(
                "INSERT INTO messages (conversation_id, seq, role, text, created_at) "
                "VALUES (?, 1, 'patient', 'x', '2026-01-01 00:00:00')",
                (conversation_id,),
            )
        with pytest.raises(sqlite3.IntegrityError):
            connection.execute(
                "INSERT INTO messages (conversation_id, seq, role, text, created_at) "
                "VALUES (?, 99, 'doctor', 'x', '2026-01-01 00:00:00')",
                (conversation_id,),
            )
    finally:
        connection.close()

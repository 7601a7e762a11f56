"""Erased text is gone from the database files themselves, not only from the tables.

A conversation's distinctive text (its messages, a callback request, a staff note, the
record, the summary, Rasa's events) is written, the conversation is erased (an admin's
erasure, a retention run, the idle purge), and then the raw bytes of both databases are
searched: Rasa's SQLite files (``.db``, ``-wal``, ``-shm``, ``-journal``) and the API's, a
SQLite file likewise or, on PostgreSQL, the table and index files of its database (after a
``CHECKPOINT`` has written the server's buffers to them; the server's write-ahead log is not
searched: it keeps its copy until the segment is recycled, see ``api.db.scrub_erased``). The
text must be nowhere, while a kept conversation's text is still found. Without ``PRAGMA
secure_delete`` (SQLite's free space) or without the scrub after the erasure (the WAL
checkpoint: older frames of the ``-wal`` file; PostgreSQL's VACUUM: the deleted tuples) the
text would still be there: the control tests at the end prove that the search sees it then.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from api_fakes import (
    CALLBACK_REQUEST,
    SUMMARY_DOC,
    Harness,
    default_reply,
    rasa_tracker_db,
    tracker_counts,
)
from sqlalchemy import update

import api.db
import api.retention
import api.tracker_store
from api.models import Conversation, StaffNote, utcnow
from api.retention import purge_unconsented
from api.scrub import scrub
from api.staff.audit import audit, verify_chain
from api.staff.erasure import apply_retention, erase

pytestmark = pytest.mark.anyio

SUFFIXES = ("", "-wal", "-shm", "-journal")
PLACES = ("message", "callback-name", "callback-time", "note", "record", "summary", "rasa")


def secrets(tag: str) -> dict[str, str]:
    """Distinctive text for each place a conversation keeps text (``tag``: whose)."""
    return {place: f"{tag}-{place}-qzxv{n}kw" for n, place in enumerate(PLACES)}


def raw_bytes(database: Path) -> dict[str, bytes]:
    """The bytes of a SQLite database's files, by file name (those that exist)."""
    files = (Path(f"{database}{suffix}") for suffix in SUFFIXES)
    return {path.name: path.read_bytes() for path in files if path.exists()}


def api_bytes(h: Harness) -> dict[str, bytes]:
    """The bytes of the API database's files, by name: its SQLite files, or on PostgreSQL
    the files of its database (``base/<oid>/``), once a CHECKPOINT has written them."""
    if not h.database_url.startswith("postgresql"):
        return raw_bytes(h.db_path)
    [row] = h.rows("SELECT current_setting('data_directory') AS data, oid FROM pg_database "
                   "WHERE datname = current_database()")
    h.execute("CHECKPOINT")
    folder = Path(row["data"]) / "base" / str(row["oid"])
    return {f"base/{path.name}": path.read_bytes() for path in folder.iterdir() if path.is_file()}


async def scheduled_scrub(h: Harness) -> None:
    """On PostgreSQL, the scrub's next round (``api.scrub``): the erasure alone leaves the
    rows' bytes in free space there. On SQLite the erasure itself must leave nothing."""
    if h.database_url.startswith("postgresql"):
        runtime = h.app.state.runtime
        assert await scrub(runtime.engine, runtime.tracker)


def found(h: Harness, tracker_path: Path, texts: list[str]) -> set[tuple[str, str]]:
    """(file, text) for each text found in the raw bytes of both databases' files."""
    files = {**api_bytes(h), **raw_bytes(tracker_path)}
    return {(name, text) for name, data in files.items() for text in texts if text.encode() in data}


def texts_found(h: Harness, tracker_path: Path, texts: dict[str, str]) -> set[str]:
    return {text for _, text in found(h, tracker_path, list(texts.values()))}


def reply_with(secret: dict[str, str], *, callback: bool = True, record: bool = True) -> Any:
    """The fake bot's reply: the patient's text back, a callback request, a record and a
    summary, each holding its distinctive text."""
    custom: dict[str, Any] = {
        "summary": {
            **SUMMARY_DOC,
            "sections": [{"heading": "Notes", "items": [{"text": secret["summary"]}]}],
        }
    }
    if callback:
        custom["callback"] = {
            **CALLBACK_REQUEST,
            "name": secret["callback-name"],
            "preferred_time": secret["callback-time"],
        }
    if record:
        custom["record"] = {"goal": secret["record"]}

    def reply(sender: str, message: str, command: bool) -> dict[str, Any]:
        return {"messages": [{"text": f"Noted: {message}", "custom": custom}]}

    return reply


@contextmanager
def rasa_running(tracker_path: Path, journal: str) -> Iterator[sqlite3.Connection]:
    """Rasa's tracker database with a connection held open, as Rasa holds one (in WAL mode
    the ``-wal`` file then stays: only the API's checkpoint empties it)."""
    rasa_tracker_db(tracker_path, {})
    connection = sqlite3.connect(tracker_path)
    connection.execute(f"PRAGMA journal_mode = {journal}")
    try:
        yield connection
    finally:
        connection.close()


def rasa_events(connection: sqlite3.Connection, sender: str, text: str) -> None:
    """Three events of ``sender`` holding ``text``, written as Rasa writes them."""
    for n, kind in enumerate(["user", "bot", "user"]):
        data = json.dumps({"event": kind, "text": f"{text} ({n})", "timestamp": n})
        connection.execute(
            "INSERT INTO events (sender_id, type_name, timestamp, data) VALUES (?, ?, ?, ?)",
            (sender, kind, 1_700_000_000.0 + n, data),
        )
    connection.commit()


async def conversation_with_text(
    h: Harness, rasa: sqlite3.Connection, secret: dict[str, str], **reply: bool
) -> str:
    """A consented conversation holding ``secret`` everywhere (and viewed by staff)."""
    conversation_id = await h.new_conversation(consent=True)
    h.rasa.reply = reply_with(secret, **reply)
    sent = await h.client.post(
        f"/api/v1/conversations/{conversation_id}/messages", json={"text": secret["message"]}
    )
    assert sent.status_code == 200, sent.text
    h.rasa.reply = default_reply
    async with h.app.state.runtime.sessionmaker() as session:
        note = StaffNote(conversation_id=conversation_id, author_name="A", text=secret["note"])
        session.add(note)
        audit(session, "someone", "view_conversation", "conversation", conversation_id)
        await session.commit()
    rasa_events(rasa, conversation_id, secret["rasa"])
    return conversation_id


async def erase_as_staff(h: Harness, conversation_id: str) -> None:
    runtime = h.app.state.runtime
    async with runtime.sessionmaker() as session:
        assert await erase(session, runtime.tracker, conversation_id, None) is not None


async def retention_run(h: Harness, conversation_id: str) -> None:
    """Make ``conversation_id`` (only) older than 5 days, then run a 5-day retention."""
    runtime = h.app.state.runtime
    async with runtime.sessionmaker() as session:
        await session.execute(
            update(Conversation)
            .where(Conversation.id == conversation_id)
            .values(last_activity_at=utcnow() - timedelta(days=10))
        )
        await session.commit()
        assert await apply_retention(session, runtime.tracker, 5, utcnow(), None) == 1


ERASURES: dict[str, Callable[[Harness, str], Any]] = {
    "staff erasure": erase_as_staff,
    "retention run": retention_run,
}


async def chain_intact(h: Harness) -> bool:
    async with h.app.state.runtime.sessionmaker() as session:
        return (await verify_chain(session)).intact


@pytest.mark.parametrize("journal", ["delete", "wal"])
@pytest.mark.parametrize("how", list(ERASURES))
async def test_erased_text_is_nowhere_in_the_database_files(
    h: Harness, tracker_path: Path, how: str, journal: str
) -> None:
    erased, kept = secrets("erased"), secrets("kept")
    with rasa_running(tracker_path, journal) as rasa:
        erased_id = await conversation_with_text(h, rasa, erased)
        kept_id = await conversation_with_text(h, rasa, kept)
        assert texts_found(h, tracker_path, erased) == set(erased.values())  # the search works

        await ERASURES[how](h, erased_id)
        await scheduled_scrub(h)

        assert found(h, tracker_path, list(erased.values())) == set()
        assert texts_found(h, tracker_path, kept) == set(kept.values())
        assert tracker_counts(tracker_path) == {kept_id: 3}
        # The audit log still names the erased conversation, and its chain is intact.
        assert h.rows("SELECT id FROM audit_log WHERE target_id = ?", erased_id)
        assert await chain_intact(h)


async def test_the_idle_purge_leaves_no_text_in_the_database_files(
    h: Harness, tracker_path: Path
) -> None:
    deleted, expired = secrets("deleted"), secrets("expired")
    with rasa_running(tracker_path, "wal") as rasa:
        for secret, callback in ((deleted, False), (expired, True)):
            conversation_id = await h.new_conversation(consent=False)
            h.rasa.reply = reply_with(secret, callback=callback, record=False)
            sent = await h.client.post(
                f"/api/v1/conversations/{conversation_id}/messages",
                json={"text": secret["message"]},
            )
            assert sent.status_code == 200, sent.text
            h.rasa.reply = default_reply
            rasa_events(rasa, conversation_id, secret["rasa"])
            assert {secret["summary"], secret["rasa"]} <= texts_found(h, tracker_path, secret)

        runtime = h.app.state.runtime
        async with runtime.sessionmaker() as session:
            result = await purge_unconsented(
                session, runtime.tracker, now=utcnow() + timedelta(hours=1),
                idle=timedelta(minutes=30),
            )
        assert (result.deleted, result.expired) == (1, 1)
        await scheduled_scrub(h)

        assert texts_found(h, tracker_path, deleted) == set()
        # The expired conversation keeps only its callback request (consented on its own).
        assert texts_found(h, tracker_path, expired) == {
            expired["callback-name"],
            expired["callback-time"],
        }
        assert tracker_counts(tracker_path) == {}
        [run] = h.rows("SELECT detail FROM audit_log WHERE action = 'purge_unconsented'")
        assert json.loads(run["detail"]) == {"deleted": 1, "expired": 1, "idle_minutes": 30}
        assert await chain_intact(h)


# --- controls: without either safeguard, the same search finds the text ----------------------


def _secure_delete_off(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA secure_delete = OFF")
    cursor.close()


async def _no_scrub(*_args: Any, **_options: Any) -> bool:
    return True


@asynccontextmanager
async def app_without(
    safeguard: str, monkeypatch: pytest.MonkeyPatch, start: Callable[..., Any]
) -> AsyncIterator[Harness]:
    if safeguard == "secure_delete":
        pragmas = api.db._sqlite_pragmas

        def pragmas_without(dbapi_connection: Any, record: Any) -> None:
            pragmas(dbapi_connection, record)
            _secure_delete_off(dbapi_connection, record)

        monkeypatch.setattr(api.db, "_sqlite_pragmas", pragmas_without)
        monkeypatch.setattr(api.tracker_store, "sqlite_secure_delete", _secure_delete_off)
    else:
        monkeypatch.setattr(api.retention, "scrub_erased", _no_scrub)
        monkeypatch.setattr(api.tracker_store, "scrub_erased", _no_scrub)
    async with start() as harness:
        yield harness


@pytest.mark.parametrize(
    ("safeguard", "journal"),
    # A SQLite database not in WAL mode has no WAL to checkpoint: the scrub matters for
    # Rasa's SQLite file in WAL mode only (and for the API's database on PostgreSQL).
    [("secure_delete", "delete"), ("secure_delete", "wal"), ("scrub", "wal")],
)
async def test_control_without_a_safeguard_the_search_finds_the_erased_text(
    start: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    tracker_path: Path,
    safeguard: str,
    journal: str,
) -> None:
    erased = secrets("erased")
    async with app_without(safeguard, monkeypatch, start) as h:
        with rasa_running(tracker_path, journal) as rasa:
            erased_id = await conversation_with_text(h, rasa, erased)
            await erase_as_staff(h, erased_id)
            left = found(h, tracker_path, list(erased.values()))
            on_postgresql = h.database_url.startswith("postgresql")
    assert tracker_counts(tracker_path) == {}
    files = {name for name, _ in left}
    assert any(name.startswith("rasa-tracker.db") for name in files), left  # Rasa's
    if on_postgresql and safeguard == "secure_delete":
        # a pragma of SQLite's: the API's database on PostgreSQL is scrubbed all the same
        assert all(name.startswith("rasa-tracker.db") for name in files), left
    else:
        assert any(not name.startswith("rasa-tracker.db") for name in files), left  # the API's


async def test_every_connection_to_either_database_deletes_securely(
    h: Harness, tracker_path: Path
) -> None:
    """Each SQLite one, that is: Rasa's here, and the API's unless it is on PostgreSQL."""
    runtime = h.app.state.runtime
    rasa_tracker_db(tracker_path, {"someone": 1})
    engines = [e for e in (runtime.engine, runtime.tracker._engine) if e.dialect.name == "sqlite"]
    assert runtime.tracker._engine in engines
    for engine in engines:
        async with engine.connect() as connection:
            assert (await connection.exec_driver_sql("PRAGMA secure_delete")).scalar() == 1

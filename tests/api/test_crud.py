"""The chat turn's SQL statements (api/crud.py, SQLAlchemy Core): they store exactly what the
ORM models would store for the same values (column defaults, SQL NULL and JSON alike), on a
real SQLite database, and they compile for PostgreSQL too."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from api_fakes import CALLBACK_REQUEST, SUMMARY_DOC
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql import Executable

from api import crud
from api.db import create_engine, create_sessionmaker, upgrade_head
from api.models import CallbackRequest, Conversation, Message, utcnow
from api.rasa_client import RasaReply
from api.schemas import Summary
from contract import payloads

pytestmark = pytest.mark.anyio

CORE = "c" * 43
"""The conversation the functions under test write."""
ORM = "o" * 43
"""The conversation written through the ORM models with the same values."""
MASKED = {"id", "conversation_id", "token_hash"}
"""Columns that differ between the two conversations by construction."""
TIMES = {
    "created_at", "updated_at", "last_activity_at", "consent_at", "red_flag_at", "summary_at",
    "expired_at", "reviewed_at", "feedback_at", "done_at",
}
"""Compared as present or NULL only (each write takes its own clock)."""
TABLES = {"conversations": "id", "messages": "seq", "callback_requests": "id"}


@pytest.fixture
async def maker(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'meso.db'}")
    await upgrade_head(engine)
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


def stored(db: Path, conversation_id: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of the conversation as SQLite holds it: each column's storage class and
    value (a JSON column holding ``null`` is not a NULL column)."""
    connection = sqlite3.connect(db)
    try:
        found: dict[str, list[dict[str, Any]]] = {}
        for table, order in TABLES.items():
            columns = [row[1] for row in connection.execute(f"PRAGMA table_info({table})")]
            key = "id" if table == "conversations" else "conversation_id"
            selected = ", ".join(f"typeof({c}), {c}" for c in columns)
            rows = connection.execute(
                f"SELECT {selected} FROM {table} WHERE {key} = ? ORDER BY {order}",
                (conversation_id,),
            ).fetchall()
            found[table] = [
                {
                    c: (row[2 * i], None if c in MASKED | TIMES else row[2 * i + 1])
                    for i, c in enumerate(columns)
                }
                for row in rows
            ]
        return found
    finally:
        connection.close()


def orm_conversation(conversation_id: str, now: datetime, consent: bool) -> Conversation:
    hints = {"user_agent": "Firefox", "language": "en-GB", "origin": "https://clinic.example"}
    return Conversation(
        id=conversation_id, token_hash="0" * 64, created_at=now, last_activity_at=now,
        transcript_consent=consent, consent_at=now if consent else None,
        **(hints if consent else {}),
    )


async def core_conversation(session: AsyncSession, consent: bool) -> crud.ConversationState:
    return await crud.create_conversation(
        session, CORE, token_hash="1" * 64, consent=consent, user_agent="Firefox",
        language="en-GB", origin="https://clinic.example",
    )


@pytest.mark.parametrize("consent", [True, False])
async def test_a_new_conversation_is_stored_as_the_orm_model_stores_it(
    maker: async_sessionmaker[AsyncSession], tmp_path: Path, consent: bool
) -> None:
    async with maker() as session:
        state = await core_conversation(session, consent)
        session.add(orm_conversation(ORM, utcnow(), consent))
        await session.commit()

    db = tmp_path / "meso.db"
    assert stored(db, CORE) == stored(db, ORM)
    assert stored(db, CORE)["conversations"][0]["record"] == ("text", "{}")
    assert state == crud.ConversationState(CORE, consent)


async def test_a_patient_message_is_stored_as_the_orm_model_stores_it(
    maker: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    async with maker() as session:
        conversation = await core_conversation(session, True)
        first = await crud.add_patient_message(
            session, conversation, text="How much?", button_title=None, seq=1
        )
        later = await crud.add_patient_message(
            session, conversation, text="/ask_topic", button_title="Cost", client_id="m-00000001",
            at=utcnow(), tracker_pending=True,
        )
        now = utcnow()
        session.add(orm_conversation(ORM, now, True))
        session.add_all([
            Message(conversation_id=ORM, seq=1, role="patient", text="How much?",
                    button_title=None, client_id=None, status="unanswered", created_at=now),
            Message(conversation_id=ORM, seq=2, role="patient", text="/ask_topic",
                    button_title="Cost", client_id="m-00000001", status="unanswered",
                    created_at=now, tracker_pending=True),
        ])
        await session.commit()

    db = tmp_path / "meso.db"
    assert stored(db, CORE) == stored(db, ORM)
    assert (later.seq, later.tracker_pending) == (2, True), "the next seq, read when not given"
    sql = "SELECT id, seq FROM messages WHERE conversation_id = ?"
    ids = {m["seq"]: m["id"] for m in _rows(db, sql)}
    assert (first.id, later.id) == (ids[1], ids[2]), "the snapshots carry the stored ids"


def _rows(db: Path, sql: str) -> list[sqlite3.Row]:
    connection = sqlite3.connect(db)
    connection.row_factory = sqlite3.Row
    try:
        return connection.execute(sql, (CORE,)).fetchall()
    finally:
        connection.close()


RED_FLAG_REPLY = {
    "messages": [
        {
            "text": "Please call 999 now.",
            "custom": {
                **payloads.red_flag("emergency", ["chest_pain"]),
                "record": {"checklist": {"pregnant": "no"}},
                "sources": [{"id": "nhs", "title": "NHS", "url": "https://example.org/nhs"}],
                "topic": "safety",
                "entry_id": "safety-001",
                "score": 0.91,
                "certainty": "high",
            },
        },
        {"custom": {"summary": SUMMARY_DOC, "callback": CALLBACK_REQUEST}},
        {"text": "Anything else?", "buttons": [{"title": "No", "payload": "/goodbye"}]},
    ],
    "nlu": {
        "intent": "red_flag_emergency",
        "confidence": 0.97,
        "entities": [{"entity": "symptom", "value": "chest pain"}],
    },
}


async def test_a_reply_is_stored_as_the_orm_models_store_it(
    maker: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    reply = RasaReply.model_validate(RED_FLAG_REPLY)
    async with maker() as session:
        conversation = await core_conversation(session, True)
        patient = await crud.add_patient_message(
            session, conversation, text="chest pain", button_title=None, seq=1
        )
        shown = await crud.store_replies(
            session, conversation, reply, patient, summary_link="/summary?sig=x", first_seq=2
        )

        now = utcnow()
        orm = orm_conversation(ORM, now, True)
        orm_patient = Message(conversation_id=ORM, seq=1, role="patient", text="chest pain",
                              button_title=None, client_id=None, status="unanswered",
                              created_at=now)
        session.add_all([orm, orm_patient])
        await session.flush()
        orm_patient.status = "answered"
        orm_patient.intent = "red_flag_emergency"
        orm_patient.intent_confidence = 0.97
        orm_patient.entities = [{"entity": "symptom", "value": "chest pain"}]
        orm_patient.red_flag = "emergency"
        orm_patient.red_flag_names = ["chest_pain"]
        orm.last_activity_at = now
        orm.red_flag_level = "emergency"
        orm.red_flag_at = now
        orm.record = {"checklist": {"pregnant": "no"}}
        orm.summary = Summary.model_validate(SUMMARY_DOC).model_dump(mode="json")
        orm.summary_at = now
        session.add_all([
            CallbackRequest(conversation_id=ORM, name="Ann Example", phone="+44 20 7946 0958",
                            email=None, preferred_time=None, consent_at=now, status="open",
                            created_at=now),
            Message(conversation_id=ORM, seq=2, role="assistant", text="Please call 999 now.",
                    buttons=[], sources=[{"id": "nhs", "title": "NHS",
                                          "url": "https://example.org/nhs"}],
                    topic="safety", entry_id="safety-001", score=0.91, certainty="high",
                    offers_summary=False, created_at=now),
            Message(conversation_id=ORM, seq=3, role="assistant", text="Anything else?",
                    buttons=[{"title": "No", "payload": "/goodbye"}], sources=[], topic=None,
                    entry_id=None, score=None, certainty=None, offers_summary=True,
                    created_at=now),
        ])
        await session.commit()

    db = tmp_path / "meso.db"
    assert stored(db, CORE) == stored(db, ORM)
    assert [(m.id, m.red_flag, m.summary_url) for m in shown] == [
        ("2", "emergency", None), ("3", "emergency", "/summary?sig=x"),
    ]
    assert (patient.status, patient.red_flag, patient.red_flag_names) == (
        "answered", "emergency", ["chest_pain"],
    )
    assert (conversation.red_flag_level, conversation.record) == (
        "emergency", {"checklist": {"pregnant": "no"}},
    ), "the snapshot follows what was written"


async def test_a_later_reply_keeps_the_most_severe_level_and_adds_to_the_record(
    maker: async_sessionmaker[AsyncSession],
) -> None:
    async with maker() as session:
        conversation = await core_conversation(session, True)
        first = await crud.add_patient_message(session, conversation, text="a", button_title=None)
        await crud.store_replies(
            session, conversation, RasaReply.model_validate(RED_FLAG_REPLY), first,
            summary_link="/s",
        )
        second = await crud.add_patient_message(session, conversation, text="b", button_title=None)
        milder = RasaReply.model_validate({"messages": [{"text": "See your GP.", "custom": {
            **payloads.red_flag("prompt", ["itch"]), "record": {"values": {"cost": 2}},
        }}]})
        await crud.store_replies(session, conversation, milder, second, summary_link="/s")
        await session.commit()

        reread = await crud.start_turn(session, CORE)

    assert reread is not None
    assert reread.conversation.red_flag_level == "emergency"
    assert reread.conversation.record == {
        "checklist": {"pregnant": "no"}, "values": {"cost": 2},
    }
    assert reread.next_seq == 6, "two patient messages and three replies shown before"
    assert second.red_flag == "prompt"


async def test_tracker_pending_marks_are_set_and_cleared(
    maker: async_sessionmaker[AsyncSession],
) -> None:
    async with maker() as session:
        conversation = await core_conversation(session, True)
        patient = await crud.add_patient_message(session, conversation, text="a", button_title=None)
        await crud.set_tracker_pending(session, [patient], True)
        await session.commit()
        marked = await crud.pending_patient_messages(session, CORE)
        pending_at_start = await crud.start_turn(session, CORE)
        await crud.set_tracker_pending(session, marked, False)
        await crud.set_tracker_pending(session, [], False)  # nothing to do: no statement
        await session.commit()

        assert [m.id for m in marked] == [patient.id]
        assert pending_at_start is not None and pending_at_start.pending
        assert marked[0].tracker_pending is False
        assert await crud.pending_patient_messages(session, CORE) == []


async def test_access_says_whether_a_summary_is_stored(
    maker: async_sessionmaker[AsyncSession],
) -> None:
    async with maker() as session:
        conversation = await core_conversation(session, False)
        before = await crud.get_access(session, CORE)
        summary = RasaReply.model_validate({"messages": [{"custom": {"summary": SUMMARY_DOC}}]})
        await crud.store_replies(session, conversation, summary, summary_link="/s")
        await session.commit()
        after = await crud.get_access(session, CORE)

    assert before is not None and after is not None
    assert (before.has_summary, after.has_summary) == (False, True)
    assert (after.id, after.token_hash, after.transcript_consent) == (CORE, "1" * 64, False)
    assert await _unknown(maker) is None


async def _unknown(maker: async_sessionmaker[AsyncSession]) -> crud.ConversationAccess | None:
    async with maker() as session:
        return await crud.get_access(session, "u" * 43)


def test_the_turn_statements_compile_for_postgresql() -> None:
    """No SQLite-only SQL in the statements built once (PostgreSQL runs the same code)."""
    statements = [v for v in vars(crud).values() if isinstance(v, Executable)]
    assert len(statements) >= 10
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    for statement in statements:
        compiled = str(statement.compile(dialect=dialect))  # type: ignore[attr-defined]
        assert compiled
    start = str(crud._START_TURN.compile(dialect=dialect))
    assert start.rstrip().endswith("FOR UPDATE OF conversations")

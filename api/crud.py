"""Database reads and writes of the chat routes (no HTTP here).

A conversation without transcript consent (``Conversation.transcript_consent`` false) gets
no message rows and no red-flag marks; the data the patient consented to separately
(callback requests, the record) and the summary are stored all the same.

A turn's reads and writes (:func:`start_turn`, :func:`add_patient_message`,
:func:`store_replies`, ...) are plain SQL statements (SQLAlchemy Core), built once where
their shape is fixed, on plain snapshots (:class:`ConversationState`,
:class:`PatientMessage`) instead of ORM objects: no unit of work, no identity map, one
statement per change. They store exactly what the ORM models would (their column defaults
and types apply: ``tests/api/test_crud.py``). Reads and writes off the chat path keep the
ORM.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, exists, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api import field_checks, history, schemas
from api.bot_data import MAX_RECORD_BYTES, Callback, json_size, merge_record
from api.models import CallbackRequest, Conversation, Message, short_id, utcnow
from api.notifications import outbox
from api.rasa_client import RasaCustom, RasaNlu, RasaReply
from contract.levels import most_severe
from api.replies import batch_red_flag, present
from api.schemas import Rating

logger = logging.getLogger(__name__)

CONVERSATIONS: Table = Conversation.__table__  # type: ignore[assignment]
MESSAGES: Table = Message.__table__  # type: ignore[assignment]
CALLBACK_REQUESTS: Table = CallbackRequest.__table__  # type: ignore[assignment]

_OPEN = CONVERSATIONS.c.expired_at.is_(None)
"""An expired conversation (see ``api.retention``) is gone for the chat routes."""
FIRST_SEQ = 1
"""The ``seq`` of a conversation's first message."""
_ID = bindparam("conversation_id")
_ROW_ID = bindparam("row_id")
"""The id of the one row an UPDATE changes (not named after a column: the SET clause is
made from the execution's parameters, named after the columns they set)."""
_GET_CONVERSATION = select(Conversation).where(CONVERSATIONS.c.id == _ID, _OPEN)
"""Built once: the summary reads its conversation (``conversation_id`` bound)."""


@dataclass
class ConversationState:
    """What a turn reads of its conversation and may change, as a plain snapshot:
    :func:`store_replies` keeps it in step with what it writes."""

    id: str
    transcript_consent: bool
    red_flag_level: str | None = None
    red_flag_at: datetime | None = None
    record: dict[str, Any] = field(default_factory=dict)


_STATE_COLUMNS = tuple(CONVERSATIONS.c[f.name] for f in fields(ConversationState))


def _state(row: Any) -> ConversationState:
    return ConversationState(
        row.id, row.transcript_consent, row.red_flag_level, row.red_flag_at, row.record or {}
    )


@dataclass
class PatientMessage:
    """A stored patient message, as a turn reads and changes it (a plain snapshot)."""

    id: int
    conversation_id: str
    seq: int
    text: str
    status: str | None = "unanswered"
    intent: str | None = None
    intent_confidence: float | None = None
    red_flag: str | None = None
    red_flag_names: list[Any] | None = None
    tracker_pending: bool = False


_PATIENT_COLUMNS = tuple(MESSAGES.c[f.name] for f in fields(PatientMessage))


def _patient(row: Any) -> PatientMessage:
    return PatientMessage(**row._mapping)


@dataclass
class ConversationAccess:
    """What opening a conversation from the public API needs (``api.routes.access``)."""

    id: str
    token_hash: str | None
    last_activity_at: datetime
    transcript_consent: bool
    has_summary: bool
    """A consultation summary is stored."""


_ACCESS = select(
    CONVERSATIONS.c.id,
    CONVERSATIONS.c.token_hash,
    CONVERSATIONS.c.last_activity_at,
    CONVERSATIONS.c.transcript_consent,
    CONVERSATIONS.c.summary.is_not(None).label("has_summary"),
).where(CONVERSATIONS.c.id == _ID, _OPEN)
"""Built once: every public request on a conversation reads this (:func:`get_access`)."""
_START_TURN = (
    select(
        *_STATE_COLUMNS,
        select(func.max(MESSAGES.c.seq))
        .where(MESSAGES.c.conversation_id == CONVERSATIONS.c.id)
        .scalar_subquery()
        .label("last_seq"),
        exists()
        .where(
            MESSAGES.c.conversation_id == CONVERSATIONS.c.id,
            MESSAGES.c.role == "patient",
            MESSAGES.c.tracker_pending.is_(True),
        )
        .label("pending"),
    )
    .where(CONVERSATIONS.c.id == _ID, _OPEN)
    .with_for_update(of=CONVERSATIONS)
)
"""Built once: the first read of every turn (:func:`start_turn`)."""
_FOR_UPDATE = select(*_STATE_COLUMNS).where(CONVERSATIONS.c.id == _ID, _OPEN).with_for_update()
_NEXT_SEQ = select(func.max(MESSAGES.c.seq)).where(MESSAGES.c.conversation_id == _ID)
_INSERT_CONVERSATION = insert(CONVERSATIONS)
_INSERT_MESSAGE = insert(MESSAGES)
_INSERT_CALLBACK = insert(CALLBACK_REQUESTS)
_UPDATE_CONVERSATION = update(CONVERSATIONS).where(CONVERSATIONS.c.id == _ROW_ID)
"""SET: the columns named by the execution's parameters (and ``updated_at``, by its
``onupdate``), WHERE ``id = :row_id``."""
_UPDATE_MESSAGE = update(MESSAGES).where(MESSAGES.c.id == _ROW_ID)
_SET_TRACKER_PENDING = (
    update(MESSAGES)
    .where(MESSAGES.c.id.in_(bindparam("ids", expanding=True)))
    .values(tracker_pending=bindparam("pending"))
)


async def conversation_exists(session: AsyncSession, conversation_id: str) -> bool:
    """True for a conversation the chat routes may use (known and not expired)."""
    found = await session.scalar(
        select(CONVERSATIONS.c.id).where(CONVERSATIONS.c.id == conversation_id, _OPEN)
    )
    return found is not None


async def get_conversation(session: AsyncSession, conversation_id: str) -> Conversation | None:
    """The conversation, unless it is unknown or expired."""
    return await session.scalar(_GET_CONVERSATION, {"conversation_id": conversation_id})


async def get_access(session: AsyncSession, conversation_id: str) -> ConversationAccess | None:
    """What opening the conversation needs, unless it is unknown or expired."""
    row = (await session.execute(_ACCESS, {"conversation_id": conversation_id})).first()
    return None if row is None else ConversationAccess(*row)


async def create_conversation(
    session: AsyncSession,
    conversation_id: str,
    *,
    token_hash: str,
    consent: bool,
    user_agent: str | None,
    language: str | None,
    origin: str | None,
) -> ConversationState:
    """A new conversation; the client hints are kept only with transcript consent."""
    now = utcnow()
    hints = {"user_agent": user_agent, "language": language, "origin": origin}
    await session.execute(
        _INSERT_CONVERSATION,
        {
            "id": conversation_id,
            "token_hash": token_hash,
            "created_at": now,
            "last_activity_at": now,
            "transcript_consent": consent,
            "consent_at": now if consent else None,
            **(hints if consent else {}),
        },
    )
    return ConversationState(conversation_id, consent)


async def get_conversation_for_update(
    session: AsyncSession, conversation_id: str
) -> ConversationState | None:
    """The conversation, row-locked until commit where the database supports it."""
    row = (await session.execute(_FOR_UPDATE, {"conversation_id": conversation_id})).first()
    return None if row is None else _state(row)


@dataclass
class TurnStart:
    """What a chat turn reads first, under the conversation's lock (:func:`start_turn`)."""

    conversation: ConversationState
    next_seq: int
    """The ``seq`` the turn's message gets, unless earlier turns are settled first."""
    pending: bool
    """A patient message waits to be settled with Rasa's tracker (``api.tracker_sync``)."""


async def start_turn(session: AsyncSession, conversation_id: str) -> TurnStart | None:
    """The conversation (row-locked as by :func:`get_conversation_for_update`), its next
    ``seq`` and whether a message is pending, in one statement; None if unknown or expired."""
    row = (await session.execute(_START_TURN, {"conversation_id": conversation_id})).first()
    if row is None:
        return None
    last = row.last_seq
    return TurnStart(_state(row), FIRST_SEQ if last is None else last + 1, bool(row.pending))


async def next_seq(session: AsyncSession, conversation_id: str) -> int:
    last = await session.scalar(_NEXT_SEQ, {"conversation_id": conversation_id})
    return FIRST_SEQ if last is None else last + 1


async def last_offered_buttons(
    session: AsyncSession, conversation_id: str
) -> list[schemas.Button]:
    """The buttons of the assistant's most recent reply batch in this conversation.

    That batch is every assistant message after the last answered patient message (or from
    the start: the opening messages). A patient message left unanswered (Rasa was down) has
    no replies, so pressing one of these buttons again still counts as pressing it.
    """
    m = MESSAGES.c
    last_answered = (
        select(func.max(m.seq))
        .where(m.conversation_id == conversation_id, m.role == "patient", m.status == "answered")
        .scalar_subquery()
    )
    rows = await session.scalars(
        select(m.buttons)
        .where(
            m.conversation_id == conversation_id,
            m.role == "assistant",
            m.seq > func.coalesce(last_answered, 0),
        )
        .order_by(m.seq)
    )
    return [schemas.Button.model_validate(b) for buttons in rows if buttons for b in buttons]


async def find_patient_message(
    session: AsyncSession, conversation_id: str, client_id: str
) -> PatientMessage | None:
    """The patient's message the client sent earlier with ``client_id``, if stored."""
    row = (
        await session.execute(
            select(*_PATIENT_COLUMNS).where(
                MESSAGES.c.conversation_id == conversation_id,
                MESSAGES.c.client_id == client_id,
                MESSAGES.c.role == "patient",
            )
        )
    ).first()
    return None if row is None else _patient(row)


async def touch(session: AsyncSession, conversation_id: str, at: datetime) -> None:
    """Set the conversation's ``last_activity_at`` (and ``updated_at``)."""
    await session.execute(_UPDATE_CONVERSATION, {"row_id": conversation_id, "last_activity_at": at})


async def add_patient_message(
    session: AsyncSession,
    conversation: ConversationState,
    *,
    text: str,
    button_title: str | None,
    client_id: str | None = None,
    seq: int | None = None,
    at: datetime | None = None,
    tracker_pending: bool = False,
) -> PatientMessage:
    """Store the patient's message as 'unanswered' (it becomes 'answered' with the reply)
    and make it the conversation's last activity.

    ``seq``: its ``seq`` when the caller knows the next one (:func:`start_turn`); else read.
    ``at``: when it was sent (default now). ``tracker_pending``: Rasa never saw it
    (``api.tracker_sync``).
    """
    now = utcnow() if at is None else at
    if seq is None:
        seq = await next_seq(session, conversation.id)
    values = {
        "conversation_id": conversation.id,
        "seq": seq,
        "role": "patient",
        "text": text,
        "button_title": button_title,
        "client_id": client_id,
        "status": "unanswered",
        "created_at": now,
        "tracker_pending": tracker_pending,
    }
    result = await session.execute(_INSERT_MESSAGE, values)
    await touch(session, conversation.id, now)
    [message_id] = result.inserted_primary_key  # type: ignore[attr-defined]
    return PatientMessage(
        message_id, conversation.id, seq, text, tracker_pending=tracker_pending
    )


async def retry_patient_message(
    session: AsyncSession,
    conversation: ConversationState,
    patient: PatientMessage,
    button_title: str | None,
) -> None:
    """Make the unanswered ``patient`` message the conversation's latest again, to resend it
    (marked for ``api.tracker_sync`` until its reply is stored, as a new one is)."""
    last = await next_seq(session, conversation.id) - 1
    if patient.seq != last:
        patient.seq = last + 1
    patient.tracker_pending = True
    await session.execute(
        _UPDATE_MESSAGE,
        {"row_id": patient.id, "seq": patient.seq, "button_title": button_title,
         "tracker_pending": True},
    )
    await touch(session, conversation.id, utcnow())


async def set_tracker_pending(
    session: AsyncSession, patients: Sequence[PatientMessage], pending: bool
) -> None:
    """Mark (or unmark) the patients' messages for ``api.tracker_sync``, in memory too."""
    if not patients:
        return
    await session.execute(
        _SET_TRACKER_PENDING, {"ids": [p.id for p in patients], "pending": pending}
    )
    for patient in patients:
        patient.tracker_pending = pending


async def stored_messages(session: AsyncSession, conversation_id: str) -> Sequence[Message]:
    """Every stored message of the conversation, in order."""
    rows = await session.scalars(
        select(Message).where(Message.conversation_id == conversation_id).order_by(Message.seq)
    )
    return rows.all()


async def pending_patient_messages(
    session: AsyncSession, conversation_id: str
) -> list[PatientMessage]:
    """The conversation's patient messages whose turn Rasa's tracker may not agree with yet."""
    rows = await session.execute(
        select(*_PATIENT_COLUMNS)
        .where(
            MESSAGES.c.conversation_id == conversation_id,
            MESSAGES.c.role == "patient",
            MESSAGES.c.tracker_pending.is_(True),
        )
        .order_by(MESSAGES.c.seq)
    )
    return [_patient(row) for row in rows]


async def stored_replies(
    session: AsyncSession, patient: PatientMessage, *, summary_link: str
) -> list[schemas.Message]:
    """The assistant's stored replies to ``patient`` (an answered message), as first sent;
    a message that offered the summary links to it with ``summary_link``."""
    next_patient = (
        select(func.min(Message.seq))
        .where(
            Message.conversation_id == patient.conversation_id,
            Message.role == "patient",
            Message.seq > patient.seq,
        )
        .scalar_subquery()
    )
    rows = await session.scalars(
        select(Message)
        .where(
            Message.conversation_id == patient.conversation_id,
            Message.role == "assistant",
            Message.seq > patient.seq,
            Message.seq < func.coalesce(next_patient, Message.seq + 1),
        )
        .order_by(Message.seq)
    )
    return [
        history.stored_reply(
            row,
            red_flag=patient.red_flag,  # type: ignore[arg-type]
            summary_link=summary_link,
            with_feedback=False,
        )
        for row in rows
    ]


async def set_feedback(
    session: AsyncSession, conversation_id: str, message_id: str, rating: Rating | None
) -> bool:
    """Store (or, with None, withdraw) the rating of an assistant message; False when the
    conversation has no such stored assistant message."""
    if not message_id.isdigit() or len(message_id) > 9:
        return False
    message = await session.scalar(
        select(Message)
        .join(Conversation)
        .where(
            Message.conversation_id == conversation_id,
            Message.seq == int(message_id),
            Message.role == "assistant",
            _OPEN,
        )
    )
    if message is None:
        return False
    message.feedback = rating
    message.feedback_at = utcnow()
    await session.flush()
    return True


@dataclass
class _Changes:
    """What one reply changes (:func:`store_replies` writes it)."""

    conversation: dict[str, Any] = field(default_factory=dict)
    """The conversation's columns to set."""
    patient: dict[str, Any] = field(default_factory=dict)
    """The patient message's columns to set."""
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    """The callback requests to add."""


def _record_understanding(patient: PatientMessage, nlu: RasaNlu, changes: _Changes) -> None:
    patient.status = "answered"
    patient.intent = nlu.intent
    patient.intent_confidence = nlu.confidence
    changes.patient.update(
        status="answered", intent=nlu.intent, intent_confidence=nlu.confidence,
        entities=nlu.entities, tracker_pending=patient.tracker_pending,
    )


def _apply_red_flag(
    conversation: ConversationState,
    patient: PatientMessage | None,
    reply: RasaReply,
    now: datetime,
    changes: _Changes,
) -> None:
    """Flag the conversation (keeping its most severe level) and the patient's message with
    the reply's red-flag level, if it has one.

    ``patient`` is None for the opening messages. Nothing is recorded without transcript
    consent.
    """
    level = batch_red_flag(reply.messages)
    if level is None or not conversation.transcript_consent:
        return
    conversation.red_flag_level = most_severe(conversation.red_flag_level, level)
    changes.conversation["red_flag_level"] = conversation.red_flag_level
    if conversation.red_flag_at is None:
        conversation.red_flag_at = changes.conversation["red_flag_at"] = now
    if patient is not None:
        patient.red_flag = most_severe(patient.red_flag, level)
        names = [
            name
            for m in reply.messages
            if m.custom and m.custom.red_flag
            for name in m.custom.red_flag.flags
        ]
        patient.red_flag_names = list(dict.fromkeys([*(patient.red_flag_names or []), *names]))
        changes.patient.update(red_flag=patient.red_flag, red_flag_names=patient.red_flag_names)


def _apply_record(
    conversation: ConversationState, update: dict[str, Any], changes: _Changes
) -> None:
    merged = merge_record(conversation.record, update)
    if json_size(merged) > MAX_RECORD_BYTES:
        logger.warning(
            "conversation %s: record update ignored (the record would exceed %d bytes)",
            short_id(conversation.id),
            MAX_RECORD_BYTES,
        )
        return
    conversation.record = changes.conversation["record"] = merged


def _callback_row(conversation_id: str, callback: Callback, now: datetime) -> dict[str, Any]:
    logger.info("conversation %s: callback request stored", short_id(conversation_id))
    return {
        "conversation_id": conversation_id,
        "name": callback.name,
        "phone": callback.phone,
        "email": callback.email,
        "preferred_time": callback.preferred_time,
        "consent_at": now,
        "status": "open",
        "created_at": now,
    }


def _apply_data(
    conversation: ConversationState, custom: RasaCustom, now: datetime, changes: _Changes
) -> None:
    """Apply one message's record, callback and summary blocks.

    (Red flags are applied per reply, by :func:`_apply_red_flag`; a ``field_check`` result
    is counted apart from the conversation by :func:`store_replies`, ``api.field_checks``.)
    """
    if custom.record is not None:
        _apply_record(conversation, custom.record, changes)
    if custom.callback is not None:
        changes.callbacks.append(_callback_row(conversation.id, custom.callback, now))
    if custom.summary is not None:
        changes.conversation["summary"] = custom.summary.model_dump(mode="json")
        changes.conversation["summary_at"] = now


async def store_replies(
    session: AsyncSession,
    conversation: ConversationState,
    reply: RasaReply,
    patient: PatientMessage | None = None,
    *,
    summary_link: str,
    first_seq: int | None = None,
) -> list[schemas.Message]:
    """Store the reply and return the messages there is something to show, in order.

    ``patient`` (the turn's message, None for the opening messages) becomes 'answered' with
    the reply's understanding (intent, confidence, entities). Every message's ``custom`` data
    is applied, also that of a message with neither text nor buttons (not shown). With
    transcript consent the reply's red-flag level goes on ``patient`` and the conversation,
    and the shown messages are stored (their ``id`` is their ``seq``); without it nothing of
    the turn is stored. A rising red flag and each callback request add a staff notice
    (``api.notifications``). The conversation's last activity is now.
    ``first_seq``: the first reply's ``seq`` when the caller knows it (under the
    conversation's lock: ``patient.seq + 1`` when ``patient`` is the latest message,
    :data:`FIRST_SEQ` for a new conversation); otherwise it is read.
    """
    now = utcnow()
    changes = _Changes()
    level_before = conversation.red_flag_level
    if patient is not None:
        _record_understanding(patient, reply.nlu, changes)
    for message in reply.messages:
        if message.custom is not None:
            _apply_data(conversation, message.custom, now, changes)
            if message.custom.field_check is not None:  # anonymous: kept without the conversation
                await field_checks.record(session, message.custom.field_check, now)
    shown = present(reply.messages, summary_link=summary_link)
    rows: list[dict[str, Any]] = []
    if conversation.transcript_consent:
        _apply_red_flag(conversation, patient, reply, now, changes)
        seq = first_seq if first_seq is not None else await next_seq(session, conversation.id)
        for item in shown:
            public, custom = item.public, item.source.custom
            rows.append(
                {
                    "conversation_id": conversation.id,
                    "seq": seq,
                    "role": "assistant",
                    "text": public.text,
                    "buttons": [b.model_dump() for b in public.buttons],
                    "sources": [s.model_dump() for s in public.sources],
                    "topic": public.topic,
                    "entry_id": custom.entry_id if custom else None,
                    "score": custom.score if custom else None,
                    "certainty": custom.certainty if custom else None,
                    "offers_summary": public.summary_url is not None,
                    "created_at": now,
                }
            )
            public.id = str(seq)
            seq += 1
    if changes.patient and patient is not None:
        await session.execute(_UPDATE_MESSAGE, {"row_id": patient.id, **changes.patient})
    await session.execute(
        _UPDATE_CONVERSATION,
        {"row_id": conversation.id, **changes.conversation, "last_activity_at": now},
    )
    if changes.callbacks:
        await session.execute(_INSERT_CALLBACK, changes.callbacks)
    if rows:
        await session.execute(_INSERT_MESSAGE, rows)  # one statement for the batch
    notices = outbox.turn_notices(conversation.id, before=level_before,
                                  after=conversation.red_flag_level,
                                  callbacks=len(changes.callbacks), now=now)
    if notices:  # staff told, in the same transaction as what they are told of
        await session.execute(outbox.INSERT, notices)
    return [item.public for item in shown]


async def cited_sources(session: AsyncSession, conversation_id: str) -> dict[str, dict[str, Any]]:
    """Every source the assistant's answers in this conversation cited, by id (latest wins)."""
    rows = await session.scalars(
        select(Message.sources).where(
            Message.conversation_id == conversation_id,
            Message.role == "assistant",
            Message.sources.is_not(None),
        )
    )
    found: dict[str, dict[str, Any]] = {}
    for sources in rows:
        for source in sources or []:
            if isinstance(source, dict) and isinstance(source.get("id"), str):
                found[source["id"]] = source
    return found

"""Database reads and writes of the chat routes (no HTTP here).

A conversation without transcript consent (``Conversation.transcript_consent`` false) gets
no message rows and no red-flag marks; the data the patient consented to separately
(callback requests, the record) and the summary are stored all the same.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, exists, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from api import field_checks, history, schemas
from api.bot_data import MAX_RECORD_BYTES, Callback, json_size, merge_record
from api.models import CallbackRequest, Conversation, Message, short_id, utcnow
from api.rasa_client import RasaCustom, RasaNlu, RasaReply
from contract.levels import most_severe
from api.replies import batch_red_flag, present
from api.schemas import Rating

logger = logging.getLogger(__name__)

_OPEN = Conversation.expired_at.is_(None)
"""An expired conversation (see ``api.retention``) is gone for the chat routes."""
FIRST_SEQ = 1
"""The ``seq`` of a conversation's first message."""
_ID = bindparam("conversation_id")
_GET_CONVERSATION = select(Conversation).where(Conversation.id == _ID, _OPEN)
"""Built once: every chat request reads its conversation (``conversation_id`` bound)."""
_START_TURN = (
    select(
        Conversation,
        select(func.max(Message.seq))
        .where(Message.conversation_id == Conversation.id)
        .scalar_subquery(),
        exists().where(
            Message.conversation_id == Conversation.id,
            Message.role == "patient",
            Message.tracker_pending.is_(True),
        ),
    )
    .where(Conversation.id == _ID, _OPEN)
    .with_for_update(of=Conversation)
)
"""Built once: the first read of every turn (:func:`start_turn`)."""


async def conversation_exists(session: AsyncSession, conversation_id: str) -> bool:
    """True for a conversation the chat routes may use (known and not expired)."""
    found = await session.scalar(
        select(Conversation.id).where(Conversation.id == conversation_id, _OPEN)
    )
    return found is not None


async def get_conversation(session: AsyncSession, conversation_id: str) -> Conversation | None:
    """The conversation, unless it is unknown or expired."""
    return await session.scalar(_GET_CONVERSATION, {"conversation_id": conversation_id})


async def create_conversation(
    session: AsyncSession,
    conversation_id: str,
    *,
    token_hash: str,
    consent: bool,
    user_agent: str | None,
    language: str | None,
    origin: str | None,
) -> Conversation:
    """A new conversation; the client hints are kept only with transcript consent."""
    now = utcnow()
    hints = {"user_agent": user_agent, "language": language, "origin": origin}
    conversation = Conversation(
        id=conversation_id,
        token_hash=token_hash,
        created_at=now,
        last_activity_at=now,
        transcript_consent=consent,
        consent_at=now if consent else None,
        **(hints if consent else {}),
    )
    session.add(conversation)
    await session.flush()
    return conversation


async def get_conversation_for_update(
    session: AsyncSession, conversation_id: str
) -> Conversation | None:
    """Load the conversation, row-locked until commit where the database supports it."""
    return await session.scalar(
        select(Conversation).where(Conversation.id == conversation_id, _OPEN).with_for_update()
    )


@dataclass
class TurnStart:
    """What a chat turn reads first, under the conversation's lock (:func:`start_turn`)."""

    conversation: Conversation
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
    conversation, last, is_pending = row
    return TurnStart(conversation, FIRST_SEQ if last is None else last + 1, bool(is_pending))


async def next_seq(session: AsyncSession, conversation_id: str) -> int:
    last = await session.scalar(
        select(func.max(Message.seq)).where(Message.conversation_id == conversation_id)
    )
    return FIRST_SEQ if last is None else last + 1


async def last_offered_buttons(
    session: AsyncSession, conversation_id: str
) -> list[schemas.Button]:
    """The buttons of the assistant's most recent reply batch in this conversation.

    That batch is every assistant message after the last answered patient message (or from
    the start: the opening messages). A patient message left unanswered (Rasa was down) has
    no replies, so pressing one of these buttons again still counts as pressing it.
    """
    last_answered = (
        select(func.max(Message.seq))
        .where(
            Message.conversation_id == conversation_id,
            Message.role == "patient",
            Message.status == "answered",
        )
        .scalar_subquery()
    )
    rows = await session.scalars(
        select(Message.buttons)
        .where(
            Message.conversation_id == conversation_id,
            Message.role == "assistant",
            Message.seq > func.coalesce(last_answered, 0),
        )
        .order_by(Message.seq)
    )
    return [schemas.Button.model_validate(b) for buttons in rows if buttons for b in buttons]


async def find_patient_message(
    session: AsyncSession, conversation_id: str, client_id: str
) -> Message | None:
    """The patient's message the client sent earlier with ``client_id``, if stored."""
    return await session.scalar(
        select(Message).where(
            Message.conversation_id == conversation_id,
            Message.client_id == client_id,
            Message.role == "patient",
        )
    )


async def add_patient_message(
    session: AsyncSession,
    conversation: Conversation,
    *,
    text: str,
    button_title: str | None,
    client_id: str | None = None,
    seq: int | None = None,
) -> Message:
    """Store the patient's message as 'unanswered'; it becomes 'answered' with the reply.

    ``seq``: its ``seq`` when the caller knows the next one (:func:`start_turn`); else read.
    """
    now = utcnow()
    message = Message(
        conversation_id=conversation.id,
        seq=seq if seq is not None else await next_seq(session, conversation.id),
        role="patient",
        text=text,
        button_title=button_title,
        client_id=client_id,
        status="unanswered",
        created_at=now,
    )
    session.add(message)
    conversation.last_activity_at = now
    await session.flush()
    return message


async def retry_patient_message(
    session: AsyncSession, conversation: Conversation, patient: Message, button_title: str | None
) -> None:
    """Make the unanswered ``patient`` message the conversation's latest again, to resend it."""
    if patient.seq != await next_seq(session, conversation.id) - 1:
        patient.seq = await next_seq(session, conversation.id)
    patient.button_title = button_title
    conversation.last_activity_at = utcnow()
    await session.flush()


async def stored_messages(session: AsyncSession, conversation_id: str) -> Sequence[Message]:
    """Every stored message of the conversation, in order."""
    rows = await session.scalars(
        select(Message).where(Message.conversation_id == conversation_id).order_by(Message.seq)
    )
    return rows.all()


async def pending_patient_messages(session: AsyncSession, conversation_id: str) -> list[Message]:
    """The conversation's patient messages whose turn Rasa's tracker may not agree with yet."""
    rows = await session.scalars(
        select(Message)
        .where(
            Message.conversation_id == conversation_id,
            Message.role == "patient",
            Message.tracker_pending.is_(True),
        )
        .order_by(Message.seq)
    )
    return list(rows.all())


async def stored_replies(
    session: AsyncSession, patient: Message, *, summary_link: str
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


def record_understanding(patient: Message, nlu: RasaNlu) -> None:
    patient.status = "answered"
    patient.intent = nlu.intent
    patient.intent_confidence = nlu.confidence
    patient.entities = nlu.entities


def apply_red_flag(
    conversation: Conversation, patient: Message | None, reply: RasaReply, now: datetime
) -> bool:
    """Flag the conversation (keeping its most severe level) and the patient's message with
    the reply's red-flag level; True if there was one to record.

    ``patient`` is None for the opening messages. Nothing is recorded without transcript
    consent.
    """
    level = batch_red_flag(reply.messages)
    if level is None or not conversation.transcript_consent:
        return False
    conversation.red_flag_level = most_severe(conversation.red_flag_level, level)
    if conversation.red_flag_at is None:
        conversation.red_flag_at = now
    if patient is not None:
        patient.red_flag = most_severe(patient.red_flag, level)
        names = [
            name
            for m in reply.messages
            if m.custom and m.custom.red_flag
            for name in m.custom.red_flag.flags
        ]
        patient.red_flag_names = list(dict.fromkeys([*(patient.red_flag_names or []), *names]))
    return True


def _apply_record(conversation: Conversation, update: dict[str, Any]) -> None:
    merged = merge_record(conversation.record or {}, update)
    if json_size(merged) > MAX_RECORD_BYTES:
        logger.warning(
            "conversation %s: record update ignored (the record would exceed %d bytes)",
            short_id(conversation.id),
            MAX_RECORD_BYTES,
        )
        return
    conversation.record = merged  # a new dict, so the JSON column sees the change


def _add_callback(
    session: AsyncSession, conversation: Conversation, callback: Callback, now: datetime
) -> None:
    session.add(
        CallbackRequest(
            conversation_id=conversation.id,
            name=callback.name,
            phone=callback.phone,
            email=callback.email,
            preferred_time=callback.preferred_time,
            consent_at=now,
            status="open",
            created_at=now,
        )
    )
    logger.info("conversation %s: callback request stored", short_id(conversation.id))


def apply_data(
    session: AsyncSession, conversation: Conversation, custom: RasaCustom, now: datetime
) -> None:
    """Apply one message's record, callback and summary blocks.

    (Red flags are applied per reply, by :func:`apply_red_flag`; a ``field_check`` result is
    counted apart from the conversation by :func:`store_replies`, ``api.field_checks``.)
    """
    if custom.record is not None:
        _apply_record(conversation, custom.record)
    if custom.callback is not None:
        _add_callback(session, conversation, custom.callback, now)
    if custom.summary is not None:
        conversation.summary = custom.summary.model_dump(mode="json")
        conversation.summary_at = now


async def store_replies(
    session: AsyncSession,
    conversation: Conversation,
    reply: RasaReply,
    patient: Message | None = None,
    *,
    summary_link: str,
    first_seq: int | None = None,
) -> list[schemas.Message]:
    """Apply the reply's data and return the messages there is something to show, in order.

    Every message's ``custom`` data is applied, also that of a message with neither text nor
    buttons (not shown). With transcript consent the reply's red-flag level goes on
    ``patient`` (the turn's message) and the conversation, and the shown messages are
    stored (their ``id`` is their ``seq``); without it nothing of the turn is stored.
    ``first_seq``: the first reply's ``seq`` when the caller knows it (under the
    conversation's lock: ``patient.seq + 1`` when ``patient`` is the latest message,
    :data:`FIRST_SEQ` for a new conversation); otherwise it is read.
    """
    now = utcnow()
    for message in reply.messages:
        if message.custom is not None:
            apply_data(session, conversation, message.custom, now)
            if message.custom.field_check is not None:  # anonymous: kept without the conversation
                await field_checks.record(session, message.custom.field_check, now)
    shown = present(reply.messages, summary_link=summary_link)
    rows: list[dict[str, Any]] = []
    if conversation.transcript_consent:
        apply_red_flag(conversation, patient, reply, now)
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
    conversation.last_activity_at = now
    if rows:
        # One INSERT for the batch, after the pending changes are flushed (nothing reads
        # these rows back as objects: their public id is their seq).
        await session.execute(insert(Message), rows)
    else:
        await session.flush()
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

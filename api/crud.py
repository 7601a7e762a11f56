"""Database reads and writes of the chat routes (no HTTP here)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api import schemas
from api.bot_data import MAX_RECORD_BYTES, Callback, json_size, merge_record
from api.models import CallbackRequest, Conversation, Message, utcnow
from api.rasa_client import RasaCustom, RasaMessage, RasaNlu, RasaReply
from api.red_flags import RedFlagLevel, most_severe

logger = logging.getLogger(__name__)


def summary_url(conversation_id: str) -> str:
    """The relative URL of a conversation's printable summary."""
    return f"/api/v1/conversations/{conversation_id}/summary"


async def conversation_exists(session: AsyncSession, conversation_id: str) -> bool:
    found = await session.scalar(select(Conversation.id).where(Conversation.id == conversation_id))
    return found is not None


async def create_conversation(
    session: AsyncSession,
    conversation_id: str,
    *,
    user_agent: str | None,
    language: str | None,
    origin: str | None,
) -> Conversation:
    conversation = Conversation(
        id=conversation_id, user_agent=user_agent, language=language, origin=origin
    )
    session.add(conversation)
    await session.flush()
    return conversation


async def get_conversation_for_update(
    session: AsyncSession, conversation_id: str
) -> Conversation | None:
    """Load the conversation, row-locked until commit where the database supports it."""
    return await session.scalar(
        select(Conversation).where(Conversation.id == conversation_id).with_for_update()
    )


async def next_seq(session: AsyncSession, conversation_id: str) -> int:
    last = await session.scalar(
        select(func.max(Message.seq)).where(Message.conversation_id == conversation_id)
    )
    return (last or 0) + 1


async def last_offered_buttons(session: AsyncSession, conversation_id: str) -> list[dict[str, Any]]:
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
    return [button for buttons in rows if buttons for button in buttons]


async def add_patient_message(
    session: AsyncSession,
    conversation: Conversation,
    *,
    text: str,
    button_title: str | None,
) -> Message:
    """Store the patient's message as 'unanswered'; it becomes 'answered' with the reply."""
    now = utcnow()
    message = Message(
        conversation_id=conversation.id,
        seq=await next_seq(session, conversation.id),
        role="patient",
        text=text,
        button_title=button_title,
        status="unanswered",
        created_at=now,
    )
    session.add(message)
    conversation.last_activity_at = now
    await session.flush()
    return message


def record_understanding(patient: Message, nlu: RasaNlu) -> None:
    patient.status = "answered"
    patient.intent = nlu.intent
    patient.intent_confidence = nlu.confidence
    patient.entities = nlu.entities


def to_public(
    message: RasaMessage, *, red_flag: RedFlagLevel | None = None, summary_url: str | None = None
) -> schemas.Message:
    """Map one Rasa message to the public Message shape."""
    custom = message.custom
    return schemas.Message(
        text=message.text or "",
        buttons=[schemas.Button(title=b.title, payload=b.payload) for b in message.buttons or []],
        sources=[
            schemas.Source(id=s.id, title=s.title, url=s.url)
            for s in (custom.sources if custom else [])
        ],
        topic=custom.topic if custom else None,
        red_flag=red_flag,
        summary_url=summary_url,
    )


def reply_red_flag(reply: RasaReply) -> RedFlagLevel | None:
    """The most severe red-flag level any message of ``reply`` carries."""
    return most_severe(
        *(m.custom.red_flag.level for m in reply.messages if m.custom and m.custom.red_flag)
    )


def apply_red_flag(
    conversation: Conversation, patient: Message | None, reply: RasaReply, now: datetime
) -> RedFlagLevel | None:
    """Flag the conversation (keeping its most severe level) and the patient's message.

    Returns the reply's level. ``patient`` is None for the opening messages.
    """
    level = reply_red_flag(reply)
    if level is None:
        return None
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
    return level


def _apply_record(conversation: Conversation, update: dict[str, Any]) -> None:
    merged = merge_record(conversation.record or {}, update)
    if json_size(merged) > MAX_RECORD_BYTES:
        logger.warning(
            "conversation %s: record update ignored (the record would exceed %d bytes)",
            conversation.id[:8],
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
    logger.info("conversation %s: callback request stored", conversation.id[:8])


def apply_data(
    session: AsyncSession, conversation: Conversation, custom: RasaCustom, now: datetime
) -> bool:
    """Apply one message's record, callback and summary blocks; True if it carried a summary.

    (Red flags are applied per reply, by :func:`apply_red_flag`.)
    """
    if custom.record is not None:
        _apply_record(conversation, custom.record)
    if custom.callback is not None:
        _add_callback(session, conversation, custom.callback, now)
    if custom.summary is not None:
        conversation.summary = custom.summary.model_dump(mode="json")
        conversation.summary_at = now
        return True
    return False


async def store_replies(
    session: AsyncSession,
    conversation: Conversation,
    reply: RasaReply,
    patient: Message | None = None,
) -> list[schemas.Message]:
    """Apply the reply's data and store the messages there is something to show, in order.

    Every message's ``custom`` data is applied, including that of a message with neither
    text nor buttons, which is not stored or shown. The reply's red-flag level goes on
    ``patient`` (the turn's message), on the conversation, and on every shown message. A
    summary carried by a message that is not shown is offered by the next shown message
    (or, if none follows, the last one).
    """
    seq = await next_seq(session, conversation.id)
    now = utcnow()
    level = apply_red_flag(conversation, patient, reply, now)
    link = summary_url(conversation.id)
    public: list[schemas.Message] = []
    summary_pending = False
    for rasa_message in reply.messages:
        custom = rasa_message.custom
        if custom is not None and apply_data(session, conversation, custom, now):
            summary_pending = True
        if rasa_message.is_empty:
            continue
        shown = to_public(
            rasa_message, red_flag=level, summary_url=link if summary_pending else None
        )
        summary_pending = False
        session.add(
            Message(
                conversation_id=conversation.id,
                seq=seq,
                role="assistant",
                text=shown.text,
                buttons=[b.model_dump() for b in shown.buttons],
                sources=[s.model_dump() for s in shown.sources],
                topic=shown.topic,
                entry_id=custom.entry_id if custom else None,
                score=custom.score if custom else None,
                certainty=custom.certainty if custom else None,
                created_at=now,
            )
        )
        public.append(shown)
        seq += 1
    if summary_pending and public:
        public[-1].summary_url = link
    conversation.last_activity_at = now
    await session.flush()
    return public


async def get_summary(session: AsyncSession, conversation_id: str) -> dict[str, Any] | None:
    """The conversation's stored summary document; None for an unknown id or no summary."""
    summary: dict[str, Any] | None = await session.scalar(
        select(Conversation.summary).where(Conversation.id == conversation_id)
    )
    return summary


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

"""Database reads and writes of the chat routes (no HTTP here)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api import schemas
from api.models import Conversation, Message, utcnow
from api.rasa_client import RasaMessage, RasaNlu, RasaReply


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


def to_public(message: RasaMessage) -> schemas.Message:
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
    )


async def store_replies(
    session: AsyncSession, conversation: Conversation, reply: RasaReply
) -> list[schemas.Message]:
    """Store the assistant's messages (skipping ones with neither text nor buttons), in order."""
    seq = await next_seq(session, conversation.id)
    now = utcnow()
    public: list[schemas.Message] = []
    for rasa_message in reply.messages:
        if rasa_message.is_empty:
            continue
        shown = to_public(rasa_message)
        custom = rasa_message.custom
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
    conversation.last_activity_at = now
    await session.flush()
    return public

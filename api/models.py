"""SQLAlchemy 2 models: the one authoritative record of each conversation.

Every change to these models needs a new Alembic revision in ``api/migrations/versions``;
``tests/api/test_migrations.py`` fails while the two disagree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

Role = Literal["patient", "assistant"]
Status = Literal["answered", "unanswered"]

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s_%(column_1_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time as a timezone-aware UTC datetime."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp always returned as an aware UTC datetime, on SQLite too.

    Naive datetimes are refused on the way in, so no local time can slip into the record.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class Conversation(Base):
    """One chat. Its id is the bearer secret the browser holds, created by the API only.

    No IP address is stored; the client hints help staff read a transcript in context.
    """

    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    last_activity_at: Mapped[datetime] = mapped_column(default=utcnow)
    user_agent: Mapped[str | None] = mapped_column(String(512))
    """The browser's User-Agent, cut to 512 characters."""
    language: Mapped[str | None] = mapped_column(String(35))
    """The first language tag of Accept-Language (e.g. ``en-GB``)."""
    origin: Mapped[str | None] = mapped_column(String(255))
    """The Origin header (scheme, host and port of the page embedding the chat)."""

    messages: Mapped[list[Message]] = relationship(
        back_populates="conversation",
        order_by="Message.seq",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class Message(Base):
    """One turn's message, patient or assistant, in per-conversation order ``seq`` (from 1)."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("conversation_id", "seq"),
        CheckConstraint("role IN ('patient', 'assistant')", name="role"),
        CheckConstraint("status IS NULL OR status IN ('answered', 'unanswered')", name="status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(
        String(128), ForeignKey("conversations.id", ondelete="CASCADE")
    )
    seq: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text, default="")
    button_title: Mapped[str | None] = mapped_column(Text)
    """Patient messages: the title of the assistant's button whose payload this was."""
    buttons: Mapped[list[Any] | None] = mapped_column()
    """Assistant messages: ``[{"title", "payload"}]`` as offered."""
    sources: Mapped[list[Any] | None] = mapped_column()
    """Assistant messages: ``[{"id", "title", "url"}]`` the answer cites."""
    topic: Mapped[str | None] = mapped_column(String(128))
    entry_id: Mapped[str | None] = mapped_column(String(128))
    """Assistant messages: the knowledge-base entry the answer came from."""
    score: Mapped[float | None] = mapped_column(Float)
    """Assistant messages: the retrieval score of that entry."""
    certainty: Mapped[str | None] = mapped_column(String(64))
    """Assistant messages: how certain the entry says the evidence is."""
    intent: Mapped[str | None] = mapped_column(String(128))
    """Patient messages: the intent Rasa recognised."""
    intent_confidence: Mapped[float | None] = mapped_column(Float)
    entities: Mapped[list[Any] | None] = mapped_column()
    """Patient messages: the entities Rasa extracted."""
    status: Mapped[str | None] = mapped_column(String(16))
    """Patient messages: 'unanswered' until the assistant's reply is stored, then 'answered'."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    conversation: Mapped[Conversation] = relationship(back_populates="messages")

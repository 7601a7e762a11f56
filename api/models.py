"""SQLAlchemy 2 models: the one authoritative record of each conversation.

Every change to these models needs a new Alembic revision in ``api/migrations/versions``;
``tests/api/test_migrations.py`` fails while the two disagree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, get_args

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from contract.levels import LEVELS



def sql_check(column: str) -> str:
    """The SQL CHECK expression allowing NULL or one of the red-flag levels in ``column``."""
    allowed = ", ".join(f"'{level}'" for level in LEVELS)
    return f"{column} IS NULL OR {column} IN ({allowed})"


Role = Literal["patient", "assistant"]
Status = Literal["answered", "unanswered"]
CallbackStatus = Literal["open", "done"]

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


def short_id(conversation_id: str) -> str:
    """A prefix of a conversation id for logs and staff pages: enough to find the row, not
    enough to use the conversation (the whole id is its bearer secret)."""
    return conversation_id[:8]


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
    Without transcript consent the row holds only the id, the times and the consent, plus
    what the patient consented to separately (callback requests, ``record``) and the
    summary; it has no messages and no red-flag marks, and ``api.retention`` deletes it
    (or, when it still holds such data, marks it expired) once it has been idle long enough.
    """

    __tablename__ = "conversations"
    __table_args__ = (CheckConstraint(sql_check("red_flag_level"), name="red_flag_level"),)

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    token_hash: Mapped[str | None] = mapped_column(String(64))
    """SHA-256 (hex) of the conversation's bearer token (``api.conversation_auth``); the
    token itself is never stored. Null for conversations from before tokens."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    last_activity_at: Mapped[datetime] = mapped_column(default=utcnow)
    user_agent: Mapped[str | None] = mapped_column(String(512))
    """The browser's User-Agent, cut to 512 characters."""
    language: Mapped[str | None] = mapped_column(String(35))
    """The first language tag of Accept-Language (e.g. ``en-GB``)."""
    origin: Mapped[str | None] = mapped_column(String(255))
    """The Origin header (scheme, host and port of the page embedding the chat)."""
    red_flag_level: Mapped[str | None] = mapped_column(String(16), index=True)
    """The most severe red-flag level seen in this conversation (see ``contract.levels``)."""
    red_flag_at: Mapped[datetime | None] = mapped_column()
    """When the conversation was first flagged (any level)."""
    record: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=text("'{}'"))
    """Decision-support data the patient consented to keep (checklist, values, SURE, ...)."""
    summary: Mapped[dict[str, Any] | None] = mapped_column()
    """The latest consultation summary document (``schemas.Summary`` as JSON)."""
    summary_at: Mapped[datetime | None] = mapped_column()
    """When that summary was stored."""
    transcript_consent: Mapped[bool] = mapped_column(server_default=true())
    """Whether the patient agreed that the transcript be kept for staff (rows from before
    consent was asked default to true: they were kept under the notice of that time)."""
    consent_at: Mapped[datetime | None] = mapped_column()
    """When the API received that consent (null without consent)."""
    expired_at: Mapped[datetime | None] = mapped_column()
    """When an unconsented conversation was closed for good (its Rasa events and summary
    deleted, only its callback requests and record kept); the chat routes then answer 404."""
    reviewed_at: Mapped[datetime | None] = mapped_column()
    """Staff console: when a member of staff marked the conversation reviewed."""
    reviewed_by: Mapped[str | None] = mapped_column(String(128))
    """Staff console: the display name of who marked it reviewed."""
    staff_flag: Mapped[bool] = mapped_column(default=False, server_default=false())
    """Staff console: flagged by staff for attention."""

    messages: Mapped[list[Message]] = relationship(
        back_populates="conversation",
        order_by="Message.seq",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )
    callback_requests: Mapped[list[CallbackRequest]] = relationship(
        back_populates="conversation",
        order_by="CallbackRequest.id",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )
    tags: Mapped[list[ConversationTag]] = relationship(
        order_by="ConversationTag.tag", cascade="all, delete-orphan", passive_deletes=True
    )
    notes: Mapped[list[StaffNote]] = relationship(
        order_by="StaffNote.id", cascade="all, delete-orphan", passive_deletes=True
    )


class Message(Base):
    """One turn's message, patient or assistant, in per-conversation order ``seq`` (from 1)."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("conversation_id", "seq"),
        CheckConstraint("role IN ('patient', 'assistant')", name="role"),
        CheckConstraint("status IS NULL OR status IN ('answered', 'unanswered')", name="status"),
        CheckConstraint(sql_check("red_flag"), name="red_flag"),
        CheckConstraint("feedback IS NULL OR feedback IN ('up', 'down')", name="feedback"),
        Index("uq_messages_conversation_id_client_id", "conversation_id", "client_id", unique=True),
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
    red_flag: Mapped[str | None] = mapped_column(String(16))
    """Patient messages: the red-flag level this message triggered (the reply's most severe)."""
    red_flag_names: Mapped[list[Any] | None] = mapped_column()
    """Patient messages: the names of the red flags the bot recognised in it."""
    client_id: Mapped[str | None] = mapped_column(String(64))
    """Patient messages: the id the client gave the message, so a retry is not stored twice."""
    offers_summary: Mapped[bool] = mapped_column(default=False, server_default=false())
    """Assistant messages: this message offered the consultation summary (``summary_url``)."""
    feedback: Mapped[str | None] = mapped_column(String(8))
    """Assistant messages: the patient's rating, 'up' or 'down' (null: none or withdrawn)."""
    feedback_at: Mapped[datetime | None] = mapped_column()
    """When the rating was last given or withdrawn."""
    tracker_pending: Mapped[bool] = mapped_column(default=False, server_default=false())
    """Patient messages: the bot did not answer in time (the safety net may have): Rasa's
    tracker is compared with this turn at the next contact (``api.tracker_sync``)."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    conversation: Mapped[Conversation] = relationship(back_populates="messages")


class CallbackRequest(Base):
    """A patient's request to be called or written to by the clinic, with their consent.

    The bot collects and validates it; the API validates it again before it is stored here.
    Staff mark it 'done' (``done_at``) once they have answered it.
    """

    __tablename__ = "callback_requests"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'done')", name="status"),
        CheckConstraint("phone IS NOT NULL OR email IS NOT NULL", name="contact"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(
        String(128), ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(254))
    preferred_time: Mapped[str | None] = mapped_column(String(200))
    """When the patient would like to be contacted, in their words (as the bot collected it)."""
    consent_at: Mapped[datetime] = mapped_column()
    """When the API received the patient's consent to be contacted."""
    status: Mapped[str] = mapped_column(String(8), default="open", index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column()
    done_by: Mapped[str | None] = mapped_column(String(128))
    """The display name of the member of staff who marked it done."""

    conversation: Mapped[Conversation] = relationship(back_populates="callback_requests")


NotificationKind = Literal["red_flag", "callback", "reminder"]
NOTIFICATION_KINDS: tuple[str, ...] = get_args(NotificationKind)
NotificationStatus = Literal["pending", "sent", "failed"]
NOTIFICATION_STATUSES: tuple[str, ...] = get_args(NotificationStatus)


class StaffNotification(Base):
    """Staff told that a conversation needs them (``api.notifications``): a red flag (the
    conversation's first, or a more severe level), a callback request, or a reminder of a
    same-day-or-worse flag nobody has marked reviewed.

    The outbox: a row is written in the same transaction as what it tells of, and the
    dispatcher sends it by email and/or webhook, retrying until every channel took it. It
    holds no health or contact detail beyond the level; the message points to the
    conversation in the staff console. Deleted with its conversation.
    """

    __tablename__ = "staff_notifications"
    __table_args__ = (
        CheckConstraint(
            "kind IN (" + ", ".join(f"'{k}'" for k in NOTIFICATION_KINDS) + ")", name="kind"),
        CheckConstraint(
            "status IN (" + ", ".join(f"'{s}'" for s in NOTIFICATION_STATUSES) + ")",
            name="status"),
        CheckConstraint(sql_check("level"), name="level"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(
        String(128), ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    level: Mapped[str | None] = mapped_column(String(16))
    """The red-flag level (red flags and reminders); None for a callback request."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(8), default="pending", index=True)
    """``pending`` until every configured channel took it (``sent``), or ``failed`` once
    ``api.notifications.dispatch.MAX_ATTEMPTS`` tries did not get it through."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    """Not tried before this time: the retry's back-off, or a dispatcher's claim on it."""
    delivered: Mapped[list[Any]] = mapped_column(default=list)
    """The channels (``email``, ``webhook``) that took it: a retry skips them."""
    last_error: Mapped[str | None] = mapped_column(String(200))
    """Why the last try failed, per channel (the kind of error, never a secret)."""
    sent_at: Mapped[datetime | None] = mapped_column()


StaffRole = Literal["admin", "reviewer"]
STAFF_ROLES: tuple[str, ...] = ("admin", "reviewer")


class ConversationTag(Base):
    """A label staff put on a conversation (e.g. ``knowledge-gap``); one row per tag."""

    __tablename__ = "conversation_tags"

    conversation_id: Mapped[str] = mapped_column(
        String(128), ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(128))


class StaffNote(Base):
    """A note a member of staff wrote on a conversation (shown to staff only)."""

    __tablename__ = "staff_notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(
        String(128), ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    author_name: Mapped[str] = mapped_column(String(128))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StaffUser(Base):
    """A staff account of the console. No default account exists: the first admin is made
    with ``python -m api.cli create-user``. ``username`` is stored lower-case."""

    __tablename__ = "staff_users"
    __table_args__ = (
        CheckConstraint("role IN ('admin', 'reviewer')", name="role"),
        Index("uq_staff_users_username", "username", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    """argon2id (``api.staff.passwords``)."""
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    """Base32 secret of the second factor (null: not set up; ``MESO_STAFF_REQUIRE_TOTP``
    says who must set it up)."""
    totp_last_step: Mapped[int | None] = mapped_column(Integer)
    """The time step (unix time // 30) of the last code accepted: that code and every
    earlier one are refused (no replay)."""
    totp_failures: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    """Wrong codes in a row, over all sign-ins of the account (reset by a right one)."""
    totp_locked_until: Mapped[datetime | None] = mapped_column()
    """No code is checked before this time (after too many wrong ones)."""
    is_active: Mapped[bool] = mapped_column(default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column()

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class StaffSession(Base):
    """A signed-in browser. ``id`` is the SHA-256 (hex) of the cookie's random token, so the
    database never holds a usable token."""

    __tablename__ = "staff_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("staff_users.id", ondelete="CASCADE"), index=True
    )
    csrf_token: Mapped[str] = mapped_column(String(64))
    mfa_pending: Mapped[bool] = mapped_column(default=False, server_default=false())
    """The password was right but the TOTP code is still to be given."""
    mfa_failures: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    """Wrong passwords or codes given to re-authenticate in this session (it is deleted at
    the limit). Wrong codes at sign-in count on the account (``StaffUser.totp_failures``)."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    """Sign-in: the session ends ``MESO_STAFF_SESSION_MAX_HOURS`` after it, active or not."""
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    authenticated_at: Mapped[datetime | None] = mapped_column()
    """When the password or a code was last given in this session (null: at
    ``created_at``); exports with personal details and erasure need it recent."""

    user: Mapped[StaffUser] = relationship(lazy="joined")


class AuditEntry(Base):
    """One line of the audit log: who did what to which record, when.

    ``actor_id`` has no foreign key, so the line outlives the account; ``detail`` holds ids,
    counts, action names and filter values only, never message text or personal details.
    Nothing in the console edits or deletes these rows.

    The rows form a hash chain (``api.staff.audit``): ``entry_hash`` is the SHA-256 of the
    entry's fields and ``prev_hash``, the hash of the entry before it (by ``id``), so
    ``python -m api.cli audit-verify`` finds a row altered, deleted or inserted. Null only
    in a row written outside the API (which the check reports).
    """

    __tablename__ = "audit_log"
    __table_args__ = (Index("uq_audit_log_prev_hash", "prev_hash", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(Integer)
    actor_name: Mapped[str] = mapped_column(String(128), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(128))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=text("'{}'"))
    client_address: Mapped[str | None] = mapped_column(String(64))
    """The address of the client whose request made the entry, as the API sees it (after
    ``MESO_TRUSTED_PROXIES``); null for commands and background tasks."""
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    """``entry_hash`` of the entry before this one (64 zeros for the first)."""
    entry_hash: Mapped[str | None] = mapped_column(String(64))
    """SHA-256 (hex) of this entry's canonical JSON, ``prev_hash`` included."""


class FieldCheckCount(Base):
    """How many finished field-test checks (``api.field_checks``) had this result in a month.

    Anonymous by construction: no conversation id, no time finer than the month, and no row
    per person (a count per month, phase, score and SURE count), so nothing here, not even
    the order rows were written in, can be linked back to a chat. ``phase`` is ``before``
    (at the start of the guided steps) or ``after`` (at their end); the two are different
    answers, never paired.
    """

    __tablename__ = "field_check_counts"
    __table_args__ = (
        CheckConstraint("phase IN ('before', 'after')", name="phase"),
        CheckConstraint("knowledge BETWEEN 0 AND 5", name="knowledge"),
        CheckConstraint("sure BETWEEN 0 AND 4", name="sure"),
        CheckConstraint("checks >= 1", name="checks"),
    )

    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    """``YYYY-MM`` (UTC) of the check."""
    phase: Mapped[str] = mapped_column(String(8), primary_key=True)
    knowledge: Mapped[int] = mapped_column(Integer, primary_key=True)
    """Knowledge questions answered right, 0-5."""
    sure: Mapped[int] = mapped_column(Integer, primary_key=True)
    """SURE questions answered yes, 0-4."""
    checks: Mapped[int] = mapped_column(Integer, default=1)
    """How many finished checks had exactly this result."""


class JobRun(Base):
    """When a background job (the idle purge) last started, whichever worker ran it.

    Every API worker wakes for the job; the one that moves ``started_at`` forward (a single
    conditional update, ``api.jobs.claim_round``) runs that round, the others skip it. No
    personal data.
    """

    __tablename__ = "job_runs"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())


def _conversation_tables() -> tuple[str, ...]:
    conversations = Conversation.__table__
    return tuple(
        table.name for table in Base.metadata.sorted_tables
        if table is conversations
        or any(key.column.table is conversations for key in table.foreign_keys)
    )


CONVERSATION_TABLES: tuple[str, ...] = _conversation_tables()
"""The tables holding a conversation's content: its own and those deleted with it (their
foreign key to it cascades), which an erasure deletes from."""

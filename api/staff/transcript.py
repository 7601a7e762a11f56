"""One conversation for staff: its facts and turns ready to display, and the staff actions on it.

The view objects hold plain strings and numbers; the templates escape every one of them
(nothing here is ever marked safe). Each action changes the row and adds its audit entry;
the caller commits both together. The audit log gets ids, counts and action names only:
a note's length, never its text. What of a conversation is shown follows
:mod:`api.staff.visibility` (without transcript consent: no turns, no client hints).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.models import (
    CallbackRequest,
    Conversation,
    ConversationTag,
    Message,
    StaffNote,
    StaffUser,
    utcnow,
)
from api.pages import web_url
from api.staff.audit import audit
from api.staff.inbox_query import (
    FALLBACK_INTENT,
    LOW_CONFIDENCE,
    level_label,
    normalise_tag,
)
from api.staff.visibility import shown_hint, shown_messages

NOTE_MAX_CHARS = 2000


def staff_name(user: StaffUser) -> str:
    """How a member of staff is named on what they did."""
    return user.display_name or user.username


@dataclass
class SourceLink:
    title: str
    url: str | None
    """Only an http(s) address (anything else is not made a link)."""


@dataclass
class TurnView:
    """One stored message, patient or assistant."""

    seq: int
    role: str
    at: str
    """The time of day (UTC), to the second."""
    day: str
    """The day (UTC), shown where it changes."""
    at_iso: str
    text: str
    button_press: bool = False
    """Patient: the text is the title of the button pressed."""
    unanswered: bool = False
    intent: str | None = None
    confidence: str | None = None
    low_confidence: bool = False
    entities: list[str] = field(default_factory=list)
    red_flag_level: str | None = None
    red_flag_names: list[str] = field(default_factory=list)
    topic: str | None = None
    entry_id: str | None = None
    score: str | None = None
    certainty: str | None = None
    sources: list[SourceLink] = field(default_factory=list)
    buttons: list[str] = field(default_factory=list)
    feedback: str | None = None
    offers_summary: bool = False

    @property
    def red_flag_label(self) -> str | None:
        return level_label(self.red_flag_level)

    @property
    def who(self) -> str:
        return "Patient" if self.role == "patient" else "Assistant"


@dataclass
class RecordItem:
    """One entry of the decision-support record: a value or nested entries."""

    label: str
    value: str | None = None
    children: list[RecordItem] = field(default_factory=list)


@dataclass
class TranscriptView:
    conversation: Conversation
    turns: list[TurnView]
    tags: list[str]
    notes: list[StaffNote]
    callbacks: list[CallbackRequest]
    record: list[RecordItem]

    @property
    def red_flag_label(self) -> str | None:
        return level_label(self.conversation.red_flag_level)

    @property
    def summary_url(self) -> str | None:
        if self.conversation.summary is None:
            return None
        return f"/staff/conversations/{self.conversation.id}/summary"  # routes.staff.summary

    @property
    def language(self) -> str | None:
        return shown_hint(self.conversation, self.conversation.language)

    @property
    def origin(self) -> str | None:
        return shown_hint(self.conversation, self.conversation.origin)

    @property
    def user_agent(self) -> str | None:
        return shown_hint(self.conversation, self.conversation.user_agent)


def _number(value: float | None) -> str | None:
    return None if value is None else f"{value:.2f}"


def _sources(value: Any) -> list[SourceLink]:
    links: list[SourceLink] = []
    for source in value or []:
        if not isinstance(source, dict):
            continue
        title = source.get("title") or source.get("id")
        url = source.get("url")
        links.append(
            SourceLink(str(title or "(untitled)"), web_url(url) if isinstance(url, str) else None)
        )
    return links


def _entities(value: Any) -> list[str]:
    found: list[str] = []
    for entity in value or []:
        if isinstance(entity, dict) and entity.get("entity") is not None:
            found.append(f"{entity.get('entity')} = {entity.get('value')}")
    return found


def turn_view(row: Message) -> TurnView:
    """A stored message as the transcript shows it."""
    turn = TurnView(
        seq=row.seq,
        role=row.role,
        at=f"{row.created_at:%H:%M:%S}",
        day=f"{row.created_at.day} {row.created_at:%b %Y}",
        at_iso=row.created_at.isoformat(),
        text=row.button_title or row.text,
    )
    if row.role == "patient":
        turn.button_press = row.button_title is not None
        turn.unanswered = row.status == "unanswered"
        turn.intent = row.intent
        turn.confidence = _number(row.intent_confidence)
        turn.low_confidence = row.intent == FALLBACK_INTENT or (
            row.intent_confidence is not None and row.intent_confidence < LOW_CONFIDENCE
        )
        turn.entities = _entities(row.entities)
        turn.red_flag_level = row.red_flag
        turn.red_flag_names = [str(name) for name in row.red_flag_names or []]
    else:
        turn.topic = row.topic
        turn.entry_id = row.entry_id
        turn.score = _number(row.score)
        turn.certainty = row.certainty
        turn.sources = _sources(row.sources)
        turn.buttons = [
            str(b.get("title")) for b in row.buttons or [] if isinstance(b, dict) and b.get("title")
        ]
        turn.feedback = row.feedback
        turn.offers_summary = row.offers_summary
    return turn


def _label(key: str) -> str:
    words = key.replace("_", " ").replace("-", " ").strip()
    return words[:1].upper() + words[1:] if words else key


def _scalar(value: Any) -> str:
    if value is None:
        return "(none)"
    if value is True:
        return "yes"
    if value is False:
        return "no"
    return str(value)


def record_items(data: Any) -> list[RecordItem]:
    """The record (any JSON) as labelled entries: objects by key, lists numbered from 1."""
    if isinstance(data, dict):
        pairs = [(_label(str(key)), value) for key, value in data.items()]
    elif isinstance(data, list):
        pairs = [(str(i), value) for i, value in enumerate(data, start=1)]
    else:
        return [RecordItem("Value", _scalar(data))]
    items: list[RecordItem] = []
    for label, value in pairs:
        if isinstance(value, list) and all(not isinstance(v, dict | list) for v in value):
            items.append(RecordItem(label, ", ".join(_scalar(v) for v in value) or "(none)"))
        elif isinstance(value, dict | list):
            items.append(RecordItem(label, children=record_items(value)))
        else:
            items.append(RecordItem(label, _scalar(value)))
    return items


async def load_transcript(session: AsyncSession, conversation_id: str) -> TranscriptView | None:
    """Everything staff see of one conversation (its turns only with transcript consent);
    None for an unknown id."""
    conversation = await session.get(Conversation, conversation_id)
    if conversation is None:
        return None
    rows = await session.scalars(
        select(Message).where(Message.conversation_id == conversation_id).order_by(Message.seq)
    )
    tags = await session.scalars(
        select(ConversationTag.tag)
        .where(ConversationTag.conversation_id == conversation_id)
        .order_by(ConversationTag.tag)
    )
    notes = await session.scalars(
        select(StaffNote)
        .where(StaffNote.conversation_id == conversation_id)
        .order_by(StaffNote.created_at, StaffNote.id)
    )
    callbacks = await session.scalars(
        select(CallbackRequest)
        .where(CallbackRequest.conversation_id == conversation_id)
        .order_by(CallbackRequest.id)
    )
    return TranscriptView(
        conversation=conversation,
        turns=[turn_view(row) for row in shown_messages(conversation, rows)],
        tags=list(tags),
        notes=list(notes),
        callbacks=list(callbacks),
        record=record_items(conversation.record) if conversation.record else [],
    )


# --- actions -------------------------------------------------------------------------------
# Each returns a notice for the page (a key of NOTICES), or raises ValueError with a sentence
# for staff when the input is unfit (then nothing is changed).

NOTICES: dict[str, str] = {
    "tag_add": "Tag added.",
    "tag_exists": "That tag was already there.",
    "tag_remove": "Tag removed.",
    "tag_missing": "That tag was not there.",
    "note_add": "Note added.",
    "review": "Marked as reviewed.",
    "unreview": "Marked as not reviewed.",
    "flag": "Flagged for attention.",
    "unflag": "Flag removed.",
    "callback_done": "Callback request marked done.",
    "callback_already_done": "That callback request was already done.",
}
"""What the page says after each action (the redirect carries only the key)."""


async def add_tag(
    session: AsyncSession, user: StaffUser, conversation: Conversation, raw: str
) -> str:
    tag = normalise_tag(raw)
    found = await session.get(ConversationTag, (conversation.id, tag))
    if found is not None:
        return "tag_exists"
    session.add(
        ConversationTag(
            conversation_id=conversation.id,
            tag=tag,
            created_at=utcnow(),
            created_by=staff_name(user),
        )
    )
    audit(session, user, "tag_add", "conversation", conversation.id, tag=tag)
    return "tag_add"


async def remove_tag(
    session: AsyncSession, user: StaffUser, conversation: Conversation, raw: str
) -> str:
    tag = normalise_tag(raw)
    result = await session.execute(
        delete(ConversationTag).where(
            ConversationTag.conversation_id == conversation.id, ConversationTag.tag == tag
        )
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return "tag_missing"
    audit(session, user, "tag_remove", "conversation", conversation.id, tag=tag)
    return "tag_remove"


async def add_note(
    session: AsyncSession, user: StaffUser, conversation: Conversation, raw: str
) -> str:
    text = raw.strip()
    if not text:
        raise ValueError("Write the note first: it cannot be empty.")
    if len(text) > NOTE_MAX_CHARS:
        raise ValueError(
            f"A note can be at most {NOTE_MAX_CHARS} characters long (this one has {len(text)})."
        )
    note = StaffNote(
        conversation_id=conversation.id,
        author_name=staff_name(user),
        text=text,
        created_at=utcnow(),
    )
    session.add(note)
    await session.flush()
    audit(
        session, user, "note_add", "conversation", conversation.id,
        note_id=note.id, length=len(text),
    )
    return "note_add"


def set_reviewed(
    session: AsyncSession, user: StaffUser, conversation: Conversation, reviewed: bool
) -> str:
    if reviewed:
        conversation.reviewed_at = utcnow()
        conversation.reviewed_by = staff_name(user)
    else:
        conversation.reviewed_at = None
        conversation.reviewed_by = None
    action = "review" if reviewed else "unreview"
    audit(session, user, action, "conversation", conversation.id)
    return action


def set_flag(
    session: AsyncSession, user: StaffUser, conversation: Conversation, flagged: bool
) -> str:
    conversation.staff_flag = flagged
    action = "flag" if flagged else "unflag"
    audit(session, user, action, "conversation", conversation.id)
    return action


async def mark_callback_done(
    session: AsyncSession, user: StaffUser, conversation: Conversation, callback_id: int
) -> str | None:
    """None when the conversation has no such callback request."""
    callback = await session.scalar(
        select(CallbackRequest).where(
            CallbackRequest.id == callback_id, CallbackRequest.conversation_id == conversation.id
        )
    )
    if callback is None:
        return None
    if callback.status == "done":
        return "callback_already_done"
    callback.status = "done"
    callback.done_at = utcnow()
    callback.done_by = staff_name(user)
    audit(session, user, "callback_done", "conversation", conversation.id, callback_id=callback.id)
    return "callback_done"


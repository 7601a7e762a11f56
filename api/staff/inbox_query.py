"""The staff inbox: which conversations a filter selects, in what order, one page at a time.

* :class:`InboxFilters` reads the inbox's query string (``from_query``, ValueError with a
  sentence a member of staff can act on) and writes it back (``to_query``), so paging and
  export links keep the filters.
* :func:`filtered_conversations` is the SELECT of every matching conversation, priority
  first: unreviewed red flags by severity (crisis, emergency, same day, prompt), then open
  callback requests, then the newest. The export uses it for a filtered set.
* :func:`inbox_page` runs it for one page and gathers each row's facts (counts, topics, tags)
  with one query per kind for the whole page.

What staff may see follows :mod:`api.staff.visibility`: a conversation without transcript
consent is listed only when it holds something the patient agreed to keep on its own (a
callback request or a decision-support record), and its messages (if any row were there)
are never searched, counted or shown.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    exists,
    func,
    literal,
    not_,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from api.models import CallbackRequest, Conversation, ConversationTag, Message
from api.staff.visibility import LISTED, MESSAGE_SHOWN
from contract.levels import LEVELS

PAGE_SIZE = 50
"""Conversations per inbox page."""
LOW_CONFIDENCE = 0.6
"""A patient message understood with less confidence than this counts as "low confidence"
(the threshold below which Rasa's pipeline falls back)."""
FALLBACK_INTENT = "nlu_fallback"
"""The intent Rasa gives a message it could not classify."""
MAX_SEARCH_CHARS = 200
MAX_PAGE = 100_000
TAG_MAX_CHARS = 64
TAG_PATTERN = re.compile(r"[a-z0-9 _-]+")
"""A tag: letters a to z, digits, spaces, hyphens and underscores (stored lower-case)."""

RedFlagFilter = Literal["flagged", "none", "prompt", "same_day", "emergency", "crisis"]
"""``flagged``: any level; ``none``: never flagged; else exactly that level."""
CallbackFilter = Literal["requested", "open", "done"]
"""``requested``: any callback request; ``open``: at least one not yet done; ``done``: all done."""

LEVEL_LABELS: dict[str, str] = {
    "crisis": "Crisis",
    "emergency": "Emergency",
    "same_day": "Same day",
    "prompt": "Prompt",
}
"""Plain-English names of the red-flag levels, most severe first."""
RED_FLAG_CHOICES: dict[str, str] = {
    "flagged": "Any red flag",
    **{level: LEVEL_LABELS[level] for level in reversed(LEVELS)},
    "none": "No red flag",
}
CALLBACK_CHOICES: dict[str, str] = {
    "requested": "Callback requested",
    "open": "Callback open",
    "done": "Callback done",
}
REVIEWED_CHOICES: dict[str, str] = {"yes": "Reviewed", "no": "Not reviewed"}


def level_label(level: str | None) -> str | None:
    """The plain-English name of a red-flag level (None for none)."""
    return LEVEL_LABELS.get(level) if level else None

_TRUE = {"1", "on", "true", "yes"}
_FALSE = {"", "0", "off", "false", "no"}


def normalise_tag(value: str) -> str:
    """``value`` as a tag (trimmed, inner spaces collapsed, lower-case); ValueError if unfit."""
    tag = " ".join(value.split()).lower()
    if not tag:
        raise ValueError("Write a tag: 1 to 64 characters.")
    if len(tag) > TAG_MAX_CHARS:
        raise ValueError(f"A tag can be at most {TAG_MAX_CHARS} characters long.")
    if not TAG_PATTERN.fullmatch(tag):
        raise ValueError(
            "A tag may contain only the letters a to z, digits, spaces, hyphens (-) and "
            "underscores (_)."
        )
    return tag


class FilterError(ValueError):
    """A filter value that cannot be used: ``field`` is the form field, the message says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _flag(params: Mapping[str, str], name: str, label: str) -> bool:
    value = params.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise FilterError(name, f'"{label}" must be ticked or not ticked.')


def _choice(params: Mapping[str, str], name: str, choices: Sequence[str], label: str) -> str | None:
    value = params.get(name, "").strip()
    if not value:
        return None
    if value not in choices:
        raise FilterError(name, f'"{label}" has an unknown value; choose one from the list.')
    return value


def _date(params: Mapping[str, str], name: str, label: str) -> date | None:
    value = params.get(name, "").strip()
    if not value:
        return None
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
    except ValueError:
        pass
    raise FilterError(
        name, f'"{label}" must be a date written as YYYY-MM-DD, for example 2026-03-01.'
    )


def _tag(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return normalise_tag(value)
    except ValueError as exc:
        raise FilterError("tag", str(exc)) from None


def _page(params: Mapping[str, str]) -> int:
    value = params.get("page", "").strip()
    if not value:
        return 1
    if not value.isdigit() or not 1 <= int(value) <= MAX_PAGE:
        raise FilterError("page", "The page number must be a whole number from 1.")
    return int(value)


@dataclass(frozen=True)
class InboxFilters:
    """What the inbox shows: every field None/False means "no filter"."""

    q: str | None = None
    """Text searched for in the messages (case-insensitive substring)."""
    date_from: date | None = None
    """Started on or after this day (UTC)."""
    date_to: date | None = None
    """Started on or before this day (UTC)."""
    red_flag: RedFlagFilter | None = None
    low_confidence: bool = False
    """A patient message fell back or was understood with confidence under LOW_CONFIDENCE."""
    callback: CallbackFilter | None = None
    thumbs_down: bool = False
    """An assistant answer was rated thumbs down."""
    topic: str | None = None
    """An assistant answer was on this topic."""
    reviewed: bool | None = None
    tag: str | None = None
    page: int = 1

    @classmethod
    def from_query(cls, params: Mapping[str, str]) -> InboxFilters:
        """Read the inbox form's query parameters; unknown parameters are ignored.

        Raises :class:`FilterError` (a ValueError) with a sentence for staff when a value is
        not usable.
        """
        q = params.get("q", "").strip() or None
        if q is not None and len(q) > MAX_SEARCH_CHARS:
            raise FilterError(
                "q", f"The search text can be at most {MAX_SEARCH_CHARS} characters long."
            )
        date_from = _date(params, "date_from", "Started from")
        date_to = _date(params, "date_to", "Started to")
        if date_from and date_to and date_from > date_to:
            raise FilterError("date_to", '"Started to" must be on or after "Started from".')
        reviewed = _choice(params, "reviewed", list(REVIEWED_CHOICES), "Reviewed")
        topic = params.get("topic", "").strip() or None
        if topic is not None and len(topic) > 128:
            raise FilterError("topic", "That topic is not known; choose one from the list.")
        tag = params.get("tag", "").strip() or None
        red_flag: Any = _choice(params, "red_flag", list(RED_FLAG_CHOICES), "Red flag")
        callback: Any = _choice(params, "callback", list(CALLBACK_CHOICES), "Callback request")
        return cls(
            q=q,
            date_from=date_from,
            date_to=date_to,
            red_flag=red_flag,
            low_confidence=_flag(params, "low_confidence", "Fallback or low confidence"),
            callback=callback,
            thumbs_down=_flag(params, "thumbs_down", "Thumbs down"),
            topic=topic,
            reviewed=None if reviewed is None else reviewed == "yes",
            tag=_tag(tag),
            page=_page(params),
        )

    def to_query(self) -> dict[str, str]:
        """The query parameters that give these filters back (only those set; page from 2)."""
        query: dict[str, str] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name == "reviewed" and value is not None:
                query["reviewed"] = "yes" if value else "no"
            elif value is None or value is False or (item.name == "page" and value == 1):
                continue
            elif value is True:
                query[item.name] = "1"
            elif isinstance(value, date):
                query[item.name] = value.isoformat()
            else:
                query[item.name] = str(value)
        return query

    def with_page(self, page: int) -> InboxFilters:
        return replace(self, page=page)

    @property
    def active(self) -> bool:
        """True when anything but the page narrows the list."""
        return bool(self.with_page(1).to_query())

    def audit_detail(self) -> dict[str, Any]:
        """The filters for the audit log: the search text is left out (it may hold personal
        details); only its length is kept."""
        detail: dict[str, Any] = self.to_query()
        if detail.pop("q", None) is not None:
            detail["search_chars"] = len(self.q or "")
        return detail


def like_pattern(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, its ``%``, ``_`` and ``\\`` taken literally
    (escape character ``\\``)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _has_message(*conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    return exists().where(Message.conversation_id == Conversation.id, MESSAGE_SHOWN, *conditions)


def _has_callback(*conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    return exists().where(CallbackRequest.conversation_id == Conversation.id, *conditions)


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _conditions(filters: InboxFilters) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [LISTED]
    if filters.q is not None:
        pattern = like_pattern(filters.q)
        where.append(
            _has_message(
                or_(
                    Message.text.ilike(pattern, escape="\\"),
                    Message.button_title.ilike(pattern, escape="\\"),
                )
            )
        )
    if filters.date_from is not None:
        where.append(Conversation.created_at >= _start_of(filters.date_from))
    if filters.date_to is not None:
        where.append(Conversation.created_at < _start_of(filters.date_to + timedelta(days=1)))
    if filters.red_flag == "flagged":
        where.append(Conversation.red_flag_level.is_not(None))
    elif filters.red_flag == "none":
        where.append(Conversation.red_flag_level.is_(None))
    elif filters.red_flag is not None:
        where.append(Conversation.red_flag_level == filters.red_flag)
    if filters.low_confidence:
        where.append(
            _has_message(
                Message.role == "patient",
                or_(
                    Message.intent == FALLBACK_INTENT,
                    Message.intent_confidence < LOW_CONFIDENCE,
                ),
            )
        )
    if filters.callback == "requested":
        where.append(_has_callback())
    elif filters.callback == "open":
        where.append(_has_callback(CallbackRequest.status == "open"))
    elif filters.callback == "done":
        where.append(and_(_has_callback(), not_(_has_callback(CallbackRequest.status == "open"))))
    if filters.thumbs_down:
        where.append(_has_message(Message.role == "assistant", Message.feedback == "down"))
    if filters.topic is not None:
        where.append(_has_message(Message.role == "assistant", Message.topic == filters.topic))
    if filters.reviewed is True:
        where.append(Conversation.reviewed_at.is_not(None))
    elif filters.reviewed is False:
        where.append(Conversation.reviewed_at.is_(None))
    if filters.tag is not None:
        where.append(
            exists().where(
                ConversationTag.conversation_id == Conversation.id,
                ConversationTag.tag == filters.tag,
            )
        )
    return where


OPEN_CALLBACK_RANK = len(LEVELS)
"""The priority of a conversation with an open callback request (after every red flag)."""
NO_PRIORITY_RANK = OPEN_CALLBACK_RANK + 1


def _priority() -> ColumnElement[int]:
    """0 crisis, 1 emergency, 2 same day, 3 prompt (while not reviewed), then open callbacks."""
    unreviewed = Conversation.reviewed_at.is_(None)
    whens: list[tuple[ColumnElement[bool], int]] = [
        (and_(unreviewed, Conversation.red_flag_level == level), rank)
        for rank, level in enumerate(reversed(LEVELS))
    ]
    whens.append((_has_callback(CallbackRequest.status == "open"), OPEN_CALLBACK_RANK))
    return case(*whens, else_=literal(NO_PRIORITY_RANK))


def filtered_conversations(filters: InboxFilters) -> Select[tuple[Conversation]]:
    """Every conversation matching ``filters`` (the page ignored), priority first.

    Priority: red flags not yet reviewed by severity, then open callback requests; within
    each group and after them, the newest first.
    """
    return (
        select(Conversation)
        .where(*_conditions(filters))
        .order_by(_priority(), Conversation.created_at.desc(), Conversation.id)
    )


@dataclass
class InboxRow:
    """One line of the inbox."""

    conversation: Conversation
    patient_messages: int = 0
    thumbs_down: int = 0
    topics: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    callback: Literal["open", "done"] | None = None
    """``open`` if any request is still open, ``done`` if all are done, None without any."""

    @property
    def red_flag_label(self) -> str | None:
        return level_label(self.conversation.red_flag_level)


@dataclass
class InboxPage:
    rows: list[InboxRow]
    total: int
    page: int
    pages: int
    """At least 1 (an empty inbox is one empty page)."""


async def _grouped(
    session: AsyncSession, statement: Select[Any]
) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for conversation_id, value in await session.execute(statement):
        found.setdefault(conversation_id, []).append(value)
    return found


async def _counts(session: AsyncSession, statement: Select[Any]) -> dict[str, int]:
    return {conversation_id: n for conversation_id, n in await session.execute(statement)}


async def _row_facts(
    session: AsyncSession, conversations: Sequence[Conversation]
) -> list[InboxRow]:
    ids = [c.id for c in conversations]
    if not ids:
        return []
    mine = and_(Message.conversation_id.in_(ids), MESSAGE_SHOWN)
    patient = await _counts(
        session,
        select(Message.conversation_id, func.count())
        .where(mine, Message.role == "patient")
        .group_by(Message.conversation_id),
    )
    down = await _counts(
        session,
        select(Message.conversation_id, func.count())
        .where(mine, Message.role == "assistant", Message.feedback == "down")
        .group_by(Message.conversation_id),
    )
    topics = await _grouped(
        session,
        select(Message.conversation_id, Message.topic)
        .where(mine, Message.role == "assistant", Message.topic.is_not(None))
        .group_by(Message.conversation_id, Message.topic)
        .order_by(Message.conversation_id, Message.topic),
    )
    tags = await _grouped(
        session,
        select(ConversationTag.conversation_id, ConversationTag.tag)
        .where(ConversationTag.conversation_id.in_(ids))
        .order_by(ConversationTag.conversation_id, ConversationTag.tag),
    )
    callbacks = await _grouped(
        session,
        select(CallbackRequest.conversation_id, CallbackRequest.status).where(
            CallbackRequest.conversation_id.in_(ids)
        ),
    )

    def callback_state(statuses: list[str]) -> Literal["open", "done"] | None:
        if not statuses:
            return None
        return "open" if "open" in statuses else "done"

    return [
        InboxRow(
            conversation=c,
            patient_messages=patient.get(c.id, 0),
            thumbs_down=down.get(c.id, 0),
            topics=topics.get(c.id, []),
            tags=tags.get(c.id, []),
            callback=callback_state(callbacks.get(c.id, [])),
        )
        for c in conversations
    ]


async def inbox_page(
    session: AsyncSession, filters: InboxFilters, page_size: int = PAGE_SIZE
) -> InboxPage:
    """The page ``filters.page`` of the filtered inbox (past the last page: the last page)."""
    statement = filtered_conversations(filters)
    total = await session.scalar(
        select(func.count()).select_from(statement.order_by(None).subquery())
    )
    pages = max(1, math.ceil((total or 0) / page_size))
    page = min(filters.page, pages)
    conversations = (
        await session.scalars(statement.limit(page_size).offset((page - 1) * page_size))
    ).all()
    return InboxPage(
        rows=await _row_facts(session, conversations), total=total or 0, page=page, pages=pages
    )


async def known_topics(session: AsyncSession) -> list[str]:
    """Every topic an assistant answer has had, for the topic filter."""
    rows = await session.scalars(
        select(Message.topic)
        .where(Message.role == "assistant", Message.topic.is_not(None), MESSAGE_SHOWN)
        .distinct()
        .order_by(Message.topic)
    )
    return [topic for topic in rows if topic]


async def known_tags(session: AsyncSession) -> list[str]:
    """Every tag in use, for the tag filter."""
    rows = await session.scalars(
        select(ConversationTag.tag).distinct().order_by(ConversationTag.tag)
    )
    return list(rows)


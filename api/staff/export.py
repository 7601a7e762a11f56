"""Exports of conversations: CSV (one row per message), JSON (everything staff see), a
Rasa test story built from the conversation's tracker events and a conversation test
(:mod:`convtest`) drafted from the stored transcript.

Personal details (email addresses, phone numbers, the names and contacts of callback
requests) are masked by :mod:`api.staff.personal` unless ``personal`` is True; whether the
exporter may ask for that is the route's decision. CSV cells that a spreadsheet would read
as a formula are neutralised (OWASP "CSV injection"). In every format, bidirectional and
control characters are shown as markers such as ``[U+202E]`` (``api.text_hygiene.shown``).

What of a conversation is exported follows :mod:`api.staff.visibility`: without transcript
consent no message and no client hint is exported (only the callback requests, the record
and the staff's own data), and no story or conversation test is made (the routes refuse
before Rasa's tracker is read).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import yaml
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from api.history import stored_reply
from api.models import CallbackRequest, Conversation, Message, short_id
from api.signed_links import SUMMARY_PATH
from api.text_hygiene import shown, shown_value
from api.staff.personal import mask_email, mask_name, mask_phone, mask_text, mask_value
from api.staff.visibility import shown_hint, shown_messages
from convtest import draft

FORMULA_STARTS = frozenset("=+-@\t\r\uff1d\uff0b\uff0d\uff20")
"""First characters a spreadsheet may take as the start of a formula (with the full-width
forms of ``= + - @``)."""

CSV_COLUMNS: tuple[str, ...] = (
    "conversation_id",
    "seq",
    "time_utc",
    "role",
    "text",
    "button_title",
    "intent",
    "confidence",
    "red_flag",
    "topic",
    "entry_id",
    "sources",
    "feedback",
)
SOURCE_SEPARATOR = "; "


def neutralise(cell: str) -> str:
    """``cell`` prefixed with ``'`` when it starts (or starts after leading whitespace) with a
    character that makes a spreadsheet evaluate it; any other text is left as it is."""
    if cell and (cell[0] in FORMULA_STARTS or cell.lstrip()[:1] in FORMULA_STARTS):
        return "'" + cell
    return cell


def iso_utc(value: datetime | None) -> str:
    """``2026-03-12T14:05:33Z``; an empty string for None."""
    if value is None:
        return ""
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def known_names(conversation: Conversation) -> list[str]:
    """The names the patient gave in this conversation's callback requests."""
    return [request.name for request in conversation.callback_requests if request.name]


def _text(value: str | None, personal: bool, names: Sequence[str]) -> str:
    if not value:
        return ""
    return value if personal else mask_text(value, names)


def message_row(message: Message, personal: bool, names: Sequence[str] = ()) -> list[str]:
    """One CSV row (:data:`CSV_COLUMNS`) for ``message``, before neutralisation."""
    titles = [str(s.get("title", "")) for s in message.sources or [] if isinstance(s, dict)]
    confidence = message.intent_confidence
    return [
        message.conversation_id,
        str(message.seq),
        iso_utc(message.created_at),
        message.role,
        _text(message.text, personal, names),
        _text(message.button_title, personal, names),
        message.intent or "",
        "" if confidence is None else f"{confidence:.4f}",
        message.red_flag or "",
        message.topic or "",
        message.entry_id or "",
        SOURCE_SEPARATOR.join(titles),
        message.feedback or "",
    ]


def csv_rows(conversations: Iterable[Conversation], personal: bool) -> Iterator[list[str]]:
    """Every message of ``conversations`` (messages and callback requests loaded) that staff
    may see as a CSV row."""
    for conversation in conversations:
        names = known_names(conversation)
        for message in shown_messages(conversation):
            yield message_row(message, personal, names)


def csv_document(
    columns: Sequence[str], rows: Iterable[Sequence[str]]
) -> tuple[str, int]:
    """A CSV document for staff (the header row first, every cell shown with its controls
    marked and neutralised against formulas) and its number of data rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    count = 0
    for row in rows:
        writer.writerow([neutralise(shown(cell)) for cell in row])
        count += 1
    return buffer.getvalue(), count


def to_csv(rows: Iterable[Sequence[str]]) -> tuple[str, int]:
    """The conversations' CSV document and its number of data rows."""
    return csv_document(CSV_COLUMNS, rows)


def callback_json(request: CallbackRequest, personal: bool) -> dict[str, Any]:
    names = [request.name]
    return {
        "id": request.id,
        "name": request.name if personal else mask_name(request.name),
        "phone": request.phone if personal or not request.phone else mask_phone(request.phone),
        "email": request.email if personal or not request.email else mask_email(request.email),
        "preferred_time": _text(request.preferred_time, personal, names) or None,
        "status": request.status,
        "consent_at": iso_utc(request.consent_at),
        "created_at": iso_utc(request.created_at),
        "done_at": iso_utc(request.done_at) or None,
        "done_by": request.done_by,
    }


def message_json(message: Message, personal: bool, names: Sequence[str]) -> dict[str, Any]:
    return {
        "seq": message.seq,
        "time_utc": iso_utc(message.created_at),
        "role": message.role,
        "text": _text(message.text, personal, names),
        "button_title": _text(message.button_title, personal, names) or None,
        "intent": message.intent,
        "confidence": message.intent_confidence,
        "entities": message.entities
        if personal
        else mask_value(message.entities, names),
        "red_flag": message.red_flag,
        "red_flag_names": message.red_flag_names,
        "topic": message.topic,
        "entry_id": message.entry_id,
        "score": message.score,
        "certainty": message.certainty,
        "sources": message.sources,
        "feedback": message.feedback,
    }


def conversation_json(conversation: Conversation, personal: bool) -> dict[str, Any]:
    """Everything staff see of ``conversation`` (messages, callback requests, tags and notes
    loaded; the messages and client hints only with transcript consent), with personal
    details masked unless ``personal``."""
    names = known_names(conversation)
    return {
        "id": conversation.id,
        "created_at": iso_utc(conversation.created_at),
        "last_activity_at": iso_utc(conversation.last_activity_at),
        "transcript_consent": conversation.transcript_consent,
        "language": shown_hint(conversation, conversation.language),
        "origin": shown_hint(conversation, conversation.origin),
        "red_flag_level": conversation.red_flag_level,
        "red_flag_at": iso_utc(conversation.red_flag_at) or None,
        "reviewed_at": iso_utc(conversation.reviewed_at) or None,
        "reviewed_by": conversation.reviewed_by,
        "staff_flag": conversation.staff_flag,
        "tags": [t.tag for t in conversation.tags],
        "notes": [
            {
                "author": note.author_name,
                "time_utc": iso_utc(note.created_at),
                "text": _text(note.text, personal, names),
            }
            for note in conversation.notes
        ],
        "record": conversation.record if personal else mask_value(conversation.record, names),
        "callback_requests": [callback_json(r, personal) for r in conversation.callback_requests],
        "messages": [message_json(m, personal, names) for m in shown_messages(conversation)],
    }


def with_everything(statement: Select[tuple[Conversation]]) -> Select[tuple[Conversation]]:
    """``statement`` loading what an export needs with each conversation."""
    return statement.options(
        selectinload(Conversation.messages),
        selectinload(Conversation.callback_requests),
        selectinload(Conversation.tags),
        selectinload(Conversation.notes),
    )


async def load_conversation(session: AsyncSession, conversation_id: str) -> Conversation | None:
    """One conversation with everything an export needs, or None."""
    statement = with_everything(select(Conversation).where(Conversation.id == conversation_id))
    return (await session.scalars(statement)).one_or_none()


def safe_filename(stem: str, extension: str) -> str:
    """A file name of ASCII letters, digits, ``-`` and ``_`` only."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-")[:64] or "export"
    return f"{cleaned}.{extension}"


# Rasa test story -------------------------------------------------------------------------

SKIPPED_ACTIONS = frozenset({"action_listen", "action_session_start", "action_unlikely_intent"})
"""Actions a test story leaves out (Rasa's own story writer leaves out the same)."""
NAME_SLOTS = frozenset({"callback_name"})
"""Slots holding the patient's name: their values are masked as names wherever they appear."""
STORY_FORMAT_VERSION = "3.1"
Mask = Callable[[Any], Any]
"""Applied to every patient word and slot value of a story (the identity with personal details)."""


class _Block(str):
    """A string written as a YAML literal block (``|``)."""


class _Quoted(str):
    """A string written in double quotes."""


class _StoryDumper(yaml.SafeDumper):
    pass


_StoryDumper.add_representer(
    _Block, lambda d, v: d.represent_scalar("tag:yaml.org,2002:str", str(v), style="|")
)
_StoryDumper.add_representer(
    _Quoted, lambda d, v: d.represent_scalar("tag:yaml.org,2002:str", str(v), style='"')
)


@dataclass(frozen=True)
class Story:
    """One session of a conversation as test-story steps."""

    name: str
    steps: list[dict[str, Any]]


def _sessions(events: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    sessions: list[list[dict[str, Any]]] = [[]]
    for event in events:
        if event.get("event") == "session_started":
            sessions.append([])
        else:
            sessions[-1].append(event)
    return [s for s in sessions if any(e.get("event") == "user" for e in s)]


def _annotated(
    text: str, entities: Sequence[dict[str, Any]], mask: Mask
) -> tuple[str, list[dict[str, Any]]]:
    """``text`` with its positioned entities annotated as Rasa reads them (``[words](entity)``)
    and the entities it does not carry.

    Text that masking changes is not annotated (a mask may cut across an entity): its
    entities are all returned, to be listed under ``entities:``.
    """
    if mask(text) != text:
        return mask(text), list(entities)
    positioned = sorted(
        (
            e
            for e in entities
            if isinstance(e.get("start"), int)
            and isinstance(e.get("end"), int)
            and 0 <= e["start"] < e["end"] <= len(text)
        ),
        key=lambda e: int(e["start"]),
    )
    parts: list[str] = []
    cursor = 0
    used: list[dict[str, Any]] = []
    for entity in positioned:
        if entity["start"] < cursor:
            continue
        words = text[entity["start"] : entity["end"]]
        label: dict[str, Any] = {"entity": entity.get("entity")}
        for key in ("role", "group"):
            if entity.get(key):
                label[key] = entity[key]
        value = entity.get("value")
        if value is not None and value != words:
            label["value"] = mask(value)
        parts.append(text[cursor : entity["start"]])
        if len(label) == 1:
            parts.append(f"[{words}]({label['entity']})")
        else:
            parts.append(f"[{words}]{json.dumps(label, ensure_ascii=False)}")
        cursor = entity["end"]
        used.append(entity)
    parts.append(text[cursor:])
    return "".join(parts), [e for e in entities if e not in used]


def _user_step(event: dict[str, Any], mask: Mask) -> dict[str, Any]:
    parse = event.get("parse_data") or {}
    intent = (parse.get("intent") or {}).get("name")
    entities = [e for e in parse.get("entities") or [] if isinstance(e, dict) and e.get("entity")]
    text = (event.get("text") or "").strip()
    step: dict[str, Any] = {}
    rest = entities
    if text.startswith("/"):
        # A command (the API's start, a button's payload) carries its entities itself.
        step["user"] = _Block(mask(text) + "\n")
        rest = []
    elif text:
        annotated, rest = _annotated(text, entities, mask)
        step["user"] = _Block(annotated + "\n")
    if intent:
        step["intent"] = intent
    # Entities the text does not carry are listed, as the suite's stories do.
    if rest:
        step["entities"] = [{e["entity"]: mask(e.get("value"))} for e in rest]
    return step


def story_steps(events: Sequence[dict[str, Any]], mask: Mask) -> list[dict[str, Any]]:
    """The test-story steps of one session's events (``mask`` applied to the patient's words
    and slot values)."""
    steps: list[dict[str, Any]] = []
    for event in events:
        kind = event.get("event")
        if kind == "user":
            steps.append(_user_step(event, mask))
        elif kind == "action" and event.get("name") and event["name"] not in SKIPPED_ACTIONS:
            steps.append({"action": event["name"]})
        elif kind == "slot" and event.get("name"):
            steps.append({"slot_was_set": [{event["name"]: mask(event.get("value"))}]})
        elif kind == "active_loop":
            steps.append({"active_loop": event.get("name")})
    return steps


def stories_from_events(
    label: str, events: Sequence[dict[str, Any]], personal: bool, names: Sequence[str] = ()
) -> list[Story]:
    """A test story per session of the tracker ``events`` (Rasa's JSON events) that has a
    user message; empty when there is none. ``label`` names the stories (a short id)."""
    given = list(names) + [
        str(e["value"])
        for e in events
        if e.get("event") == "slot" and e.get("name") in NAME_SLOTS and e.get("value")
    ]

    def mask(value: Any) -> Any:
        return value if personal else mask_value(value, given)

    sessions = _sessions(events)
    many = len(sessions) > 1
    return [
        Story(f"{label} session {i}" if many else label, story_steps(session, mask))
        for i, session in enumerate(sessions, 1)
    ]


def story_yaml(stories: Sequence[Story]) -> str:
    """The test stories as a YAML document for ``tests/stories/``."""
    document = {
        "version": _Quoted(STORY_FORMAT_VERSION),
        "stories": [{"story": story.name, "steps": story.steps} for story in stories],
    }
    return yaml.dump(
        shown_value(document),
        Dumper=_StoryDumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )


# Conversation test ------------------------------------------------------------------------

CONVTEST_TAGS = ("exported",)
"""The tags of an exported conversation test."""


def draft_turns(rows: Sequence[Message], mask: Mask, summary_link: str) -> list[draft.DraftTurn]:
    """The patient's turns of a stored transcript (``rows`` in ``seq`` order), each with the
    assistant's messages that follow it in the public ``Message`` shape; ``mask`` is applied
    to the patient's words and to the texts and buttons of the replies. The opening messages
    (before the patient's first) are not a turn."""
    turns: list[draft.DraftTurn] = []
    level: Any = None
    for row in rows:
        if row.role == "patient":
            pressed = bool(row.button_title)
            turns.append(
                draft.DraftTurn(
                    kind="press" if pressed else "user",
                    text=mask(row.button_title if pressed else row.text.strip()),
                    intent=row.intent,
                    confidence=row.intent_confidence,
                )
            )
            level = row.red_flag
        elif turns:
            public = stored_reply(row, red_flag=level, summary_link=summary_link,
                                  with_feedback=False).model_dump()
            public.update(text=mask(public["text"]), buttons=mask(public["buttons"]))
            turns[-1].messages.append(public)
    return turns


def conversation_test(conversation: Conversation, personal: bool, day: date) -> tuple[str, int]:
    """A conversation test file (for ``tests/conversations/``) replaying the patient's side of
    ``conversation`` (messages and callback requests loaded) and asserting what the assistant
    answered, and its number of steps (0: no patient message is stored or staff may not see
    the transcript, nothing to export)."""
    names = known_names(conversation)

    def mask(value: Any) -> Any:
        return value if personal else mask_value(value, names)

    # Only whether a message offered the summary counts in a draft, not its link.
    turns = draft_turns(shown_messages(conversation), mask, SUMMARY_PATH)
    if not turns:
        return "", 0
    short = short_id(conversation.id)
    case = draft.test_case(
        "conversation_" + re.sub(r"[^A-Za-z0-9_.-]+", "-", short),
        turns,
        description=f"Exported from the staff console on {day.isoformat()}.",
        tags=CONVTEST_TAGS,
    )
    details = (
        "Personal details are included: take them out before committing."
        if personal
        else "Personal details are masked (***); an assertion holding *** will not match a "
        "real reply."
    )
    header = (
        f"Conversation test exported from conversation {short} on {day.isoformat()}.\n"
        "Review the drafted assertions before committing: keep what matters, loosen what "
        "does not.\n"
        f"{details}"
    )
    return draft.dump(shown_value(draft.document([case])), header), len(turns)

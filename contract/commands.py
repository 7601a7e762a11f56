"""The trusted commands: the text the API sends Rasa as a command, never as words.

A command is ``/`` + an intent name, optionally followed by a JSON object of entities:
``/start_conversation{"transcript_consent":"yes"}``, ``/ask_cost{"entry":"cost-per-session"}``.
Rasa reads such text as the intent with those entities. The API sends a text as a command
only when it is its own opening command or the payload of a button the assistant offered;
the bot's channel strips leading slashes from anything else (``bot/channels/meso.py``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Mapping

PREFIX = "/"
START_INTENT = "start_conversation"
START_COMMAND = PREFIX + START_INTENT
"""The command that opens a conversation (its entity ``transcript_consent``)."""
CONSENT_ENTITY = "transcript_consent"
"""Entity of the start command: "yes" when the patient agreed that the transcript is kept."""

_INTENT = re.compile(r"[A-Za-z0-9_]+")


class CommandError(ValueError):
    """Text that is not a well-formed command."""


@dataclass(frozen=True)
class Command:
    intent: str
    entities: Mapping[str, str] = field(default_factory=dict)


def command(intent: str, entities: Mapping[str, str] | None = None) -> str:
    """The command text for ``intent`` with ``entities`` (compact JSON, keys in the given order)."""
    if not _INTENT.fullmatch(intent):
        raise CommandError(f"not an intent name: {intent!r}")
    if entities and not all(isinstance(k, str) and isinstance(v, str) for k, v in entities.items()):
        raise CommandError("entities must map strings to strings")
    return PREFIX + intent + (json.dumps(dict(entities), separators=(",", ":")) if entities else "")


def start_command(consent: bool) -> str:
    """The command that opens a conversation, saying whether the transcript is kept."""
    return command(START_INTENT, {CONSENT_ENTITY: "yes" if consent else "no"})


def parse(text: str) -> Command:
    """The intent and entities of a command; CommandError when ``text`` is not one."""
    if not text.startswith(PREFIX):
        raise CommandError("a command starts with '/'")
    body = text[len(PREFIX):]
    match = _INTENT.match(body)
    if match is None:
        raise CommandError("no intent name after '/'")
    rest = body[match.end():]
    entities: dict[str, str] = {}
    if rest:
        try:
            value = json.loads(rest)
        except ValueError:
            raise CommandError("the entities are not JSON") from None
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise CommandError("the entities must be an object of strings")
        entities = value
    return Command(match.group(0), entities)


def is_command(text: str) -> bool:
    """True when ``text`` parses as a command."""
    try:
        parse(text)
    except CommandError:
        return False
    return True


def is_start(text: str) -> bool:
    """True for the opening command, with or without its entities."""
    return is_command(text) and parse(text).intent == START_INTENT

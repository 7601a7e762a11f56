"""What the latest parsed message says about a red flag: its level, its flags, its language.

Read from the ``safety`` summary the safety gate (``bot/nlu/safety.py``) adds to every parsed
message. Both sides of the bot use it: the in-process reply (``bot/dialogue/nlg.py``) and the
form pause (``actions/safety.py``). Side-effect free.
"""

from __future__ import annotations

from typing import Any, Mapping

from contract import payloads, urgent
from contract.levels import LEVELS, level_of

FALLBACK_LEVEL = "emergency"
"""Used when neither the safety gate nor the intent names a level: the reply only runs for a
red flag, and a missed urgent flag costs more than an extra one."""


def red_flag_level(latest_message: Mapping[str, Any] | None) -> str:
    """The level of the latest message: the safety gate's level, else the ``red_flag_<level>``
    intent, else :data:`FALLBACK_LEVEL`."""
    latest = latest_message or {}
    gate = latest.get("safety") or {}
    level = str(gate.get("level") or "").strip().lower()
    if level in LEVELS:
        return level
    return level_of(str((latest.get("intent") or {}).get("name") or "")) or FALLBACK_LEVEL


def red_flag_names(latest_message: Mapping[str, Any] | None) -> list[str]:
    """The flags the safety gate found in the latest message, in order, without repeats."""
    names: list[str] = []
    for value in ((latest_message or {}).get("safety") or {}).get("flags") or []:
        if isinstance(value, str) and value and value not in names:
            names.append(value)
    return names


def message_language(latest_message: Mapping[str, Any] | None) -> str | None:
    """The language the safety gate identified for the latest message (None if it didn't)."""
    value = ((latest_message or {}).get("safety") or {}).get("language")
    return str(value) if value else None


def red_flag_reply(responses: Mapping[str, Any], contacts: urgent.Contacts,
                   latest_message: Mapping[str, Any] | None) -> dict[str, Any]:
    """The urgent reply to the latest message: its text (``contract.urgent``, in the message's
    language where the domain has it) and the ``red_flag`` block for the API. Nothing to
    click: the reply says what to do and offers nothing else."""
    level = red_flag_level(latest_message)
    return {
        "text": urgent.urgent_text(responses, contacts, level, message_language(latest_message)),
        "custom": payloads.red_flag(level, red_flag_names(latest_message)),
    }

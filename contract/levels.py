"""Red-flag levels and their one severity order.

The bot marks a turn with a level when the patient's message described a red flag (see
``../shared/design/safety-and-decision-aid.md``); the API keeps, per conversation, the most
severe level it has seen, and staff's inbox sorts by it. Both read the order from here.

Crisis comes first: anyone who mentions self-harm or not wanting to live gets crisis support
first, and the crisis reply itself says to call the emergency number when in danger.
"""

from __future__ import annotations

from typing import Literal, get_args

RedFlagLevel = Literal["prompt", "same_day", "emergency", "crisis"]
"""A red-flag level, as the bot sends it."""

LEVELS: tuple[RedFlagLevel, ...] = get_args(RedFlagLevel)
"""Every level, least severe first: prompt < same_day < emergency < crisis."""

MOST_SEVERE_FIRST: tuple[RedFlagLevel, ...] = tuple(reversed(LEVELS))
"""Every level, most severe first: the order a reply or an inbox picks them in."""

URGENT: frozenset[RedFlagLevel] = frozenset({"emergency", "crisis"})
"""Levels whose reply says nothing but what to do now (no way back to a guided step)."""

INTENT_PREFIX = "red_flag_"
"""A red flag of level L is the intent ``red_flag_L``, as the bot classifies it and the API
stores it."""

_RANK: dict[str, int] = {level: rank for rank, level in enumerate(LEVELS)}


def is_level(value: object) -> bool:
    """True when ``value`` is one of :data:`LEVELS`."""
    return isinstance(value, str) and value in _RANK


def intent_of(level: str) -> str:
    """The intent name of red-flag ``level``: ``red_flag_<level>``."""
    return INTENT_PREFIX + level


def level_of(intent: str | None) -> RedFlagLevel | None:
    """The level an intent name stands for (``red_flag_crisis`` -> crisis); None for others."""
    if intent and intent.startswith(INTENT_PREFIX) and is_level(intent[len(INTENT_PREFIX):]):
        return intent[len(INTENT_PREFIX):]  # type: ignore[return-value]
    return None


def severity(level: str) -> int:
    """The rank of ``level`` (0 = least severe); ValueError for an unknown level."""
    try:
        return _RANK[level]
    except KeyError:
        raise ValueError("unknown red-flag level") from None


def most_severe(*levels: str | None) -> RedFlagLevel | None:
    """The most severe of ``levels`` (None entries ignored); None when there is none."""
    known = [level for level in levels if level is not None]
    if not known:
        return None
    return LEVELS[max(severity(level) for level in known)]

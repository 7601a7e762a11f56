"""Red-flag levels and their severity: the one place that ranks them.

The bot marks a turn with a level when the patient's message described a red flag (see
``../shared/design/safety-and-decision-aid.md``). A conversation keeps the most severe level
it has ever seen, so a later, milder flag never hides an earlier emergency.
"""

from __future__ import annotations

from typing import Literal, get_args

RedFlagLevel = Literal["prompt", "same_day", "emergency", "crisis"]
"""A red-flag level, as the bot sends it."""

LEVELS: tuple[RedFlagLevel, ...] = get_args(RedFlagLevel)
"""Every level, least severe first: prompt < same_day < emergency < crisis."""

_RANK: dict[str, int] = {level: rank for rank, level in enumerate(LEVELS)}


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


def sql_check(column: str) -> str:
    """The SQL CHECK expression allowing NULL or one of the levels in ``column``."""
    allowed = ", ".join(f"'{level}'" for level in LEVELS)
    return f"{column} IS NULL OR {column} IN ({allowed})"

"""Reading plain values out of the knowledge's YAML, the same way in every loader."""

from __future__ import annotations

import datetime as dt
from typing import Any


def folded_text(value: Any) -> str | None:
    """A non-empty string with its whitespace folded, or ``None``."""
    if isinstance(value, str) and value.strip():
        return " ".join(value.split())
    return None


def parse_date(value: Any) -> dt.date | None:
    """A date from YAML (already a date, or an ISO string), or ``None`` when it is not one."""
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return None
    return None

"""The rules a callback request's fields follow: what the bot asks for and the API stores.

The bot reads the person's answers with these rules (``bot/dialogue/checklist.py``) and the
API checks the ``callback`` block against them again (``contract.payloads``), so what the
bot accepts the API stores, and a request the API would refuse is never promised.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Mapping

MAX_NAME_CHARS = 100
MAX_TIME_CHARS = 200
MAX_PHONE_CHARS = 32
MAX_EMAIL_CHARS = 254
MIN_PHONE_DIGITS = 7
MAX_PHONE_DIGITS = 15
_PHONE_CHARS = re.compile(r"[0-9 +()\-]+")
_EMAIL = re.compile(
    r"[^@\s\"<>()\[\],;:]{1,64}@(?=.{4,253}$)"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)


def has_control_characters(text: str) -> bool:
    """True when ``text`` holds a control or format character (NUL, U+202E, ...)."""
    return any(unicodedata.category(ch) in {"Cc", "Cf"} for ch in text)


def is_phone(value: str) -> bool:
    """Digits, spaces and ``+()-`` only, with 7 to 15 digits, at most 32 characters."""
    digits = sum(ch.isdigit() for ch in value)
    return (len(value) <= MAX_PHONE_CHARS and bool(_PHONE_CHARS.fullmatch(value))
            and MIN_PHONE_DIGITS <= digits <= MAX_PHONE_DIGITS)


def is_email(value: str) -> bool:
    """A plausible address of at most 254 characters."""
    return len(value) <= MAX_EMAIL_CHARS and bool(_EMAIL.fullmatch(value))


def is_name(value: str) -> bool:
    """1-100 characters, none of them a control character."""
    return 1 <= len(value) <= MAX_NAME_CHARS and not has_control_characters(value)


def is_time(value: str) -> bool:
    """A preferred time: at most 200 characters, none of them a control character."""
    return len(value) <= MAX_TIME_CHARS and not has_control_characters(value)


@dataclass(frozen=True)
class CallbackRequest:
    """A request to be contacted: a name, a phone or an email (or both), consent given."""

    name: str
    phone: str | None
    email: str | None
    preferred_time: str | None
    consent: bool = True


def _optional(block: Mapping[str, Any], key: str, problems: list[str]) -> str | None:
    value = block.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        problems.append(f"{key}_type")
        return None
    return value.strip() or None


def check(block: Any) -> tuple[CallbackRequest | None, list[str]]:
    """The request in ``block`` and the kinds of problem found (never the values). Anything
    doubtful refuses the whole request: (None, kinds)."""
    if not isinstance(block, Mapping):
        return None, ["not_an_object"]
    problems: list[str] = []
    name = block.get("name")
    if not isinstance(name, str) or not is_name(name.strip()):
        problems.append("name")
    phone = _optional(block, "phone", problems)
    if phone is not None and not is_phone(phone):
        problems.append("phone")
    email = _optional(block, "email", problems)
    if email is not None and not is_email(email):
        problems.append("email")
    if phone is None and email is None and not {"phone", "email"} & set(problems):
        problems.append("no_contact")
    if block.get("consent") is not True:
        problems.append("consent")
    preferred = _optional(block, "preferred_time", problems)
    if preferred is not None and not is_time(preferred):
        problems.append("preferred_time")
    if problems:
        return None, problems
    return CallbackRequest(name.strip(), phone, email, preferred), []

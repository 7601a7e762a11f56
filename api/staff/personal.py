"""Masking of personal details (email addresses, phone numbers, callback names) for exports.

Staff see everything in the console; exports mask these details unless an admin asks for
them. The patterns are conservative on purpose: a date (``2024-03-12``, ``01.03.2024``), a
price (``£250 to £350``), a count (``8 to 12 sessions``) or a year list is never masked,
at the cost of missing an oddly written phone number. Names are only known where the
patient gave one in a callback request: those names are masked wherever they appear in the
same conversation's text; any other name written in free text is not recognised.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

MASK = "***"

EMAIL_RE = re.compile(
    r"(?<![\w.+%-])"
    r"(?P<local>[A-Za-z0-9](?:[A-Za-z0-9._%+-]{0,63}))"
    r"@"
    r"(?P<domain>[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9-]{1,63})*)"
    r"\.(?P<tld>[A-Za-z]{2,24})"
    r"(?![\w-])"
)
"""An email address: local part, at, one or more domain labels, a letters-only top level."""

PHONE_RE = re.compile(r"(?<![\w+£$€.,/:])\+?\(?\d[\d \t().-]{5,22}\d\)?(?![\w£$€%/:])")
"""A phone number candidate: digits with spaces, dots, hyphens or brackets between them,
an optional leading ``+``. :func:`is_phone` decides whether a candidate really is one."""

_DATE_SHAPES = (
    re.compile(r"\d{1,2}[.-]\d{1,2}[.-]\d{2,4}"),
    re.compile(r"\d{4}[.-]\d{1,2}[.-]\d{1,2}"),
)
_YEARS = re.compile(r"(?:(?:19|20)\d\d[ \t.-]+)+(?:19|20)\d\d")
_DECIMAL = re.compile(r"\d+\.\d+")

MIN_PHONE_DIGITS = 7
MAX_PHONE_DIGITS = 15
"""The digits a phone number may have (the API validates callback numbers the same way)."""
PLAIN_PHONE_DIGITS = 10
"""A candidate that does not start with ``+``, ``(`` or ``0`` needs this many digits."""


def is_phone(candidate: str) -> bool:
    """Whether a :data:`PHONE_RE` match looks like a phone number, not a date or a figure."""
    candidate = candidate.strip()
    digits = sum(c.isdigit() for c in candidate)
    if not MIN_PHONE_DIGITS <= digits <= MAX_PHONE_DIGITS:
        return False
    if candidate.count("(") != candidate.count(")"):
        return False
    if any(shape.fullmatch(candidate) for shape in _DATE_SHAPES):
        return False
    if _YEARS.fullmatch(candidate) or _DECIMAL.fullmatch(candidate):
        return False
    return candidate[0] in "+(0" or digits >= PLAIN_PHONE_DIGITS


def mask_email(address: str) -> str:
    """``john.smith@example.co.uk`` -> ``j***@e***.uk``."""
    match = EMAIL_RE.fullmatch(address.strip())
    if match is None:
        return MASK
    return f"{match['local'][0]}{MASK}@{match['domain'][0]}{MASK}.{match['tld']}"


def mask_phone(number: str) -> str:
    """Any phone number -> ``*** ** 34`` (its last two digits only)."""
    digits = "".join(c for c in number if c.isdigit())
    return f"{MASK} ** {digits[-2:]}" if len(digits) >= 2 else MASK


def mask_name(name: str) -> str:
    """``Ann Example`` -> ``A***``."""
    name = name.strip()
    return f"{name[0]}{MASK}" if name else MASK


def _phone_or_same(match: re.Match[str]) -> str:
    text = match.group(0)
    # The candidate may have swallowed a bracket or space that belongs to the sentence.
    core = text.strip(" \t.-")
    if core.endswith(")") and core.count(")") > core.count("("):
        core = core[:-1]
    if not is_phone(core):
        return text
    start = text.index(core)
    return text[:start] + mask_phone(core) + text[start + len(core) :]


def mask_text(text: str, names: Iterable[str] = ()) -> str:
    """Free text with every email address, phone number and given name masked.

    ``names``: names known to belong to the patient (their callback requests); each is
    masked wherever it appears, whole words only, ignoring case.
    """
    text = EMAIL_RE.sub(lambda m: mask_email(m.group(0)), text)
    text = PHONE_RE.sub(_phone_or_same, text)
    for name in sorted({n.strip() for n in names if n and n.strip()}, key=len, reverse=True):
        pattern = re.compile(rf"(?<!\w){re.escape(name)}(?!\w)", re.IGNORECASE)
        text = pattern.sub(lambda m: mask_name(m.group(0)), text)
    return text


def mask_value(value: Any, names: Iterable[str] = ()) -> Any:
    """A JSON value with :func:`mask_text` applied to every string in it (keys kept)."""
    names = tuple(names)
    if isinstance(value, str):
        return mask_text(value, names)
    if isinstance(value, list):
        return [mask_value(item, names) for item in value]
    if isinstance(value, dict):
        return {key: mask_value(item, names) for key, item in value.items()}
    return value

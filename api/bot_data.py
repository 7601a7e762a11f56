"""Decision-support data the bot puts in a message's ``custom``, as the API accepts it.

Besides an answer's provenance (``rasa_client.RasaCustom``) a message may carry:

* ``red_flag``: ``{"level", "flags"}``: this turn's patient message described a red flag;
* ``record``: ``{key: JSON}``: data the patient consented to keep, merged key by key into the
  conversation's record (a null value deletes the key);
* ``callback``: a callback or consultation request, validated here again whatever the bot did;
* ``summary``: a consultation summary document (``schemas.Summary``).

Each block is checked on its own: a malformed one is dropped with a warning that names the
block and the kinds of error, never the values, and the rest of the reply is kept.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator

from api.red_flags import RedFlagLevel

MAX_FLAGS = 20
MAX_FLAG_CHARS = 64
MAX_RECORD_KEY_CHARS = 64
MAX_RECORD_BYTES = 64 * 1024
"""The largest record (one block, or the merged whole) kept, as compact JSON."""

_PHONE_CHARS = re.compile(r"[0-9 +()\-]+")
_EMAIL = re.compile(
    r"[^@\s\"<>()\[\],;:]{1,64}@(?=.{4,253}$)"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)


def json_size(value: Any) -> int:
    """Bytes of ``value`` as compact UTF-8 JSON."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def _has_control_characters(text: str) -> bool:
    return any(unicodedata.category(ch) in {"Cc", "Cf"} for ch in text)


class RedFlag(BaseModel):
    """This turn's patient message described a red flag of ``level``."""

    model_config = ConfigDict(extra="ignore")

    level: RedFlagLevel
    flags: list[str] = Field(default_factory=list)
    """Names of the red flags recognised (e.g. ``breathing``); kept leniently."""

    @field_validator("level", mode="before")
    @classmethod
    def _normalise_level(cls, value: Any) -> Any:
        """``Same-Day`` or `` EMERGENCY `` still count: a missed red flag is the worst failure."""
        if isinstance(value, str):
            return value.strip().lower().replace("-", "_").replace(" ", "_")
        return value

    @field_validator("flags", mode="before")
    @classmethod
    def _lenient_flags(cls, value: Any) -> list[str]:
        """Malformed names never cost the level: keep the strings, cut to size, drop the rest."""
        if not isinstance(value, list):
            return []
        names = [item.strip()[:MAX_FLAG_CHARS] for item in value if isinstance(item, str)]
        return [name for name in names if name][:MAX_FLAGS]


def validate_record(value: Any) -> dict[str, Any]:
    """A record block: a JSON object with keys of 1-64 characters, at most 64 KiB."""
    if not isinstance(value, dict):
        raise ValueError("record must be an object")
    for key in value:
        if not isinstance(key, str) or not 1 <= len(key) <= MAX_RECORD_KEY_CHARS:
            raise ValueError("record key of a wrong length")
    if json_size(value) > MAX_RECORD_BYTES:
        raise ValueError("record too large")
    return value


def merge_record(record: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """A new record: ``record`` with ``update`` applied key by key (a None value deletes)."""
    merged = dict(record)
    for key, value in update.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


class Callback(BaseModel):
    """A request to be contacted by the clinic. Anything doubtful refuses the whole request.

    name 1-100 characters; at least one of phone and email; phone: digits, spaces and
    ``+()-`` with 7-15 digits; email: a plausible address; consent exactly ``true``;
    preferred_time at most 200 characters. Blank optional strings count as absent.
    """

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=100)
    phone: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=254)
    consent: StrictBool
    preferred_time: str | None = Field(default=None, max_length=200)

    @field_validator("phone", "email", "preferred_time", mode="before")
    @classmethod
    def _blank_is_absent(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("name", "preferred_time")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and _has_control_characters(value):
            raise ValueError("control characters")
        return value

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        digits = sum(ch.isdigit() for ch in value)
        if not _PHONE_CHARS.fullmatch(value) or not 7 <= digits <= 15:
            raise ValueError("not a phone number")
        return value

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not _EMAIL.fullmatch(value):
            raise ValueError("not an email address")
        return value

    @field_validator("consent")
    @classmethod
    def _consented(cls, value: bool) -> bool:
        if value is not True:
            raise ValueError("no consent")
        return value

    @model_validator(mode="after")
    def _reachable(self) -> Callback:
        if self.phone is None and self.email is None:
            raise ValueError("neither phone nor email")
        return self

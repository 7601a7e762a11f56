"""Decision-support data the bot puts in a message's ``custom``, as the API keeps it.

The blocks and their rules are the contract's (``contract.payloads``, ``contract.callback``):
``api.rasa_client`` checks each block against them first and drops one outside them with a
warning that names the block and the kinds of error, never the values. The models here give
the blocks that passed their Python types.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)

from contract import callback as rules
from contract.levels import RedFlagLevel
from contract.payloads import (
    BLOCKS,
    FIELD_CHECK_KNOWLEDGE_MAX,
    FIELD_CHECK_SURE_MAX,
    MAX_FLAG_CHARS,
    MAX_FLAGS,
    MAX_RECORD_BYTES,
    MAX_RECORD_KEY_CHARS,
    flag_names,
    json_size,
    normalise_level,
)

__all__ = ["MAX_FLAGS", "MAX_FLAG_CHARS", "MAX_RECORD_BYTES", "MAX_RECORD_KEY_CHARS", "Callback",
           "FieldCheck", "RedFlag", "json_size", "merge_record", "validate_record"]


class RedFlag(BaseModel):
    """This turn's patient message described a red flag of ``level``."""

    model_config = ConfigDict(extra="ignore")

    level: RedFlagLevel
    flags: list[str] = Field(default_factory=list)
    """Names of the red flags recognised (e.g. ``breathing``); kept leniently."""

    @field_validator("level", mode="before")
    @classmethod
    def _normalise_level(cls, value: Any) -> Any:
        return normalise_level(value)

    @field_validator("flags", mode="before")
    @classmethod
    def _lenient_flags(cls, value: Any) -> list[str]:
        return flag_names(value)


def validate_record(value: Any) -> dict[str, Any]:
    """A record block: a JSON object with keys of 1-64 characters, at most 64 KiB."""
    kinds = BLOCKS["record"](value)
    if kinds:
        raise ValueError(f"record: {', '.join(kinds)}")
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

    The field rules are ``contract.callback``'s: name 1-100 characters; at least one of phone
    and email; phone: digits, spaces and ``+()-`` with 7-15 digits; email: a plausible
    address; consent exactly ``true``; preferred_time at most 200 characters. Blank optional
    strings count as absent.
    """

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=rules.MAX_NAME_CHARS)
    phone: str | None = Field(default=None, max_length=rules.MAX_PHONE_CHARS)
    email: str | None = Field(default=None, max_length=rules.MAX_EMAIL_CHARS)
    consent: StrictBool
    preferred_time: str | None = Field(default=None, max_length=rules.MAX_TIME_CHARS)

    @field_validator("phone", "email", "preferred_time", mode="before")
    @classmethod
    def _blank_is_absent(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("name", "preferred_time")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and rules.has_control_characters(value):
            raise ValueError("control characters")
        return value

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not rules.is_phone(value):
            raise ValueError("not a phone number")
        return value

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not rules.is_email(value):
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


class FieldCheck(BaseModel):
    """An anonymous field-test result: the phase and two counts, and nothing else.

    Stored without the conversation (``api.field_checks``), whatever the transcript consent:
    it holds nothing of the patient but these three values. Any other key refuses the block.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    phase: Literal["before", "after"]
    knowledge: StrictInt = Field(ge=0, le=FIELD_CHECK_KNOWLEDGE_MAX)
    """Knowledge questions answered right."""
    sure: StrictInt = Field(ge=0, le=FIELD_CHECK_SURE_MAX)
    """SURE questions answered yes."""

"""Request and response bodies of the public API (version 1).

Other software relies on these shapes: fields may be added, none removed or renamed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from api.red_flags import RedFlagLevel

UNAVAILABLE_DETAIL = (
    "The assistant is not available right now. Please try again in a minute, "
    "or contact the clinic directly."
)


class Button(BaseModel):
    """A choice the assistant offers. To pick it, send its ``payload`` as the message text."""

    title: str = Field(description="What the button says.")
    payload: str = Field(description="What to send as `text` when the button is pressed.")


class Source(BaseModel):
    """A published document an answer is based on."""

    id: str = Field(description="Source id in the knowledge base.")
    title: str
    url: str | None = Field(default=None, description="Where to read it, when public.")


class Message(BaseModel):
    """One message from the assistant."""

    text: str = Field(
        description="Plain text (never HTML); may be empty when only buttons are sent."
    )
    buttons: list[Button] = Field(default_factory=list)
    sources: list[Source] = Field(default_factory=list)
    topic: str | None = Field(
        default=None,
        description="Knowledge topic id the answer came from; null for conversational replies.",
    )
    red_flag: RedFlagLevel | None = Field(
        default=None,
        description="Set on every message of a reply to a message that described a red flag: "
        "the most severe level (prompt < same_day < emergency < crisis). Show such a reply "
        "as urgent. Null otherwise.",
    )
    summary_url: str | None = Field(
        default=None,
        description="Relative URL of the printable consultation summary this message offers "
        "(`/api/v1/conversations/{conversation_id}/summary`); null otherwise.",
    )


def _aware_utc(value: datetime) -> datetime:
    """A naive time is read as UTC; every time is kept in UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class SummaryItem(BaseModel):
    """One point of a summary section, with the ids (or titles) of the sources it rests on."""

    model_config = ConfigDict(extra="ignore")

    text: str = Field(min_length=1, max_length=4000)
    sources: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=20
    )


class SummarySection(BaseModel):
    model_config = ConfigDict(extra="ignore")

    heading: str = Field(min_length=1, max_length=200)
    intro: str | None = Field(default=None, max_length=4000)
    items: list[SummaryItem] = Field(default_factory=list, max_length=100)


class Summary(BaseModel):
    """A consultation summary the assistant prepared: plain text only, never HTML."""

    model_config = ConfigDict(extra="ignore")

    title: str = Field(min_length=1, max_length=200)
    generated_at: Annotated[datetime, AfterValidator(_aware_utc)] = Field(
        description="When the assistant prepared it (UTC)."
    )
    sections: list[SummarySection] = Field(max_length=50)
    footer: str | None = Field(default=None, max_length=4000)


class ConversationCreated(BaseModel):
    conversation_id: str = Field(
        description="Secret id of the new conversation (at least 43 URL-safe characters). "
        "Keep it in memory only; it is needed to send messages."
    )
    messages: list[Message] = Field(description="The assistant's opening messages.")


class MessageIn(BaseModel):
    """A patient's message. Unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore")

    text: str = Field(
        strict=True,
        description="The patient's words, or the `payload` of a button the assistant offered. "
        "Must not be empty; at most MESO_MAX_TEXT_CHARS characters after stripping.",
        examples=["How much does it cost?"],
    )


class Replies(BaseModel):
    messages: list[Message] = Field(description="The assistant's replies, in order.")


class ErrorBody(BaseModel):
    """Every error response has this body."""

    detail: str = Field(description="A human-readable sentence saying what went wrong.")


class Health(BaseModel):
    status: Literal["ok"]


class ReadinessChecks(BaseModel):
    rasa: str = Field(description='"ok" or "down: <reason>"')
    action_server: str = Field(description='"ok" or "down: <reason>"')
    database: str = Field(description='"ok" or "down: <reason>"')


class Readiness(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: ReadinessChecks

"""Request and response bodies of the public API (version 1).

Other software relies on these shapes: fields may be added, none removed or renamed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool

from api import text_hygiene
from contract.levels import RedFlagLevel

Rating = Literal["up", "down"]
"""A patient's rating of one of the assistant's answers."""

CLIENT_ID_PATTERN = r"^[A-Za-z0-9_-]{8,64}$"

EMPTY_MESSAGE_DETAIL = "The message is empty. Please type a question."

PatientText = Annotated[
    str, AfterValidator(text_hygiene.patient_text(EMPTY_MESSAGE_DETAIL))
]
"""A message a patient types: no control character or unpaired surrogate (422), CRLF made
LF, and at least one visible character (else the empty-message 422); see ``api.text_hygiene``."""
CleanStr = Annotated[str, AfterValidator(text_hygiene.clean)]
"""Any other string a client sends: no control character or unpaired surrogate (422)."""

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


class Figure(BaseModel):
    """A share of people the message quotes, to draw as an icon array: 100 marks in a 10 by
    10 grid, ``per_100`` of them filled."""

    per_100: int = Field(ge=0, le=100, description="How many of the 100 marks to fill.")
    label: str = Field(
        min_length=1, max_length=300, description='A short caption, e.g. "88 out of 100: red '
        'skin for a few hours after a visit". Plain text.'
    )
    alt: str = Field(
        min_length=1, max_length=1000, description="The text alternative of the marks (who, "
        'how many out of 100, what happened), e.g. "88 out of 100 men who had mesotherapy in '
        'one trial: red skin for a few hours after a visit." Plain text.'
    )


class Message(BaseModel):
    """One message of the conversation: from the assistant (replies and history) or from the
    patient (history only)."""

    id: str | None = Field(
        default=None,
        description="The message's id within the conversation (to rate it); null when the "
        "message is not stored (a conversation without transcript consent).",
    )
    role: Literal["assistant", "patient"] = Field(
        default="assistant", description='Always "assistant" in replies.'
    )
    text: str = Field(
        description="Plain text (never HTML); may be empty when only buttons are sent. A "
        "patient's button press shows the button's title."
    )
    buttons: list[Button] = Field(default_factory=list)
    sources: list[Source] = Field(default_factory=list)
    topic: str | None = Field(
        default=None,
        description="Knowledge topic id the answer came from; null for conversational replies.",
    )
    entry: str | None = Field(
        default=None,
        description="Id of the knowledge entry the answer came from (within `topic`); null "
        "for conversational replies.",
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
    figures: list[Figure] = Field(
        default_factory=list,
        description="The shares of people the text states in words (\"88 out of 100 ...\"), "
        "in the same order, for drawing each as an icon array with its text alternative.",
    )
    feedback: Rating | None = Field(
        default=None,
        description="History only: the patient's rating of this answer; null otherwise.",
    )


class Understanding(BaseModel):
    """What the assistant made of one turn, for conversation tests (``convtest``).

    Sent only to a caller holding the deployment's test key (header ``X-Meso-Test-Key``
    equal to ``MESO_TEST_KEY``); never to a patient's browser.
    """

    intent: str | None = Field(default=None, description="The intent the message was read as.")
    confidence: float | None = Field(default=None, description="The intent's confidence, 0-1.")
    actions: list[str] = Field(
        default_factory=list, description="The actions the assistant ran for the turn, in order."
    )
    responses: list[str | None] = Field(
        default_factory=list,
        description="For each message of the reply, in order: the domain response it came "
        "from (e.g. `utter_greet`), or null for text an action composed.",
    )
    slots: dict[str, Any] = Field(
        default_factory=dict, description="The slots the turn set, with their new values."
    )


TEST_KEY_HEADER = "X-Meso-Test-Key"


def _aware_utc(value: datetime) -> datetime:
    """A naive time is read as UTC; every time is kept in UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class SummaryFigure(Figure):
    """A share of people in a summary point: the icon array, and the sentence in words."""

    model_config = ConfigDict(extra="ignore")

    text: str | None = Field(
        default=None, max_length=2000,
        description="The share in words, with who, how many people and over what time.",
    )


class SummaryItem(BaseModel):
    """One point of a summary section, with the ids (or titles) of the sources it rests on."""

    model_config = ConfigDict(extra="ignore")

    text: str = Field(min_length=1, max_length=4000)
    sources: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=20
    )
    figures: list[SummaryFigure] = Field(
        default_factory=list,
        max_length=10,
        description="Shares of people out of 100 the point quotes, each drawn as an icon array.",
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


class ConversationIn(BaseModel):
    """Optional body of a new conversation. Unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore")

    consent: StrictBool = Field(
        default=False,
        description="The patient agreed that the transcript be kept for the clinic's staff. "
        "Without it no message is stored, and the conversation (Rasa's working copy included) "
        "is deleted after MESO_TRANSCRIPT_IDLE_MINUTES without a message.",
    )


class ConversationCreated(BaseModel):
    conversation_id: str = Field(
        description="Id of the new conversation (at least 43 URL-safe characters); it goes "
        "in the paths of later calls but opens nothing by itself."
    )
    token: str = Field(
        description="The conversation's secret, returned only here: every later call on "
        "this conversation sends it as `Authorization: Bearer <token>` (never in a URL). "
        "Keep it in memory or session storage only."
    )
    consent: bool = Field(description="Whether the transcript is kept (as asked).")
    messages: list[Message] = Field(description="The assistant's opening messages.")
    understanding: Understanding | None = Field(
        default=None,
        description=f"Only for conversation tests holding the test key ({TEST_KEY_HEADER}); "
        "null otherwise.",
    )


class MessageIn(BaseModel):
    """A patient's message. Unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore")

    text: PatientText = Field(
        strict=True,
        description="The patient's words, or the `payload` of a button the assistant offered. "
        "Must have a visible character (not only spaces or invisible characters); no control "
        "character but newline and tab (CRLF is read as a newline), no unpaired surrogate; "
        "at most MESO_MAX_TEXT_CHARS characters after stripping.",
        examples=["How much does it cost?"],
    )
    client_id: str | None = Field(
        default=None,
        pattern=CLIENT_ID_PATTERN,
        description="An id the client makes for this message (8-64 characters of A-Z a-z 0-9 "
        "_ -), so a retry is not taken twice: in a conversation with transcript consent, a "
        "message with an id already answered gets the same replies again, one left "
        "unanswered is sent to the assistant again.",
        examples=["m-5f2c9a1e"],
    )


class Replies(BaseModel):
    messages: list[Message] = Field(description="The assistant's replies, in order.")
    understanding: Understanding | None = Field(
        default=None,
        description=f"Only for conversation tests holding the test key ({TEST_KEY_HEADER}); "
        "null otherwise.",
    )


class History(BaseModel):
    consent: bool = Field(description="Whether the transcript is kept for staff.")
    messages: list[Message] = Field(
        description="The whole conversation so far, in order, opening messages included."
    )


class FeedbackIn(BaseModel):
    """A rating of one of the assistant's answers. Unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore")

    message_id: CleanStr = Field(
        strict=True, max_length=32, description="The `id` of an assistant message."
    )
    rating: Rating | None = Field(description="Null withdraws an earlier rating.")


class ClinicFacts(BaseModel):
    """How to reach the clinic (from its clinic.yml); null: not set."""

    name: str
    phone: str | None
    email: str | None
    hours: str | None
    booking: str | None


class WidgetConfig(BaseModel):
    clinic: ClinicFacts
    emergency_number: str | None = Field(
        description="The number to call in an emergency where the clinic is; null: the "
        "widget names the usual ones (999, 112, 911)."
    )
    transcript_idle_minutes: int = Field(
        description="A conversation without transcript consent is deleted, Rasa's working "
        "copy included, after this many minutes without a message."
    )
    max_text_chars: int = Field(description="Longest message accepted, in characters.")


class ErrorBody(BaseModel):
    """Every error response has this body."""

    detail: str = Field(description="A human-readable sentence saying what went wrong.")


class Health(BaseModel):
    status: Literal["ok"]


class ReadinessChecks(BaseModel):
    rasa: str = Field(description='"ok" or "down: <reason>"')
    action_server: str = Field(description='"ok" or "down: <reason>"')
    database: str = Field(description='"ok" or "down: <reason>"')
    tracker_store: str = Field(description='Rasa\'s tracker database: "ok" or "down: <reason>"')


class Readiness(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: ReadinessChecks

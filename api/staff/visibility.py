"""What of a conversation staff may see: the one rule every staff page and export follows.

The transcript is shown only with the patient's transcript consent
(``Conversation.transcript_consent``). The transcript is every message of the conversation,
the patient's and the assistant's, with what was made of them (intents, entities, red-flag
marks, topics, ratings), the client hints (language, website, browser) and Rasa's own copy
of the conversation, its tracker (the patient's words, intents, slot values, actions).

Without that consent staff see only what the patient agreed to keep on its own:

* their callback requests (asked for with their own consent to be contacted),
* the decision-support record (checklist answers, values, readiness check),
* the consultation summary they chose to keep,

besides the conversation's times and consent state, the conversation's red-flag level, and
what staff added themselves (tags, notes, the reviewed mark and the staff flag). Erasure
shows how many rows it will delete, never their content.

The API stores no messages and no client hints without consent (``api.crud``); this rule
holds even if such a row were there (a bug, a restore, a hand-made row), and it is the only
thing that keeps Rasa's tracker (which holds every conversation until the purge) from staff.

Use :func:`shows_transcript` for one loaded conversation, :data:`MESSAGE_SHOWN` in a query
over ``messages`` and :data:`LISTED` for the conversations the inbox and its exports list.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from sqlalchemy import ColumnElement, Text, cast, exists, func, or_, select

from api.models import CallbackRequest, Conversation, Message

TRANSCRIPT_SHOWN: ColumnElement[bool] = Conversation.transcript_consent.is_(True)
"""SQL: the conversation's transcript may be shown to staff."""

MESSAGE_SHOWN: ColumnElement[bool] = Message.conversation_id.in_(
    select(Conversation.id).where(TRANSCRIPT_SHOWN).correlate(None)
)
"""SQL: a ``messages`` row staff may see (its conversation has transcript consent). Add it
to every query that reads, counts, searches or groups messages for staff."""

_HAS_CALLBACK = exists().where(CallbackRequest.conversation_id == Conversation.id)
_HAS_RECORD = func.coalesce(cast(Conversation.record, Text), "{}").not_in(["{}", "null"])
LISTED: ColumnElement[bool] = or_(TRANSCRIPT_SHOWN, _HAS_CALLBACK, _HAS_RECORD)
"""SQL: a conversation staff see in the inbox and its exports: with transcript consent, or
holding something the patient agreed to keep on its own (a callback request or a record)."""

NOT_KEPT_MESSAGE = (
    "The patient did not agree to keep the transcript, so none of its messages are shown, "
    "and the assistant's own record of the conversation is not read either. What the "
    "patient agreed to keep separately (a callback request, their decision-support "
    "answers, a summary) is on the conversation's page."
)
"""Why a view or export of the transcript is refused (shown to staff)."""

T = TypeVar("T")


def shows_transcript(conversation: Conversation) -> bool:
    """Whether staff may see the transcript of ``conversation``: its messages in the API's
    record, its client hints and Rasa's tracker."""
    return conversation.transcript_consent is True


def shown_messages(conversation: Conversation, rows: Iterable[T] | None = None) -> list[T]:
    """The messages of ``conversation`` staff may see: ``rows`` (by default its loaded
    ``messages``) with transcript consent, none without."""
    if not shows_transcript(conversation):
        return []
    return list(conversation.messages if rows is None else rows)  # type: ignore[arg-type]


def shown_hint(conversation: Conversation, value: T) -> T | None:
    """A client hint of ``conversation`` (language, website, browser) as staff may see it."""
    return value if shows_transcript(conversation) else None

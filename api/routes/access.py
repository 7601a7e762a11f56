"""Who may open a conversation through the public API: the holder of its token, while recent.

Every public route on one conversation takes :data:`PatientConversation`. The id in the path
only names the conversation; the token (``Authorization: Bearer <token>``, returned once when
the conversation was created) opens it. A malformed or unknown id, a missing or wrong token
and an expired conversation all get the same 404, so nobody learns which ids exist. A token
holder whose conversation has been idle longer than ``MESO_RESUME_HOURS`` gets a 404 saying
so: the public API no longer serves it (staff still see it).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, HTTPException, Path, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import SQLAlchemyError

from api import conversation_auth, crud
from api.deps import RuntimeDep, SessionDep
from api.crud import ConversationAccess
from api.models import Conversation, utcnow
from api.sqlite_driver import inline_statements

logger = logging.getLogger(__name__)

CONVERSATION_ID_PATTERN = r"^[A-Za-z0-9_-]{43,128}$"
_CONVERSATION_ID = re.compile(CONVERSATION_ID_PATTERN)
NOT_FOUND_DETAIL = "This conversation does not exist. Please reload the page to start a new one."
ENDED_DETAIL = (
    "This conversation has ended after a long pause. Please reload the page to start a new one."
)

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="ConversationToken",
    description="The `token` returned by `POST /api/v1/conversations`, sent as "
    "`Authorization: Bearer <token>` on every later call on that conversation.",
)


def is_conversation_id(text: str) -> bool:
    """True when ``text`` has the shape of a conversation id (whether or not it exists)."""
    return _CONVERSATION_ID.fullmatch(text) is not None


def not_found(detail: str = NOT_FOUND_DETAIL) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, detail=detail)


def is_idle(conversation: ConversationAccess | Conversation, resume_hours: float) -> bool:
    """True when the conversation has been idle too long to be resumed by the patient."""
    return utcnow() - conversation.last_activity_at > timedelta(hours=resume_hours)


ConversationId = Annotated[
    str, Path(description="The id returned when the conversation was created.")
]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]


async def patient_conversation(
    session: SessionDep,
    runtime: RuntimeDep,
    conversation_id: ConversationId,
    credentials: Credentials,
) -> ConversationAccess:
    """The conversation the request's token opens, or a 404."""
    if not is_conversation_id(conversation_id):
        raise not_found()
    with inline_statements():  # one read by key (api.sqlite_driver)
        conversation = await crud.get_access(session, conversation_id)
    token = credentials.credentials if credentials is not None else None
    if conversation is None or not conversation_auth.matches(token, conversation.token_hash):
        raise not_found()
    if is_idle(conversation, runtime.settings.resume_hours):
        raise not_found(ENDED_DETAIL)
    return conversation


PatientConversation = Annotated[ConversationAccess, Depends(patient_conversation)]
"""A conversation opened by its token (see the module's docstring)."""


@dataclass(frozen=True)
class Unchecked:
    """A message to a conversation the database could not be asked about (it is down): its
    id, and the hash of the token the request gave, to check once the database is back
    (``api.write_behind``). Nothing of the conversation is read or shown on the strength of
    it: only the safety net answers."""

    id: str
    token_hash: str


async def patient_conversation_or_unchecked(
    session: SessionDep,
    runtime: RuntimeDep,
    conversation_id: ConversationId,
    credentials: Credentials,
) -> ConversationAccess | Unchecked:
    """:func:`patient_conversation`, or :class:`Unchecked` when the database cannot be
    reached: a red flag must get its urgent reply even then."""
    try:
        return await patient_conversation(session, runtime, conversation_id, credentials)
    except (SQLAlchemyError, OSError) as exc:  # asyncpg: a refused connection is an OSError
        if credentials is None:
            raise not_found() from None
        logger.warning("the database cannot check a conversation's token (%s)", type(exc).__name__)
        return Unchecked(conversation_id, conversation_auth.token_hash(credentials.credentials))


PatientConversationOrUnchecked = Annotated[
    ConversationAccess | Unchecked, Depends(patient_conversation_or_unchecked)
]
"""For the message route only: a conversation opened by its token, or one the database
cannot be asked about now (see :class:`Unchecked`)."""

"""Thumbs up or down on one of the assistant's answers, stored for staff.

Only stored messages have ids, so only conversations with transcript consent can rate.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Response, status

from api import crud
from api.deps import RuntimeDep, SessionDep
from api.routes import chat
from api.routes.access import PatientConversation, not_found
from api.schemas import FeedbackIn

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/conversations", tags=["chat"])

NOT_KEPT_DETAIL = "Answers can be rated only when the conversation is kept for the clinic."
UNKNOWN_MESSAGE_DETAIL = "This answer is not in the conversation, so it cannot be rated."


FEEDBACK_ERRORS: dict[int | str, dict[str, Any]] = {
    404: chat.error_response(
        "Malformed, unknown or expired conversation id; a conversation without transcript "
        "consent; or no assistant message with that id."
    ),
    422: chat.error_response("Malformed JSON, a wrong type or a missing field."),
    429: chat.RATE_LIMITED,
}


@router.post(
    "/{conversation_id}/feedback", status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response, responses=FEEDBACK_ERRORS, summary="Rate an answer",
)
async def rate_answer(
    body: FeedbackIn,
    session: SessionDep,
    runtime: RuntimeDep,
    conversation: PatientConversation,
) -> Response:
    """Store the patient's rating (`up` or `down`) of an assistant message for the clinic's
    staff; `null` withdraws it. Rating again replaces the earlier rating. Counts towards the
    conversation's message rate limit."""
    conversation_id = conversation.id
    if not conversation.transcript_consent:
        raise not_found(NOT_KEPT_DETAIL)
    retry_after = await runtime.message_limiter.take(conversation_id)
    if retry_after is not None:
        raise chat.too_many(retry_after, "requests")
    if not await crud.set_feedback(session, conversation_id, body.message_id, body.rating):
        raise not_found(UNKNOWN_MESSAGE_DETAIL)
    await session.commit()
    logger.info(
        "conversation %s feedback on seq=%s: %s",
        chat.short_id(conversation_id),
        body.message_id,
        body.rating or "withdrawn",
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)

"""Public chat API, version 1: create a conversation, send a message.

Nothing is lost: the patient's message is committed before Rasa is asked, the replies are
committed before the response leaves, and a message Rasa could not answer stays stored as
'unanswered' while the patient gets a 503. Message text is never logged.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from typing import Any

from fastapi import APIRouter, HTTPException, Path, Request, status

from api import crud
from api.deps import RuntimeDep, SessionDep
from api.models import utcnow
from api.rasa_client import AssistantUnavailable
from api.schemas import (
    UNAVAILABLE_DETAIL,
    ConversationCreated,
    ErrorBody,
    MessageIn,
    Replies,
)

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/conversations", tags=["chat"])

START_COMMAND = "/start_conversation"
"""Sent to Rasa (as a trusted command) to get a new conversation's opening messages."""

CONVERSATION_ID_PATTERN = r"^[A-Za-z0-9_-]{43,128}$"
_CONVERSATION_ID = re.compile(CONVERSATION_ID_PATTERN)
NOT_FOUND_DETAIL = "This conversation does not exist. Please reload the page to start a new one."


def error_response(description: str) -> dict[str, Any]:
    """An OpenAPI ``responses`` entry whose body is :class:`ErrorBody`."""
    return {"model": ErrorBody, "description": description}


RATE_LIMITED = error_response(
    "Too many requests; the Retry-After header says how many seconds to wait."
)
UNAVAILABLE = error_response(
    "The assistant is not ready (Rasa is down or too slow); try again later."
)


def is_conversation_id(text: str) -> bool:
    """True when ``text`` has the shape of a conversation id (whether or not it exists)."""
    return _CONVERSATION_ID.fullmatch(text) is not None


def short_id(conversation_id: str) -> str:
    """A prefix of the id for logs: enough to find the row, not enough to use the conversation."""
    return conversation_id[:8]


def _too_many(retry_after: int) -> HTTPException:
    return HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        detail=f"Too many messages. Please wait {retry_after} seconds and try again.",
        headers={"Retry-After": str(retry_after)},
    )


def _unavailable() -> HTTPException:
    return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=UNAVAILABLE_DETAIL)


def client_key(request: Request) -> str:
    """The client's IP address, used only as an in-memory rate-limit key, never stored."""
    return request.client.host if request.client else "unknown"


def _client_hints(request: Request) -> dict[str, str | None]:
    """What staff may find useful about the client: browser, language, embedding site."""
    headers = request.headers
    language = headers.get("accept-language", "").split(",")[0].split(";")[0].strip()
    return {
        "user_agent": headers.get("user-agent", "")[:512] or None,
        "language": language[:35] or None,
        "origin": headers.get("origin", "")[:255] or None,
    }


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ConversationCreated,
    summary="Start a conversation",
    responses={429: RATE_LIMITED, 503: UNAVAILABLE},
)
async def create_conversation(
    request: Request, session: SessionDep, runtime: RuntimeDep
) -> ConversationCreated:
    """Create a conversation with a new secret id and return the assistant's opening messages.

    No request body is needed. The id is made here (256 random bits); ids from clients are
    never accepted.
    """
    retry_after = runtime.conversation_limiter.hit(client_key(request))
    if retry_after is not None:
        raise _too_many(retry_after)

    started = time.perf_counter()
    conversation_id = secrets.token_urlsafe(32)
    conversation = await crud.create_conversation(
        session, conversation_id, **_client_hints(request)
    )
    await session.commit()

    async with runtime.locks.hold(conversation_id):
        try:
            reply = await runtime.rasa.send(conversation_id, START_COMMAND, command=True)
        except AssistantUnavailable as exc:
            logger.warning("conversation %s opening failed: %s", short_id(conversation_id), exc)
            raise _unavailable() from None
        messages = await crud.store_replies(session, conversation, reply)
        await session.commit()

    logger.info(
        "conversation %s created, %d opening messages, %.0f ms",
        short_id(conversation_id),
        len(messages),
        (time.perf_counter() - started) * 1000,
    )
    return ConversationCreated(conversation_id=conversation_id, messages=messages)


@router.post(
    "/{conversation_id}/messages",
    response_model=Replies,
    summary="Send a message",
    responses={
        404: error_response("Unknown or malformed conversation id."),
        413: error_response(
            "The text is longer than the limit (MESO_MAX_TEXT_CHARS characters)."
        ),
        422: error_response("Empty text, malformed JSON, a wrong type or a missing field."),
        429: RATE_LIMITED,
        503: UNAVAILABLE,
    },
)
async def send_message(
    body: MessageIn,
    session: SessionDep,
    runtime: RuntimeDep,
    conversation_id: str = Path(description="The id returned when the conversation was created."),
) -> Replies:
    """Send the patient's message (or a button's payload) and return the assistant's replies.

    Text equal to the payload of a button in the assistant's last reply is passed on as that
    button (and stored with the button's title); any other text, even one starting with '/',
    is passed on as plain words. Messages to one conversation are answered one at a time, in
    the order they arrive.
    """
    if not is_conversation_id(conversation_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=NOT_FOUND_DETAIL)
    text = body.text.strip()
    if not text:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail="The message is empty. Please type a question.",
        )
    limit = runtime.settings.max_text_chars
    if len(text) > limit:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            detail=f"The message is too long ({len(text)} characters). "
            f"Please keep it to {limit} characters or fewer.",
        )
    exists = await crud.conversation_exists(session, conversation_id)
    await session.rollback()  # end the read-only transaction before waiting for the lock
    if not exists:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=NOT_FOUND_DETAIL)
    retry_after = runtime.message_limiter.hit(conversation_id)
    if retry_after is not None:
        raise _too_many(retry_after)

    started = time.perf_counter()
    async with runtime.locks.hold(conversation_id):
        conversation = await crud.get_conversation_for_update(session, conversation_id)
        if conversation is None:  # deleted while this request waited
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=NOT_FOUND_DETAIL)
        offered = await crud.last_offered_buttons(session, conversation_id)
        button = next((b for b in offered if b.get("payload") == text), None)
        patient = await crud.add_patient_message(
            session,
            conversation,
            text=body.text,
            button_title=button.get("title") if button else None,
        )
        await session.commit()

        try:
            reply = await runtime.rasa.send(conversation_id, text, command=button is not None)
        except AssistantUnavailable as exc:
            logger.warning(
                "conversation %s message seq=%d unanswered: %s",
                short_id(conversation_id),
                patient.seq,
                exc,
            )
            # Nothing to show, but a red flag the bot raised must still reach staff.
            if exc.reply is not None and crud.apply_red_flag(
                conversation, patient, exc.reply, utcnow()
            ):
                await session.commit()
            raise _unavailable() from None

        crud.record_understanding(patient, reply.nlu)
        messages = await crud.store_replies(session, conversation, reply, patient)
        await session.commit()

    logger.info(
        "conversation %s message seq=%d chars=%d button=%s answered with %d messages, %.0f ms",
        short_id(conversation_id),
        patient.seq,
        len(text),
        button is not None,
        len(messages),
        (time.perf_counter() - started) * 1000,
    )
    return Replies(messages=messages)

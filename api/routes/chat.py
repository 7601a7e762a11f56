"""Public chat API, version 1: create a conversation, send a message, read it back.

With transcript consent nothing is lost: the patient's message is committed before Rasa is
asked, the replies are committed before the response leaves, and a message Rasa could not
answer stays stored as 'unanswered' while the patient gets a 503. Without consent no
message is stored: Rasa's tracker is the only copy, until ``api.retention`` erases it.
Message text is never logged.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from api import conversation_auth, crud, history, text_hygiene, tracker_sync, understanding
from contract import commands
from api.deps import RuntimeDep, SessionDep
from api.staff.erasure import erase
from api.routes.access import PatientConversation, PatientConversationOrUnchecked, Unchecked, not_found
from api.models import short_id, utcnow
from api.rasa_client import AssistantUnavailable, RasaNlu
from api.replies import batch_red_flag, present
from api.sqlite_driver import inline_statements
from api.schemas import (
    UNAVAILABLE_DETAIL,
    Button,
    ConversationCreated,
    ConversationIn,
    ErrorBody,
    History,
    MessageIn,
    Replies,
    Understanding,
)

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/conversations", tags=["chat"])

CLIENT_ID_REUSED_DETAIL = (
    "This client_id was already used for a different message. Send it with a new client_id."
)


def error_response(description: str) -> dict[str, Any]:
    """An OpenAPI ``responses`` entry whose body is :class:`ErrorBody`."""
    return {"model": ErrorBody, "description": description}


RATE_LIMITED = error_response(
    "Too many requests; the Retry-After header says how many seconds to wait."
)
UNAVAILABLE = error_response(
    "The assistant is not ready (Rasa is down or too slow); try again later."
)
NOT_EXPECTED_422 = error_response(
    "Not expected here (the only parameter is a string in the path); "
    "listed because every 422 of this API has this body."
)


start_command = commands.start_command
"""The trusted command that opens a conversation; the bot's privacy notice says whether the
transcript is kept (``contract.commands``)."""


def too_many(retry_after: int, what: str = "messages") -> HTTPException:
    return HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        detail=f"Too many {what}. Please wait {retry_after} seconds and try again.",
        headers={"Retry-After": str(retry_after)},
    )


def _unavailable(runtime: RuntimeDep) -> HTTPException:
    """503, its text ending with what to do if it is urgent."""
    detail = runtime.safety_net.unavailable(UNAVAILABLE_DETAIL)
    return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=detail)


def client_key(request: Request) -> str:
    """The client's IP address, used only as an in-memory rate-limit key, never stored."""
    return request.client.host if request.client else "unknown"


def _client_hints(request: Request) -> dict[str, str | None]:
    """What staff may find useful about the client: browser, language, embedding site."""
    headers = request.headers
    language = headers.get("accept-language", "").split(",")[0].split(";")[0].strip()
    hints = {
        "user_agent": headers.get("user-agent", "")[:512],
        "language": language[:35],
        "origin": headers.get("origin", "")[:255],
    }
    return {name: text_hygiene.without_refused(value) or None for name, value in hints.items()}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ConversationCreated,
    summary="Start a conversation",
    responses={
        422: error_response("Malformed JSON or a wrong type (consent must be true or false)."),
        429: RATE_LIMITED,
        503: UNAVAILABLE,
    },
)
async def create_conversation(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    body: ConversationIn | None = None,
) -> ConversationCreated:
    """Create a conversation and return its id, its token and the assistant's opening messages.

    The body is optional: `{"consent": true}` keeps the transcript for the clinic's staff;
    without it (or without a body) no message is stored, and the conversation is deleted
    after MESO_TRANSCRIPT_IDLE_MINUTES without a message. The opening messages say which.
    The id and the token are made here (256 random bits each); ids from clients are never
    accepted. The token is returned only here: send it as `Authorization: Bearer <token>` on
    every later call on this conversation; the id alone opens nothing.
    """
    consent = body is not None and body.consent
    retry_after = await runtime.conversation_limiter.take(client_key(request))
    if retry_after is not None:
        raise too_many(retry_after)

    started = time.perf_counter()
    with inline_statements():  # point statements by key (api.sqlite_driver)
        conversation_id = secrets.token_urlsafe(32)
        token = conversation_auth.new_token()
        conversation = await crud.create_conversation(
            session,
            conversation_id,
            token_hash=conversation_auth.token_hash(token),
            consent=consent,
            **_client_hints(request),
        )
        await session.commit()

        async with runtime.locks.hold(conversation_id):
            try:
                reply = await runtime.rasa.send(
                    conversation_id, start_command(consent), command=True
                )
            except AssistantUnavailable as exc:
                # The patient can still start, and ask for help: the safety net opens instead.
                logger.warning(
                    "conversation %s opening failed, safety net opens it: %s",
                    short_id(conversation_id),
                    exc,
                )
                reply = runtime.safety_net.opening(consent)
            messages = await crud.store_replies(
                session, conversation, reply, summary_link=_summary_link(runtime, conversation_id),
                first_seq=crud.FIRST_SEQ,
            )
            await session.commit()
            understood = await _understanding(request, runtime, conversation_id, reply.nlu)

    logger.info(
        "conversation %s created (transcript %s), %d opening messages, %.0f ms",
        short_id(conversation_id),
        "kept" if consent else "not kept",
        len(messages),
        (time.perf_counter() - started) * 1000,
    )
    return ConversationCreated(
        conversation_id=conversation_id,
        token=token,
        consent=consent,
        messages=messages,
        understanding=understood,
    )


@router.post(
    "/{conversation_id}/messages",
    response_model=Replies,
    summary="Send a message",
    responses={
        404: error_response("Unknown or malformed conversation id."),
        413: error_response(
            "The text is longer than the limit (MESO_MAX_TEXT_CHARS characters)."
        ),
        422: error_response(
            "Empty text, malformed JSON, a wrong type or a missing field, or a client_id "
            "already used for other text."
        ),
        429: RATE_LIMITED,
        503: UNAVAILABLE,
    },
)
async def send_message(
    request: Request,
    body: MessageIn,
    session: SessionDep,
    runtime: RuntimeDep,
    opened: PatientConversationOrUnchecked,
) -> Replies:
    """Send the patient's message (or a button's payload) and return the assistant's replies.

    Text equal to the payload of a button in the assistant's last reply is passed on as that
    button (and stored with the button's title); any other text, even one starting with '/',
    is passed on as plain words. Messages to one conversation are answered one at a time, in
    the order they arrive. With transcript consent, a `client_id` sent again (a retry) is
    not stored twice: an answered message gets its stored replies again, an unanswered one
    is sent to the assistant again.
    """
    conversation_id = opened.id
    if not isinstance(opened, Unchecked):
        await session.rollback()  # end the read-only transaction before waiting for the lock
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
    retry_after = await runtime.message_limiter.take(conversation_id)
    if retry_after is not None:
        raise too_many(retry_after)

    if isinstance(opened, Unchecked):
        # The database cannot be reached: the safety net answers; the turn waits, its token
        # to be checked before it is written (api.write_behind).
        return _without_database(runtime, conversation_id, body, text, opened.token_hash)
    if runtime.write_behind:
        # The database refuses writes: this turn waits behind the ones it already holds.
        return _without_database(runtime, conversation_id, body, text)

    started = time.perf_counter()
    with inline_statements():  # point statements by key (api.sqlite_driver)
        async with contextlib.AsyncExitStack() as held:
            try:
                await held.enter_async_context(runtime.locks.hold(conversation_id))
                start = await crud.start_turn(session, conversation_id)
            except (SQLAlchemyError, OSError) as exc:  # the lock's database, or the first read
                await _rolled_back(session, conversation_id, "could not start the turn", exc)
                return _without_database(runtime, conversation_id, body, text)
            if start is None:  # deleted while this request waited
                raise not_found()
            conversation = start.conversation
            try:
                stored = await _store_turn(session, runtime, start, body, text)
            except (DBAPIError, OSError) as exc:
                await _rolled_back(session, conversation_id, "refused the message", exc)
                return _without_database(runtime, conversation_id, body, text)
            if isinstance(stored, Replies):
                return stored
            patient, title, unsettled = stored
            turn = f"seq={patient.seq}" if patient is not None else "(not stored)"

            turn_id = tracker_sync.message_id(patient) if patient is not None else None
            try:
                if unsettled:
                    raise AssistantUnavailable("rasa tracker", "an earlier attempt is unsettled")
                reply = await runtime.rasa.send(
                    conversation_id, text, command=title is not None, message_id=turn_id
                )
            except AssistantUnavailable as exc:
                # The message stays marked (api.tracker_sync): Rasa may still answer it, or
                # never have seen it.
                logger.warning(
                    "conversation %s message %s unanswered: %s",
                    short_id(conversation_id),
                    turn,
                    exc,
                )
                known = batch_red_flag(exc.reply.messages) if exc.reply is not None else None
                net = runtime.safety_net.reply(text, known)
                if net is None:
                    await session.commit()
                    raise _unavailable(runtime) from None
                # A red flag gets the bot's urgent reply all the same, stored with its level.
                logger.warning(
                    "conversation %s message %s: the safety net answered a red flag (%s)",
                    short_id(conversation_id),
                    turn,
                    batch_red_flag(net.messages),
                )
                reply = net
                runtime.metrics.safety_net.inc()
            else:
                if patient is not None:  # Rasa's own reply: stored now, nothing to settle
                    patient.tracker_pending = False
            runtime.metrics.reply(reply)

            messages = await crud.store_replies(
                session, conversation, reply, patient,
                summary_link=_summary_link(runtime, conversation_id),
                first_seq=patient.seq + 1 if patient is not None else None,  # the latest message
            )
            await session.commit()
            understood = await _understanding(request, runtime, conversation_id, reply.nlu)

    logger.info(
        "conversation %s message %s chars=%d button=%s answered with %d messages, %.0f ms",
        short_id(conversation_id),
        turn,
        len(text),
        title is not None,
        len(messages),
        (time.perf_counter() - started) * 1000,
    )
    return Replies(messages=messages, understanding=understood)


def _summary_link(runtime: RuntimeDep, conversation_id: str) -> str:
    """A fresh signed link to the conversation's printable summary (``api.signed_links``)."""
    return runtime.summary_links.url(conversation_id, utcnow())


async def _rolled_back(
    session: AsyncSession, conversation_id: str, what: str, exc: BaseException
) -> None:
    """After the database failed a turn: roll back what can be (a dropped connection has
    nothing to roll back) and log it, the kind of error only."""
    with contextlib.suppress(SQLAlchemyError, OSError):
        await session.rollback()
    logger.warning(
        "conversation %s: the database %s (%s)", short_id(conversation_id), what, type(exc).__name__
    )


def _without_database(
    runtime: RuntimeDep, conversation_id: str, body: MessageIn, text: str,
    token_hash: str | None = None,
) -> Replies:
    """The database refuses writes (locked, down): the safety net answers, without the bot,
    and the turn waits in memory until it can be written (``api.write_behind``);
    ``token_hash``: the request's token, not yet checked against the conversation's."""
    net = runtime.safety_net.reply(text)
    runtime.write_behind.keep(
        conversation_id, body.text, body.client_id, None, net, token_hash=token_hash
    )
    if net is None:
        raise _unavailable(runtime)
    runtime.metrics.safety_net.inc()
    runtime.metrics.reply(net)
    return Replies(messages=[m.public for m in present(net.messages, summary_link=None)])


async def _store_turn(
    session: AsyncSession,
    runtime: RuntimeDep,
    start: crud.TurnStart,
    body: MessageIn,
    text: str,
) -> Replies | tuple[crud.PatientMessage | None, str | None, bool]:
    """Store the patient's message (with consent) before the bot is asked; return it, the
    title of the button it pressed and whether it retries an attempt Rasa may have run that
    could not be checked (then it must not be sent again); or the stored replies when it is
    a retry already answered.
    """
    conversation = start.conversation
    conversation_id = conversation.id
    patient: crud.PatientMessage | None = None
    unsettled = False
    if conversation.transcript_consent:
        # A turn the bot failed earlier may have been answered since: settle it first,
        # so a retry gets that answer and the new message comes after it.
        link = _summary_link(runtime, conversation.id)
        seq = start.next_seq
        if start.pending and await tracker_sync.settle(
            session, runtime.rasa, conversation, summary_link=link
        ):
            await session.commit()
            seq = await crud.next_seq(session, conversation_id)
        earlier = await _earlier_attempt(session, conversation_id, body)
        if earlier is not None and earlier.status == "answered":
            logger.info(
                "conversation %s message seq=%d retried: stored replies sent again",
                short_id(conversation_id),
                earlier.seq,
            )
            return Replies(
                messages=await crud.stored_replies(session, earlier, summary_link=link)
            )
        offered = (
            await crud.last_offered_buttons(session, conversation_id)
            if history.may_be_press(text)
            else []
        )
        title = history.press_title(text, offered)
        # Still marked after the settling: Rasa's tracker could not be read, and Rasa may
        # have run that attempt (its worker died, or its reply was lost). Sending it again
        # could run it twice; the patient is asked to try again instead.
        unsettled = earlier is not None and earlier.tracker_pending
        patient = await _store_patient_message(session, conversation, body, title, earlier, seq)
    else:
        offered = await _tracker_buttons(runtime, conversation_id, text)
        title = history.press_title(text, offered)
        await crud.touch(session, conversation_id, utcnow())
    await session.commit()
    return patient, title, unsettled


async def _understanding(
    request: Request, runtime: RuntimeDep, conversation_id: str, nlu: RasaNlu
) -> Understanding | None:
    """The turn's understanding for a conversation test holding the test key, else None.

    Read under the conversation's lock, so the tracker holds exactly this turn; a failure
    to read it costs the test its details, never the patient's reply.
    """
    if not understanding.holds_test_key(request, runtime.settings):
        return None
    try:
        return await understanding.read(runtime.rasa, conversation_id, nlu)
    except AssistantUnavailable:
        return None


async def _earlier_attempt(
    session: AsyncSession, conversation_id: str, body: MessageIn
) -> crud.PatientMessage | None:
    """The stored message this one retries (same ``client_id``), if any.

    A ``client_id`` already used for other text is refused (422), never answered wrongly.
    """
    if body.client_id is None:
        return None
    earlier = await crud.find_patient_message(session, conversation_id, body.client_id)
    if earlier is not None and earlier.text != body.text:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=CLIENT_ID_REUSED_DETAIL)
    return earlier


async def _store_patient_message(
    session: AsyncSession,
    conversation: crud.ConversationState,
    body: MessageIn,
    title: str | None,
    earlier: crud.PatientMessage | None,
    seq: int,
) -> crud.PatientMessage:
    """Store the message as 'unanswered' with ``seq`` (or take up the unanswered earlier
    attempt), marked for ``api.tracker_sync`` until Rasa's reply is stored: should this
    worker die while Rasa runs the turn, the next contact with the conversation finds the
    turn in Rasa's tracker instead of sending it a second time."""
    if earlier is not None:
        await crud.retry_patient_message(session, conversation, earlier, title)
        return earlier
    return await crud.add_patient_message(
        session, conversation, text=body.text, button_title=title, client_id=body.client_id,
        seq=seq, tracker_pending=True,
    )


async def _tracker_buttons(runtime: RuntimeDep, conversation_id: str, text: str) -> list[Button]:
    """Without a stored transcript, the buttons on offer are read from Rasa's tracker (only
    when ``text`` could be a payload: ``history.may_be_press``)."""
    if not history.may_be_press(text):
        return []
    try:
        events = await runtime.rasa.tracker(conversation_id)
    except AssistantUnavailable:
        raise _unavailable(runtime) from None
    return history.offered_buttons(events, short_id(conversation_id))


PATIENT_ACTOR = "patient"
"""The audit log's actor name for a patient who deleted their own conversation."""


@router.delete(
    "/{conversation_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete this conversation",
    responses={
        404: error_response("Malformed, unknown or expired conversation id, or no valid token."),
        422: NOT_EXPECTED_422,
        429: RATE_LIMITED,
    },
)
async def delete_conversation(
    session: SessionDep, runtime: RuntimeDep, conversation: PatientConversation
) -> Response:
    """Erase the conversation everywhere, as the clinic's erasure does: its messages, the
    assistant's working copy, callback requests, the saved checklist and summary, staff notes
    and tags. The audit log keeps only that the patient erased it, with counts. The token
    opens nothing afterwards."""
    conversation_id = conversation.id
    await session.rollback()
    retry_after = await runtime.message_limiter.take(conversation_id)
    if retry_after is not None:
        raise too_many(retry_after, "requests")
    counts = await erase(
        session, runtime.tracker, conversation_id, PATIENT_ACTOR, locks=runtime.locks
    )
    if counts is None:  # erased meanwhile
        raise not_found()
    logger.info("conversation %s erased by the patient", short_id(conversation_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


HISTORY_ERRORS: dict[int | str, dict[str, Any]] = {
    404: error_response("Malformed, unknown or expired conversation id."),
    422: NOT_EXPECTED_422,
    429: RATE_LIMITED,
    503: UNAVAILABLE,
}


async def _history_limit(request: Request, runtime: RuntimeDep) -> None:
    """Count the request against its client's history limit (before the token is checked:
    guesses count too)."""
    retry_after = await runtime.history_limiter.take(client_key(request))
    if retry_after is not None:
        raise too_many(retry_after, "requests")


@router.get(
    "/{conversation_id}/messages", response_model=History, responses=HISTORY_ERRORS,
    summary="Read the conversation so far",
)
async def read_history(
    session: SessionDep,
    runtime: RuntimeDep,
    _limit: Annotated[None, Depends(_history_limit)],
    conversation: PatientConversation,
) -> History:
    """The whole conversation so far, in order, opening messages included, to redraw the
    chat after a page reload. A patient's button press shows the button's title.

    With transcript consent it comes from the API's record (assistant messages have their
    `id` and `feedback`); without, from the assistant's working copy, its only copy (no ids).
    Rate-limited per client address.
    """
    conversation_id = conversation.id
    link = _summary_link(runtime, conversation_id)
    if conversation.transcript_consent:
        if await crud.pending_patient_messages(session, conversation_id):
            await session.rollback()
            async with runtime.locks.hold(conversation_id):
                locked = await crud.get_conversation_for_update(session, conversation_id)
                if locked is None:
                    raise not_found()
                await tracker_sync.settle(session, runtime.rasa, locked, summary_link=link)
                await session.commit()
        rows = await crud.stored_messages(session, conversation_id)
        return History(consent=True, messages=history.from_rows(rows, summary_link=link))
    has_summary = conversation.has_summary
    await session.rollback()  # no transaction stays open while waiting or asking Rasa
    # Under the conversation's lock: the purge erases Rasa's copy under it, and Rasa would
    # start a new (empty) tracker if asked for one just erased.
    async with runtime.locks.hold(conversation_id):
        if not await crud.conversation_exists(session, conversation_id):
            raise not_found()
        await session.rollback()
        try:
            events = await runtime.rasa.tracker(conversation_id)
        except AssistantUnavailable:
            raise _unavailable(runtime) from None
    messages = history.from_tracker(
        events, short_id(conversation_id), summary_link=link if has_summary else None
    )
    return History(consent=False, messages=messages)

"""Exports for staff: one conversation or the inbox's filtered set as CSV or JSON, and one
conversation as a Rasa test story or as a conversation test (``tests/conversations/``).

All are GET downloads (attachments, not cached). Personal details are masked unless the
query has ``personal=1`` and the user is an admin; a reviewer asking for them gets a 403
page and nothing is exported. Every export is audited (``export``: the conversation or the
filters, the format, the row count and whether personal details were included); a refused
request for personal details is audited as ``export_refused``. An admin's export with
personal details also needs the password or a code given recently (``RecentAuth``).

What of a conversation is exported follows :mod:`api.staff.visibility`: without transcript
consent the CSV has no rows and the JSON no messages for it (its callback requests and record
stay), and the test story and the conversation test are refused (404, with the reason)
before anything is read, Rasa's tracker least of all.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from fastapi import APIRouter, Request, status
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import RasaDep, SessionDep
from api.models import Conversation, StaffUser, short_id
from api.rasa_client import AssistantUnavailable
from api.routes.staff.transcript import NOT_FOUND_HEADING, NOT_FOUND_MESSAGE
from api.staff.audit import audit
from api.staff.auth import PersonalDetailsAuthDep, StaffResponse
from api.staff.export import (
    conversation_json,
    conversation_test,
    csv_rows,
    known_names,
    load_conversation,
    safe_filename,
    stories_from_events,
    story_yaml,
    to_csv,
    with_everything,
)
from api.staff.inbox_query import InboxFilters, filtered_conversations
from api.staff.templating import error_page
from api.text_hygiene import shown_value
from api.staff.visibility import NOT_KEPT_MESSAGE, shows_transcript

router = APIRouter(tags=["staff"])

PERSONAL_PARAM = "personal"
_YES = {"1", "on", "true", "yes"}
_NO = {"", "0", "off", "false", "no"}

MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "yml": "text/yaml; charset=utf-8",
}

PERSONAL_HEADING = "Personal details are for administrators"
PERSONAL_MESSAGE = (
    "Only an administrator can export email addresses, phone numbers and callback names. "
    "Nothing was exported. Untick \"Include personal details\" to export with them masked."
)
NO_STORY_HEADING = "No test story for this conversation"
NO_STORY_MESSAGE = (
    "The assistant holds no messages for this conversation any more (it was erased), so no "
    "test story can be made."
)
NO_CONVTEST_HEADING = "No conversation test for this conversation"
NO_CONVTEST_MESSAGE = (
    "No message of the patient is stored for this conversation (the patient did not agree to "
    "keep the transcript, or it was erased), so no conversation test can be made."
)
UNAVAILABLE_HEADING = "The assistant is not answering"
UNAVAILABLE_MESSAGE = (
    "The test story is built from the assistant's record of the conversation, and the "
    "assistant did not answer in time. Try again in a minute."
)


def _attachment(body: str, extension: str, stem: str) -> Response:
    return Response(
        body,
        media_type=MEDIA_TYPES[extension],
        # Not cached: the app adds Cache-Control: no-store to every staff response.
        headers={"Content-Disposition": f'attachment; filename="{safe_filename(stem, extension)}"'},
    )


async def _personal(
    request: Request, session: AsyncSession, user: StaffUser, what: str, target: str | None
) -> bool:
    """Whether personal details are asked for and allowed; otherwise raises
    :class:`StaffResponse` with a 422 page (a value that is no yes or no) or a 403 page (a
    reviewer asking for them: audited as ``export_refused``)."""
    value = request.query_params.get(PERSONAL_PARAM, "").strip().lower()
    if value in _NO:
        return False
    if value not in _YES:
        raise StaffResponse(
            error_page(
                request,
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                "This export cannot be made",
                '"Include personal details" must be ticked or not ticked.',
            )
        )
    if not user.is_admin:
        audit(session, user, "export_refused", "conversation" if target else None, target,
              format=what, reason="personal details need an administrator")
        await session.commit()
        raise StaffResponse(error_page(request, status.HTTP_403_FORBIDDEN, PERSONAL_HEADING,
                                  PERSONAL_MESSAGE))
    return True


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S")


async def _one(
    request: Request, session: AsyncSession, user: StaffUser, conversation_id: str, fmt: str
) -> Response:
    personal = await _personal(request, session, user, fmt, conversation_id)
    conversation = await load_conversation(session, conversation_id)
    if conversation is None:
        return error_page(request, status.HTTP_404_NOT_FOUND, NOT_FOUND_HEADING, NOT_FOUND_MESSAGE)
    if fmt == "csv":
        body, rows = to_csv(csv_rows([conversation], personal))
    else:
        body = _json_document({"conversation": conversation_id}, [conversation], personal)
        rows = 1
    audit(session, user, "export", "conversation", conversation_id,
          format=fmt, rows=rows, conversations=1, personal=personal)
    await session.commit()
    return _attachment(body, fmt, f"conversation-{short_id(conversation_id)}")


def _json_document(
    scope: dict[str, object], conversations: list[Conversation], personal: bool
) -> str:
    document = {
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "personal_details": personal,
        "scope": scope,
        "conversations": [conversation_json(c, personal) for c in conversations],
    }
    return json.dumps(shown_value(document), ensure_ascii=False, indent=2)


async def _filtered(request: Request, session: AsyncSession, user: StaffUser, fmt: str) -> Response:
    try:
        filters = InboxFilters.from_query(request.query_params)
    except ValueError as exc:
        return error_page(
            request,
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "These filters cannot be used",
            f"{exc} Nothing was exported.",
        )
    personal = await _personal(request, session, user, fmt, None)
    conversations = list(
        (await session.scalars(with_everything(filtered_conversations(filters)))).all()
    )
    if fmt == "csv":
        body, rows = to_csv(csv_rows(conversations, personal))
    else:
        body = _json_document({"filters": filters.with_page(1).to_query()}, conversations,
                              personal)
        rows = len(conversations)
    audit(session, user, "export", None, None, filters=filters.with_page(1).audit_detail(),
          format=fmt, rows=rows, conversations=len(conversations), personal=personal)
    await session.commit()
    return _attachment(body, fmt, f"conversations-{_stamp()}")


@router.get("/conversations/{conversation_id}/export.csv", summary="Export a conversation (CSV)")
async def export_conversation_csv(
    request: Request, conversation_id: str, user: PersonalDetailsAuthDep, session: SessionDep
) -> Response:
    return await _one(request, session, user, conversation_id, "csv")


@router.get("/conversations/{conversation_id}/export.json", summary="Export a conversation (JSON)")
async def export_conversation_json(
    request: Request, conversation_id: str, user: PersonalDetailsAuthDep, session: SessionDep
) -> Response:
    return await _one(request, session, user, conversation_id, "json")


@router.get("/export.csv", summary="Export the filtered conversations (CSV)")
async def export_set_csv(
    request: Request, user: PersonalDetailsAuthDep, session: SessionDep
) -> Response:
    return await _filtered(request, session, user, "csv")


@router.get("/export.json", summary="Export the filtered conversations (JSON)")
async def export_set_json(
    request: Request, user: PersonalDetailsAuthDep, session: SessionDep
) -> Response:
    return await _filtered(request, session, user, "json")


@router.get("/conversations/{conversation_id}/story.yml", summary="Export a Rasa test story")
async def export_story(
    request: Request,
    conversation_id: str,
    user: PersonalDetailsAuthDep,
    session: SessionDep,
    rasa: RasaDep,
) -> Response:
    """The conversation as a Rasa test story (for ``tests/stories/``), from Rasa's tracker:
    the patient's words with their intents, the actions, slots and forms. Only with
    transcript consent: without it the tracker is not read (404 with the reason)."""
    personal = await _personal(request, session, user, "story", conversation_id)
    conversation = await load_conversation(session, conversation_id)
    if conversation is None:
        return error_page(request, status.HTTP_404_NOT_FOUND, NOT_FOUND_HEADING, NOT_FOUND_MESSAGE)
    if not shows_transcript(conversation):
        return error_page(request, status.HTTP_404_NOT_FOUND, NO_STORY_HEADING, NOT_KEPT_MESSAGE)
    try:
        events = await rasa.raw_events(conversation_id)
    except AssistantUnavailable:
        return error_page(request, status.HTTP_503_SERVICE_UNAVAILABLE, UNAVAILABLE_HEADING,
                          UNAVAILABLE_MESSAGE, {"Retry-After": "30"})
    stories = stories_from_events(
        short_id(conversation_id), events, personal, known_names(conversation)
    )
    if not stories:
        return error_page(request, status.HTTP_404_NOT_FOUND, NO_STORY_HEADING, NO_STORY_MESSAGE)
    steps = sum(len(story.steps) for story in stories)
    audit(session, user, "export", "conversation", conversation_id,
          format="story", rows=steps, stories=len(stories), personal=personal)
    await session.commit()
    return _attachment(story_yaml(stories), "yml", f"story-{short_id(conversation_id)}")


@router.get(
    "/conversations/{conversation_id}/conversation-test.yml", summary="Export a conversation test"
)
async def export_conversation_test(
    request: Request, conversation_id: str, user: PersonalDetailsAuthDep, session: SessionDep
) -> Response:
    """The conversation as a conversation test (for ``tests/conversations/``), drafted from the
    stored transcript: the patient's words and button presses, and what the assistant answered
    (intent, red flag, topic, entry, sources, buttons, a phrase) as assertions to review."""
    personal = await _personal(request, session, user, "convtest", conversation_id)
    conversation = await load_conversation(session, conversation_id)
    if conversation is None:
        return error_page(request, status.HTTP_404_NOT_FOUND, NOT_FOUND_HEADING, NOT_FOUND_MESSAGE)
    if not shows_transcript(conversation):
        return error_page(request, status.HTTP_404_NOT_FOUND, NO_CONVTEST_HEADING,
                          NOT_KEPT_MESSAGE)
    body, steps = conversation_test(conversation, personal, datetime.now(UTC).date())
    if not steps:
        return error_page(request, status.HTTP_404_NOT_FOUND, NO_CONVTEST_HEADING,
                          NO_CONVTEST_MESSAGE)
    audit(session, user, "export", "conversation", conversation_id,
          format="convtest", rows=steps, personal=personal)
    await session.commit()
    return _attachment(body, "yml", f"conversation-{short_id(conversation_id)}")

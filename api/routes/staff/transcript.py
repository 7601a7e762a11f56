"""One conversation for staff (``/staff/conversations/{id}``): the transcript page and the
staff actions on it.

Every view is audited (``view_conversation``). Each action is a form POST (CSRF-checked)
that changes the record, adds its audit entry in the same commit and answers 303 back to
the page with a one-time notice. Unfit input (an empty note, a tag with other characters)
shows the page again with the reason (422) and changes nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import quote

from fastapi import APIRouter, Request, status
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import SessionDep
from api.models import Conversation, StaffUser
from api.staff.audit import audit
from api.staff.auth import CsrfDep, StaffDep, form_field
from api.staff.inbox_query import TAG_MAX_CHARS
from api.staff.templating import error_page, redirect, render
from api.staff.transcript import (
    NOTE_MAX_CHARS,
    NOTICES,
    add_note,
    add_tag,
    load_transcript,
    mark_callback_done,
    remove_tag,
    set_flag,
    set_reviewed,
)

router = APIRouter(prefix="/conversations", tags=["staff"])

NOT_FOUND_HEADING = "Conversation not found"
NOT_FOUND_MESSAGE = (
    "There is no conversation with this id. It may have been erased, or the link is incomplete."
)


def page_url(conversation_id: str) -> str:
    return f"/staff/conversations/{quote(conversation_id, safe='')}"


def _not_found(request: Request) -> HTMLResponse:
    return error_page(request, status.HTTP_404_NOT_FOUND, NOT_FOUND_HEADING, NOT_FOUND_MESSAGE)


async def _show(
    request: Request,
    session: AsyncSession,
    user: StaffUser,
    conversation_id: str,
    *,
    error: str | None = None,
    kept: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """The transcript page (audited as a view); 404 for an unknown id.

    ``kept``: what was typed into a form field (by name) that is shown again to be corrected.
    """
    view = await load_transcript(session, conversation_id)
    if view is None:
        return _not_found(request)
    audit(session, user, "view_conversation", "conversation", conversation_id)
    await session.commit()
    return render(
        request,
        "staff/transcript.html",
        {
            "view": view,
            "conversation": view.conversation,
            "page_url": page_url(conversation_id),
            "error": error,
            "kept": kept or {},
            "tag_max_chars": TAG_MAX_CHARS,
            "note_max_chars": NOTE_MAX_CHARS,
        },
        status.HTTP_422_UNPROCESSABLE_CONTENT if error else status.HTTP_200_OK,
    )


@router.get("/{conversation_id}", response_class=HTMLResponse, summary="Transcript")
async def transcript_page(
    request: Request, conversation_id: str, user: StaffDep, session: SessionDep
) -> HTMLResponse:
    return await _show(request, session, user, conversation_id)


Change = Callable[[AsyncSession, StaffUser, Conversation, str], Awaitable[str | None]]
"""An action on a conversation, given the posted field's value: it returns a key of NOTICES,
or None for "no such thing here"; it raises ValueError (before changing anything) for unfit
input."""


async def _act(
    request: Request,
    session: AsyncSession,
    user: StaffUser,
    conversation_id: str,
    change: Change,
    field: str | None = None,
) -> Response:
    """Run ``change`` with the form's ``field`` and commit, then 303 back with its notice.

    A ValueError shows the page again (422) with the reason and the typed value; None: 404.
    """
    conversation = await session.get(Conversation, conversation_id)
    if conversation is None:
        return _not_found(request)
    value = await form_field(request, field) if field else ""
    try:
        notice = await change(session, user, conversation, value)
    except ValueError as exc:
        return await _show(
            request, session, user, conversation_id, error=str(exc), kept={field or "": value}
        )
    if notice is None:
        return _not_found(request)
    await session.commit()
    return redirect(page_url(conversation_id), flash=NOTICES[notice])


def _switch(
    setter: Callable[[AsyncSession, StaffUser, Conversation, bool], str], on: bool
) -> Change:
    """The change setting the reviewed mark or the staff flag (no form field)."""

    async def change(
        session: AsyncSession, user: StaffUser, conversation: Conversation, _: str
    ) -> str:
        return setter(session, user, conversation, on)

    return change


ACTIONS: dict[str, tuple[str | None, Change, str]] = {
    "tags": ("tag", add_tag, "Add a tag"),
    "tags/remove": ("tag", remove_tag, "Remove a tag"),
    "notes": ("text", add_note, "Add a note"),
    "review": (None, _switch(set_reviewed, True), "Mark reviewed"),
    "unreview": (None, _switch(set_reviewed, False), "Mark not reviewed"),
    "flag": (None, _switch(set_flag, True), "Flag for attention"),
    "unflag": (None, _switch(set_flag, False), "Remove the flag"),
}
"""``POST /staff/conversations/{id}/<path>``: (form field, change, summary)."""


def _action_route(change: Change, field: str | None) -> Callable[..., Awaitable[Response]]:
    async def route(
        request: Request,
        conversation_id: str,
        user: StaffDep,
        _: CsrfDep,
        session: SessionDep,
    ) -> Response:
        return await _act(request, session, user, conversation_id, change, field)

    return route


for _path, (_field, _change, _summary) in ACTIONS.items():
    router.add_api_route(
        f"/{{conversation_id}}/{_path}",
        _action_route(_change, _field),
        methods=["POST"],
        summary=_summary,
    )


@router.post("/{conversation_id}/callbacks/{callback_id}/done", summary="Mark a callback done")
async def callback_done(
    request: Request,
    conversation_id: str,
    callback_id: str,
    user: StaffDep,
    _: CsrfDep,
    session: SessionDep,
) -> Response:
    if not callback_id.isdigit() or len(callback_id) > 12:
        return _not_found(request)

    async def change(
        db: AsyncSession, staff: StaffUser, conversation: Conversation, _: str
    ) -> str | None:
        return await mark_callback_done(db, staff, conversation, int(callback_id))

    return await _act(request, session, user, conversation_id, change)

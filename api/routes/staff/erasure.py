"""Erasing a conversation (admins): a confirmation page with what will be deleted, then the
erasure itself (the API's rows and Rasa's tracker events), audited. Both need the password or
a code given recently (``RecentAuth``): a stale POST is sent to confirm, then back to the
confirmation page."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response

from api.deps import RuntimeDep, SessionDep
from api.models import Conversation
from api.routes.access import is_conversation_id
from api.staff.auth import AdminDep, CsrfDep, RecentAuthDep
from api.staff.erasure import conversation_counts, erase
from api.staff.templating import redirect, render

router = APIRouter(prefix="/admin/conversations", tags=["staff-admin"])

NO_SUCH = "There is no such conversation. It may have been erased already."

TABLE_LABELS = {
    "messages": "messages",
    "callback_requests": "callback requests",
    "conversation_tags": "tags",
    "staff_notes": "staff notes",
}


def _known_id(conversation_id: str) -> str:
    if not is_conversation_id(conversation_id):
        raise HTTPException(404, NO_SUCH)
    return conversation_id


@router.get("/{conversation_id}/erase")
async def erase_page(
    request: Request, db: SessionDep, admin: AdminDep, _: RecentAuthDep, conversation_id: str
) -> Response:
    """What erasing this conversation will delete; the button that does it."""
    conversation = await db.get(Conversation, _known_id(conversation_id))
    if conversation is None:
        raise HTTPException(404, NO_SUCH)
    counts = await conversation_counts(db, conversation_id)
    rows = [(TABLE_LABELS.get(name, name.replace("_", " ")), n) for name, n in counts.items()]
    context = {"conversation": conversation, "counts": rows}
    return render(request, "staff/erase.html", context)


@router.post("/{conversation_id}/erase")
async def erase_conversation(
    db: SessionDep,
    runtime: RuntimeDep,
    admin: AdminDep,
    _: CsrfDep,
    __: RecentAuthDep,
    conversation_id: str,
) -> Response:
    counts = await erase(
        db, runtime.tracker, _known_id(conversation_id), admin, locks=runtime.locks
    )
    if counts is None:
        raise HTTPException(404, NO_SUCH)
    return redirect(
        "/staff",
        flash=f"The conversation was erased: {counts.get('messages', 0)} messages and "
        f"{counts['rasa_events']} assistant events deleted.",
    )

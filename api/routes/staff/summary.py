"""The consultation summary of a conversation, for staff (the patient's printable page).

Patients open it through an expiring signed link (``api.routes.summary``); staff open it
here, signed in, however long ago the conversation was. Each view is audited.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from api import crud, pages
from api.deps import RuntimeDep, SessionDep
from api.models import Conversation
from api.schemas import Summary
from api.staff.audit import audit
from api.staff.auth import StaffDep
from api.staff.templating import error_page

router = APIRouter(prefix="/conversations", tags=["staff"])

NO_SUMMARY_HEADING = "No summary"
NO_SUMMARY_MESSAGE = "This conversation has no consultation summary."


@router.get("/{conversation_id}/summary", response_class=HTMLResponse, summary="Summary")
async def summary_page(
    request: Request,
    conversation_id: str,
    user: StaffDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> HTMLResponse:
    conversation = await session.get(Conversation, conversation_id)
    summary: Summary | None = None
    if conversation is not None and conversation.summary is not None:
        try:
            summary = Summary.model_validate(conversation.summary)
        except ValidationError:
            summary = None
    if summary is None:
        return error_page(
            request, status.HTTP_404_NOT_FOUND, NO_SUMMARY_HEADING, NO_SUMMARY_MESSAGE
        )
    audit(session, user, "view_summary", "conversation", conversation_id)
    await session.commit()
    cited = await crud.cited_sources(session, conversation_id)
    html = pages.render("summary.html", **pages.summary_context(summary, runtime.sources, cited))
    return HTMLResponse(html, headers={"X-Robots-Tag": "noindex"})

"""The consultation summary: a printable HTML page and the stored JSON document.

The JSON document opens with the conversation's token, like every chat route
(``api.routes.access``). The printable page opens through a signed link that expires
(``api.signed_links``, ``MESO_SUMMARY_LINK_MINUTES``) and carries no secret, so its address
can sit in a browser's history or a print footer: the chat gives a fresh link with each
message that offers the summary and with the history. A malformed, forged or expired link,
an unknown conversation and one without a summary all get the same 404, so these routes tell
nobody which conversations exist. Responses may not be cached (``Cache-Control: no-store``),
passed on as a referrer or indexed; requests are rate-limited per client address, like
starting a conversation.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response, status
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from api import crud, pages
from api.deps import RuntimeDep, SessionDep
from api.models import utcnow
from api.routes.access import PatientConversation, is_conversation_id, is_idle
from api.routes.chat import (
    NOT_EXPECTED_422,
    RATE_LIMITED,
    client_key,
    error_response,
    short_id,
)
from api.schemas import Summary
from api.signed_links import SUMMARY_PATH

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/conversations", tags=["summary"])
page_router = APIRouter(prefix=SUMMARY_PATH, tags=["summary"])

PRIVATE_HEADERS: dict[str, str] = {"X-Robots-Tag": "noindex"}
"""Sent with every response of these routes. ``Cache-Control: no-store`` and
``Referrer-Policy: no-referrer`` come with every /api/ response (``main.SecurityHeaders``)."""

NOT_AVAILABLE_HEADING = "This summary is not available"
NOT_AVAILABLE_DETAIL = (
    "This summary is not available. The link may be incomplete, or no summary has been "
    "made yet: ask the assistant for one in the chat."
)


def _too_many_detail(retry_after: int) -> str:
    return f"Too many requests. Please wait {retry_after} seconds and try again."


def _html(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}


NOT_EXPECTED_422_JSON: dict[str, Any] = {
    "description": NOT_EXPECTED_422["description"],
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
}
"""The same for the HTML route, whose other responses are text/html (ErrorBody is listed
in the components by the chat routes)."""


async def _stored_summary(
    session: AsyncSession, conversation_id: str, resume_hours: float
) -> Summary | None:
    """The conversation's latest summary; None for a malformed, unknown or long idle
    conversation, or no summary."""
    if not is_conversation_id(conversation_id):
        return None
    conversation = await crud.get_conversation(session, conversation_id)
    if conversation is None or is_idle(conversation, resume_hours):
        return None
    stored = conversation.summary
    if stored is None:
        return None
    try:
        return Summary.model_validate(stored)
    except ValidationError as exc:  # stored by an older version, say: never a 500
        logger.error(
            "conversation %s: stored summary unreadable (%d errors)",
            short_id(conversation_id),
            exc.error_count(),
        )
        return None


def _message_page(
    status_code: int, heading: str, paragraphs: list[str], headers: dict[str, str] | None = None
) -> HTMLResponse:
    return HTMLResponse(
        pages.render("message.html", heading=heading, paragraphs=paragraphs),
        status_code=status_code,
        headers={**PRIVATE_HEADERS, **(headers or {})},
    )


@page_router.get(
    "/{link}",
    response_class=HTMLResponse,
    summary="Open the consultation summary (printable page)",
    responses={
        200: _html("The summary as a printable HTML page."),
        404: _html("A page saying the summary is not available: the link is malformed, "
                   "altered or expired, or the assistant has not made a summary yet."),
        422: NOT_EXPECTED_422_JSON,
        429: _html("A page asking to wait; the Retry-After header says how many seconds."),
    },
)
async def summary_page(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    link: str = Path(description="The signed link's last part, as given in `summary_url`."),
) -> HTMLResponse:
    """The latest consultation summary the assistant made in this conversation, as a page to
    print or save as PDF. A message offering it has `summary_url` set: a signed link that
    expires (MESO_SUMMARY_LINK_MINUTES, default 60) and carries no secret.

    Everything on it is plain text (escaped); the sources each point rests on are named by
    title. The page needs no script and works under `Content-Security-Policy: default-src 'self'`.
    """
    retry_after = await runtime.summary_limiter.take(client_key(request))
    if retry_after is not None:
        return _message_page(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "Too many requests",
            [_too_many_detail(retry_after)],
            {"Retry-After": str(retry_after)},
        )
    conversation_id = runtime.summary_links.conversation(link, utcnow()) or ""
    summary = await _stored_summary(session, conversation_id, runtime.settings.resume_hours)
    if summary is None:
        return _message_page(
            status.HTTP_404_NOT_FOUND,
            NOT_AVAILABLE_HEADING,
            [
                "The link may be incomplete or out of date (links work for a limited "
                "time), or no summary has been made yet.",
                "Go back to the chat and ask the assistant for a summary of your questions "
                "for the consultation: it gives a fresh link.",
            ],
        )
    cited = await crud.cited_sources(session, conversation_id)
    html = pages.render("summary.html", **pages.summary_context(summary, runtime.sources, cited))
    return HTMLResponse(html, headers=PRIVATE_HEADERS)


async def _summary_limit(request: Request, runtime: RuntimeDep) -> None:
    """Count the request against its client's summary limit (before the token is checked:
    guesses count too)."""
    retry_after = await runtime.summary_limiter.take(client_key(request))
    if retry_after is not None:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail=_too_many_detail(retry_after),
            headers={"Retry-After": str(retry_after), **PRIVATE_HEADERS},
        )


@router.get(
    "/{conversation_id}/summary.json",
    response_model=Summary,
    summary="Get the consultation summary (JSON)",
    responses={
        200: {"description": "The stored summary document."},
        404: error_response(
            "Malformed, unknown or expired conversation id, no valid token, or no summary "
            "made yet."
        ),
        422: NOT_EXPECTED_422,
        429: RATE_LIMITED,
    },
)
async def summary_json(
    response: Response,
    session: SessionDep,
    runtime: RuntimeDep,
    _limit: Annotated[None, Depends(_summary_limit)],
    conversation: PatientConversation,
) -> Summary:
    """The latest consultation summary of this conversation, as the assistant made it."""
    summary = await _stored_summary(session, conversation.id, runtime.settings.resume_hours)
    if summary is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail=NOT_AVAILABLE_DETAIL, headers=PRIVATE_HEADERS
        )
    response.headers.update(PRIVATE_HEADERS)
    return summary

"""The staff inbox (``GET /staff``): every kept conversation, priority first, with filters.

Filters come as a GET form, so a filtered view is a link staff can keep, and the export link
carries the same query. A value that cannot be used answers 422 with the reason and no
results (never a guess at what was meant). Each request is audited as ``view_inbox`` with
its filters; of the search text only its length is recorded (it may hold personal details).
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode

from fastapi import APIRouter, Request, status
from fastapi.responses import HTMLResponse

from api.deps import SessionDep
from api.notifications.outbox import count_failing
from api.staff.audit import audit
from api.staff.auth import StaffDep
from api.staff.inbox_query import (
    CALLBACK_CHOICES,
    RED_FLAG_CHOICES,
    REVIEWED_CHOICES,
    FilterError,
    InboxFilters,
    InboxPage,
    inbox_page,
    known_tags,
    known_topics,
)
from api.staff.templating import render

INBOX_PATH = "/staff"
FILTER_FIELDS = (
    "q",
    "date_from",
    "date_to",
    "red_flag",
    "low_confidence",
    "callback",
    "thumbs_down",
    "topic",
    "reviewed",
    "tag",
)
"""The inbox form's fields (the page number aside)."""


def _export_heading(total: int, filtered: bool) -> str:
    if total == 1:
        return "Export this conversation" if filtered else "Export the conversation"
    return f"Export {'these' if filtered else 'all'} {total} conversations"


def _page_link(filters: InboxFilters, page: int, pages: int) -> str | None:
    """The inbox with the same filters on ``page``; None when there is no such page."""
    if not 1 <= page <= pages:
        return None
    query = filters.with_page(page).to_query()
    return f"{INBOX_PATH}?{urlencode(query)}" if query else INBOX_PATH


def _in_use(values: list[str], chosen: str | None) -> dict[str, str]:
    """Values in use as a select's choices, the chosen one kept even if no longer in use."""
    if chosen and chosen not in values:
        values = [chosen, *values]
    return {value: value for value in values}


def _options(anything: str, choices: Mapping[str, str]) -> list[tuple[str, str]]:
    """A select's (value, text) options: first "no filter", then ``choices``."""
    return [("", anything), *choices.items()]


router = APIRouter(tags=["staff"])


@router.get("", response_class=HTMLResponse, summary="Staff inbox")
async def inbox(request: Request, user: StaffDep, session: SessionDep) -> HTMLResponse:
    params = request.query_params
    error: FilterError | None = None
    try:
        filters = InboxFilters.from_query(params)
    except FilterError as exc:
        error = exc
        filters = InboxFilters()
    if error is None:
        result = await inbox_page(session, filters)
        audit(
            session, user, "view_inbox", None, None,
            filters=filters.audit_detail(),
            page=result.page,
            shown=len(result.rows),
            total=result.total,
        )
        form = filters.to_query()
    else:
        result = InboxPage(rows=[], total=0, page=1, pages=1)
        audit(session, user, "view_inbox", None, None, invalid_filter=True)
        form = {name: params.get(name, "").strip() for name in FILTER_FIELDS}
    topics = await known_topics(session)
    tags = await known_tags(session)
    notification_problems = await count_failing(session)
    await session.commit()
    return render(
        request,
        "staff/inbox.html",
        {
            "error": str(error) if error else None,
            "error_field": error.field if error else None,
            "notification_problems": notification_problems,
            "form": form,
            "filtered": error is None and filters.active,
            "result": result,
            "previous_url": _page_link(filters, result.page - 1, result.pages),
            "next_url": _page_link(filters, result.page + 1, result.pages),
            "export_query": filters.with_page(1).to_query() if error is None else None,
            "export_heading": _export_heading(result.total, filters.active),
            "red_flag_options": _options("Any", RED_FLAG_CHOICES),
            "callback_options": _options("Any", CALLBACK_CHOICES),
            "reviewed_options": _options("Any", REVIEWED_CHOICES),
            "topic_options": _options("Any topic", _in_use(topics, form.get("topic"))),
            "tag_options": _options("Any tag", _in_use(tags, form.get("tag"))),
        },
        status.HTTP_422_UNPROCESSABLE_CONTENT if error else status.HTTP_200_OK,
    )


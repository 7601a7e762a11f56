""""Questions we could not answer" (``GET /staff/questions``): the patient messages that fell
back or were understood with low confidence, grouped by similar wording, largest groups first.

An optional date range (``date_from``, ``date_to``: UTC days, inclusive) narrows it; an
unusable date answers 422 with the reason and no groups. Each view is audited as
``view_questions`` (the range, the numbers of messages and groups; never the texts).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from fastapi.responses import HTMLResponse

from api.deps import SessionDep
from api.staff.audit import audit
from api.staff.auth import StaffDep
from api.staff.inbox_query import FALLBACK_INTENT, LOW_CONFIDENCE
from api.staff.questions import (
    MAX_EXAMPLES,
    MAX_LINKS,
    RANGE_LABELS,
    callback_names,
    date_range,
    group_questions,
    group_views,
    unanswered_questions,
)
from api.staff.templating import render

router = APIRouter(tags=["staff"])


@router.get("/questions", response_class=HTMLResponse, summary="Questions we could not answer")
async def questions(request: Request, user: StaffDep, session: SessionDep) -> HTMLResponse:
    form = {name: request.query_params.get(name, "").strip() for name in RANGE_LABELS}
    try:
        date_from, date_to = date_range(form)
    except ValueError as exc:
        audit(session, user, "view_questions", None, None, invalid_filter=True)
        await session.commit()
        return render(
            request,
            "staff/questions.html",
            {"error": str(exc), "form": form, "groups": [], "total": 0, **_constants()},
            status.HTTP_422_UNPROCESSABLE_CONTENT,
        )
    found = await unanswered_questions(session, date_from, date_to)
    groups = group_questions(found)
    names = await callback_names(session, sorted({q.conversation_id for q in found}))
    audit(
        session, user, "view_questions", None, None,
        filters={k: v for k, v in form.items() if v}, messages=len(found), groups=len(groups),
    )
    await session.commit()
    return render(
        request,
        "staff/questions.html",
        {
            "error": None,
            "form": form,
            "groups": group_views(groups, names),
            "total": len(found),
            **_constants(),
        },
    )


def _constants() -> dict[str, object]:
    return {
        "low_confidence": LOW_CONFIDENCE,
        "fallback_intent": FALLBACK_INTENT,
        "max_examples": MAX_EXAMPLES,
        "max_links": MAX_LINKS,
        "range_labels": RANGE_LABELS,
    }

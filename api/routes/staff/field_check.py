"""The field test (``GET /staff/field-check``): per month, how many did the short check at
the start and at the end of the guided steps, their mean knowledge score and the share with
SURE 4 of 4; ``GET /staff/field-check.csv`` downloads the same with the distributions.

Any member of staff may see it: the figures are anonymous counts, with no conversation and
no text (``api.staff.field_check``). Each view is audited as ``view_field_check``, each
download as ``export`` (format ``field_check_csv``, with the row count).
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from api.deps import SessionDep
from api.staff.audit import audit
from api.staff.auth import StaffDep
from api.staff.field_check import FEW, csv_rows, monthly, to_csv
from api.staff.templating import render

router = APIRouter(tags=["staff"])

PATH = "/field-check"


@router.get(PATH, response_class=HTMLResponse, summary="Field test: the short check, per month")
async def field_check_page(request: Request, user: StaffDep, session: SessionDep) -> HTMLResponse:
    months = await monthly(session)
    audit(session, user, "view_field_check", None, None, months=len(months))
    await session.commit()
    return render(request, "staff/field_check.html", {"months": months, "few": FEW})


@router.get(PATH + ".csv", summary="Field test: the short check, per month (CSV)")
async def field_check_csv(user: StaffDep, session: SessionDep) -> Response:
    body, rows = to_csv(csv_rows(await monthly(session)))
    audit(session, user, "export", None, None, format="field_check_csv", rows=rows)
    await session.commit()
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="field-check-{stamp}.csv"'},
    )

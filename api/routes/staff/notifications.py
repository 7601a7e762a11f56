"""Staff notifications in the console (``GET /staff/notifications``): the latest notices
(red flags, callback requests, reminders), whether each reached every channel, and why not;
the channels set. Any member of staff may look (they are who is told). Each view is
audited as ``view_notifications`` with counts only."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from api.deps import SessionDep, SettingsDep
from api.models import StaffNotification
from api.notifications.channels import channels
from api.notifications.outbox import count_failing
from api.staff.audit import audit
from api.staff.auth import StaffDep
from api.staff.inbox_query import level_label
from api.staff.templating import render

router = APIRouter(tags=["staff"])

SHOWN = 100


@router.get("/notifications", response_class=HTMLResponse, summary="Staff notifications")
async def notifications(
    request: Request, user: StaffDep, session: SessionDep, settings: SettingsDep
) -> HTMLResponse:
    rows = (await session.scalars(
        select(StaffNotification)
        .order_by(StaffNotification.created_at.desc(), StaffNotification.id.desc())
        .limit(SHOWN)
    )).all()
    problems = await count_failing(session)
    audit(session, user, "view_notifications", None, None, shown=len(rows), failing=problems)
    await session.commit()
    names = [channel.name for channel in channels(settings)]
    return render(request, "staff/notifications.html",
                  {"rows": rows, "problems": problems, "channels": names, "level_label": level_label})

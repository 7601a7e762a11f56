"""The audit log, for admins: newest first, filtered by action and by actor. Read-only:
no route edits or deletes an entry."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy import func, select

from api.deps import SessionDep
from api.models import AuditEntry
from api.staff.audit import audit
from api.staff.auth import AdminDep
from api.staff.templating import render

router = APIRouter(prefix="/admin/audit", tags=["staff-admin"])

PAGE_SIZE = 50


def _page_number(raw: str) -> int:
    return int(raw) if raw.isdigit() and 0 < int(raw) < 1_000_000 else 1


class AuditFilter(BaseModel):
    action: str = ""
    actor: str = ""
    page: str = "1"


@router.get("")
async def audit_page(
    request: Request, db: SessionDep, admin: AdminDep, shown: Annotated[AuditFilter, Query()]
) -> Response:
    action, actor = shown.action.strip()[:64], shown.actor.strip()[:128]
    number = _page_number(shown.page)
    query = select(AuditEntry)
    if action:
        query = query.where(AuditEntry.action == action)
    if actor:
        query = query.where(AuditEntry.actor_name == actor)
    total = int(await db.scalar(select(func.count()).select_from(query.subquery())) or 0)
    entries = (
        await db.scalars(
            query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
            .limit(PAGE_SIZE)
            .offset((number - 1) * PAGE_SIZE)
        )
    ).all()
    actions = (
        await db.scalars(select(AuditEntry.action).distinct().order_by(AuditEntry.action))
    ).all()
    actors = (
        await db.scalars(select(AuditEntry.actor_name).distinct().order_by(AuditEntry.actor_name))
    ).all()
    filters = {key: value for key, value in (("action", action), ("actor", actor)) if value}
    audit(db, admin, "audit_log_viewed", None, None, page=number, **filters)
    await db.commit()
    pages = max(1, -(-total // PAGE_SIZE))
    context: dict[str, Any] = {
        "entries": entries,
        "total": total,
        "page": number,
        "pages": pages,
        "action": action,
        "actor": actor,
        "actions": actions,
        "actors": actors,
        "filters": filters,
        "newer": f"?{urlencode({**filters, 'page': number - 1})}" if number > 1 else None,
        "older": f"?{urlencode({**filters, 'page': number + 1})}" if number < pages else None,
    }
    return render(request, "staff/audit.html", context)

"""``GET /metrics``: Prometheus's text format (``api.metrics``), for a scraper holding
``MESO_METRICS_TOKEN``; without that setting the route answers 404 like any unknown path."""

from __future__ import annotations

import hmac
import logging

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.core import Metric
from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import SQLAlchemyError

from api.deps import RuntimeDep
from api.metrics import gauge
from api.models import Conversation, StaffNotification
from api.routes.health import component_checks

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)


def _authorised(request: Request, token: str) -> bool:
    given = request.headers.get("authorization", "")
    return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


@router.get("/metrics")
async def metrics(request: Request, runtime: RuntimeDep) -> Response:
    token = runtime.settings.metrics_token.get_secret_value()
    if not token:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Not Found")
    if not _authorised(request, token):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "A metrics token is needed.",
                            headers={"WWW-Authenticate": "Bearer"})
    checks = (await component_checks(runtime)).model_dump()
    scraped: list[Metric] = [
        gauge("meso_up", "1 when the component answers (as /readyz checks it)", ("component",),
              [((name,), 1.0 if value == "ok" else 0.0) for name, value in checks.items()]),
        gauge("meso_write_behind_turns", "Turns kept in this worker while the database "
              "refused them", (), [((), float(len(runtime.write_behind)))]),
    ]
    try:
        scraped.extend(await _from_the_database(runtime))
    except (SQLAlchemyError, OSError) as error:
        logger.warning("metrics: the database could not be read (%s)", type(error).__name__)
    return Response(request.app.state.metrics.render(scraped), media_type=CONTENT_TYPE_LATEST)


async def _from_the_database(runtime: RuntimeDep) -> list[Metric]:
    async with runtime.sessionmaker() as session:
        rows = (await session.execute(
            select(StaffNotification.status, StaffNotification.attempts, func.count())
            .where(StaffNotification.status != "sent")
            .group_by(StaffNotification.status, StaffNotification.attempts)
        )).all()
        unreviewed = (await session.execute(
            select(Conversation.red_flag_level, func.count())
            .where(Conversation.red_flag_level.is_not(None), Conversation.expired_at.is_(None),
                   or_(Conversation.reviewed_at.is_(None),
                       and_(Conversation.red_flag_at.is_not(None),
                            Conversation.reviewed_at < Conversation.red_flag_at)))
            .group_by(Conversation.red_flag_level)
        )).all()
        await session.rollback()
    notices = {"waiting": 0.0, "retrying": 0.0, "failed": 0.0}
    for status_, attempts, count in rows:
        name = "failed" if status_ == "failed" else ("retrying" if attempts else "waiting")
        notices[name] += count
    return [
        gauge("meso_staff_notifications", "Staff notices not yet sent, by state", ("state",),
              [((name,), value) for name, value in notices.items()]),
        gauge("meso_red_flags_unreviewed", "Flagged conversations nobody has marked reviewed",
              ("level",), [((level,), float(count)) for level, count in unreviewed]),
    ]

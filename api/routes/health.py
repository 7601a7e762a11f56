"""Liveness (/healthz) and readiness (/readyz) probes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

from fastapi import APIRouter, status
from fastapi.responses import JSONResponse

from api.db import ping
from api.deps import Runtime, RuntimeDep
from api.rasa_client import AssistantUnavailable
from api.schemas import Health, Readiness, ReadinessChecks
from api.tracker_store import TrackerStoreMissing

logger = logging.getLogger(__name__)

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="The process is alive")
async def healthz() -> Health:
    return Health(status="ok")


async def _check(probe: Awaitable[object], timeout: float) -> str:
    """Run one probe with a deadline; "ok" or "down: <reason>" (never raises)."""
    try:
        async with asyncio.timeout(timeout):
            await probe
    except (AssistantUnavailable, TrackerStoreMissing) as exc:
        return f"down: {exc.reason}"
    except TimeoutError:
        return f"down: timeout after {timeout:g}s"
    except Exception as exc:
        return f"down: {type(exc).__name__}"
    return "ok"


async def component_checks(runtime: Runtime) -> ReadinessChecks:
    """Rasa, the action server, the database and Rasa's tracker store, checked concurrently,
    each within ``MESO_READINESS_TIMEOUT`` (``/readyz``, and the metrics' ``meso_up``)."""
    timeout = runtime.settings.readiness_timeout
    rasa, action_server, database, tracker_store = await asyncio.gather(
        _check(runtime.rasa.status(), timeout),
        _check(runtime.rasa.action_server_health(), timeout),
        _check(ping(runtime.engine), timeout),
        _check(runtime.tracker.check(), timeout),
    )
    return ReadinessChecks(rasa=rasa, action_server=action_server, database=database,
                           tracker_store=tracker_store)


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Rasa, the action server, the database and Rasa's tracker store all answer",
    responses={503: {"model": Readiness, "description": "At least one component is down."}},
)
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    """Check the components concurrently, each within MESO_READINESS_TIMEOUT seconds.

    200 when all answer (Rasa with a loaded model; its tracker database with its events
    table, else Rasa would be keeping conversations in memory), else 503; ``checks`` says
    which is down.
    """
    checks = await component_checks(runtime)
    ready = all(value == "ok" for value in checks.model_dump().values())
    if not ready:
        logger.warning("not ready: %s", checks.model_dump())
    body = Readiness(status="ok" if ready else "unavailable", checks=checks)
    return JSONResponse(
        body.model_dump(),
        status_code=status.HTTP_200_OK if ready else status.HTTP_503_SERVICE_UNAVAILABLE,
    )

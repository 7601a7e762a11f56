"""/healthz and /readyz through the real app."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_fakes import TOKEN, Harness, rasa_tracker_db
from sqlalchemy.ext.asyncio import create_async_engine

pytestmark = pytest.mark.anyio

ALL_OK = {"rasa": "ok", "action_server": "ok", "database": "ok", "tracker_store": "ok"}


@pytest.fixture(autouse=True)
def rasa_started(tracker_path: Path) -> None:
    """Rasa's tracker database, as a started Rasa leaves it (an empty events table)."""
    rasa_tracker_db(tracker_path, {})


async def test_healthz(h: Harness) -> None:
    response = await h.client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_healthz_does_not_depend_on_rasa(h: Harness) -> None:
    h.rasa.status = lambda: httpx.Response(500)
    h.rasa.health = lambda: httpx.Response(500)
    assert (await h.client.get("/healthz")).status_code == 200


async def test_readyz_ok_when_all_components_answer(h: Harness) -> None:
    response = await h.client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": ALL_OK}
    status_request = next(r for r in h.rasa.requests if r.url.path == "/status")
    assert status_request.url.params["token"] == TOKEN


def _refused() -> httpx.Response:
    raise httpx.ConnectError("refused")


@pytest.mark.parametrize(
    ("component", "attribute", "response", "reason"),
    [
        ("rasa", "status", _refused, "down: ConnectError"),
        (
            "rasa",
            "status",
            lambda: httpx.Response(200, json={"model_file": None}),
            "down: no model loaded",
        ),
        ("rasa", "status", lambda: httpx.Response(500), "down: HTTP 500"),
        ("action_server", "health", _refused, "down: ConnectError"),
        ("action_server", "health", lambda: httpx.Response(503), "down: HTTP 503"),
    ],
    ids=["rasa refused", "rasa without model", "rasa 500", "actions refused", "actions 503"],
)
async def test_readyz_names_the_component_that_is_down(
    h: Harness, component: str, attribute: str, response: Callable[[], httpx.Response], reason: str
) -> None:
    setattr(h.rasa, attribute, response)

    result = await h.client.get("/readyz")

    assert result.status_code == 503
    assert result.json() == {"status": "unavailable", "checks": {**ALL_OK, component: reason}}


async def test_readyz_reports_a_wrong_rasa_token(start: Callable[..., Any]) -> None:
    async with start(rasa_token="wrong") as h:
        result = await h.client.get("/readyz")
    assert result.status_code == 503
    assert result.json()["checks"]["rasa"] == "down: HTTP 401"


async def test_readyz_reports_the_database_down(h: Harness, tmp_path: Path) -> None:
    runtime = h.app.state.runtime
    healthy = runtime.engine
    runtime.engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path}")  # a folder: cannot open
    try:
        result = await h.client.get("/readyz")
    finally:
        await runtime.engine.dispose()
        runtime.engine = healthy

    assert result.status_code == 503
    checks = result.json()["checks"]
    assert checks["database"].startswith("down: ")
    assert (checks["rasa"], checks["action_server"]) == ("ok", "ok")


async def test_readyz_checks_run_concurrently_with_short_timeouts(
    start: Callable[..., Any],
) -> None:
    async with start(readiness_timeout=0.4) as h:
        h.rasa.check_delay = 3.0
        started = time.monotonic()

        result = await h.client.get("/readyz")

        elapsed = time.monotonic() - started
    assert result.status_code == 503
    assert result.json()["checks"] == {
        "rasa": "down: timeout after 0.4s",
        "action_server": "down: timeout after 0.4s",
        "database": "ok",
        "tracker_store": "ok",
    }
    assert elapsed < 0.75  # two 0.4 s checks in parallel, not one after the other


async def test_readyz_never_logs_the_token(h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    h.rasa.status = lambda: httpx.Response(500)
    await h.client.get("/readyz")

    assert any(r.name.startswith("api") for r in caplog.records)
    assert all(TOKEN not in r.getMessage() for r in caplog.records)


async def test_readyz_reports_rasas_tracker_store_missing_or_locked(
    h: Harness, tracker_path: Path
) -> None:
    """Without its events table Rasa keeps conversations in memory: not ready. A database
    locked by a writer longer than the readiness timeout is not ready either."""
    locker = sqlite3.connect(tracker_path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        locked = await h.client.get("/readyz")
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    tracker_path.unlink()
    missing = await h.client.get("/readyz")

    assert locked.status_code == 503
    assert locked.json()["checks"]["tracker_store"].startswith("down: ")
    assert (missing.status_code, missing.json()["checks"]) == (
        503,
        {**ALL_OK, "tracker_store": "down: no tracker database"},
    )

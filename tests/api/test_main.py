"""The app factory: no work at import or creation; set-up and tear-down in the lifespan."""

from __future__ import annotations

import gc
import inspect
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from api.main import create_app

pytestmark = pytest.mark.anyio


def test_importing_the_module_does_no_work(tmp_path: Path) -> None:
    database = tmp_path / "folder" / "meso.db"
    code = (
        "import api.main as m; "
        "assert m.app.title; "
        "assert getattr(m.app.state, 'runtime', None) is None; "
        "print('imported')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={
            **os.environ,
            "MESO_DATABASE_URL": f"sqlite:///{database}",
            "MESO_RASA_TIMEOUT": "bad",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "imported"
    assert not database.parent.exists()  # no database touched, settings not even read


async def test_lifespan_creates_the_database_and_closes_everything(
    start: Callable[..., Any], db_path: Path
) -> None:
    assert not db_path.parent.exists()
    async with start() as h:
        runtime = h.app.state.runtime
        rasa = runtime.rasa
        assert "token_hash" in await h.columns("conversations")  # migrated
        assert db_path.exists() == h.database_url.startswith("sqlite")
        assert not rasa.is_closed
    assert rasa.is_closed
    assert h.app.state.runtime is None


async def test_what_lives_as_long_as_the_app_is_kept_from_full_collections(
    start: Callable[..., Any],
) -> None:
    gc.unfreeze()
    async with start():
        assert gc.get_freeze_count() > 10_000  # the app, its libraries, its settings
    assert gc.get_freeze_count() == 0  # given back: collectable again


async def test_requests_before_start_up_fail_clearly() -> None:
    import httpx

    app = create_app()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/readyz")
    assert response.status_code == 500
    assert list(response.json()) == ["detail"]


def test_the_public_api_has_no_plain_def_dependency() -> None:
    """FastAPI runs a plain ``def`` dependency in a worker thread, a hand-over between threads
    on every request: every dependency of the public API is a coroutine."""
    from fastapi.routing import APIRoute

    from api.routes import chat, feedback, health, summary, widget

    def calls(dependant: Any) -> Any:
        for sub in dependant.dependencies:
            yield sub.call
            yield from calls(sub)

    routers = (chat.router, feedback.router, health.router, summary.router, summary.page_router,
               widget.router)
    checked = 0
    for route in (r for router in routers for r in router.routes):
        assert isinstance(route, APIRoute)
        for call in calls(route.dependant):
            target = call if inspect.isfunction(call) else type(call).__call__
            assert inspect.iscoroutinefunction(target) or inspect.isasyncgenfunction(target), (
                f"{route.path}: {call!r} is not async"
            )
            checked += 1
    assert checked > 10

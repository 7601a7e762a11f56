"""Fixtures: the real app on a real SQLite file (migrated at start-up), with a fake Rasa and
action server at the network edge (``httpx.MockTransport``)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from api_fakes import ACTION_URL, RASA_URL, TOKEN, FakeRasa, Harness, running_app
from staff_fakes import StaffClient, logged_in

from api.settings import Settings


@pytest.fixture
def anyio_backend() -> str:
    """Async tests (marked ``pytest.mark.anyio`` per module) run on asyncio."""
    return "asyncio"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No MESO_* variable of the machine leaks into a test."""
    for name in list(os.environ):
        if name.startswith("MESO_"):
            monkeypatch.delenv(name)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "var" / "meso.db"


@pytest.fixture
def tracker_path(tmp_path: Path) -> Path:
    """Where Rasa's tracker store would be (a SQLite file; absent until a test makes it)."""
    return tmp_path / "var" / "rasa-tracker.db"


TEST_DATABASE = os.environ.get("MESO_TEST_DATABASE", "sqlite")
"""The database the app runs on in these tests: ``sqlite`` (a file per test) or
``postgresql`` (a new database per test on the session's private server); ``make test-api``
runs the suite on both."""


@pytest.fixture
def database_url(db_path: Path, request: pytest.FixtureRequest) -> str:
    if TEST_DATABASE == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{db_path}"


@pytest.fixture
def make_settings(database_url: str, tracker_path: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "tracker_url": f"sqlite:///{tracker_path}",
            "rasa_url": RASA_URL,
            "action_server_url": ACTION_URL,
            "rasa_token": TOKEN,
            "rasa_timeout": 1.0,
            "readiness_timeout": 0.5,
            "rate_limit_messages_per_minute": 0,
            "rate_limit_conversations_per_minute": 0,
            "rate_limit_summaries_per_minute": 0,
            "rate_limit_history_per_minute": 0,
            "login_attempts_per_minute": 0,
            "staff_cookie_secure": False,  # the test client speaks plain http
            "scrub_interval_hours": 0,  # on PostgreSQL, tests/api/test_scrub.py starts it
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def fake_rasa() -> FakeRasa:
    return FakeRasa()


@pytest.fixture
def start(
    make_settings: Callable[..., Settings], fake_rasa: FakeRasa, db_path: Path
) -> Callable[..., Any]:
    """``async with start(**settings_overrides) as h:`` runs the app with those settings."""

    def _start(**overrides: Any) -> Any:
        return running_app(make_settings(**overrides), fake_rasa, db_path)

    return _start


@pytest.fixture
async def h(start: Callable[..., Any]) -> AsyncIterator[Harness]:
    async with start() as harness:
        yield harness


@pytest.fixture
async def admin_client(h: Harness) -> AsyncIterator[StaffClient]:
    """An admin (username ``admin``) logged in to the staff console of ``h``."""
    async with logged_in(h, "admin", "admin") as staff:
        yield staff


@pytest.fixture
async def reviewer_client(h: Harness) -> AsyncIterator[StaffClient]:
    """A reviewer (username ``reviewer``) logged in to the staff console of ``h``."""
    async with logged_in(h, "reviewer", "reviewer") as staff:
        yield staff

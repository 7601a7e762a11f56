"""ops.services runs the migrations as their own step before the API, and starts the API
with migrating at start-up off; a failed migration stops the start, with its output."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from ops import services

SHOW_SETTING = "import os; print('api saw', os.environ.get('MESO_MIGRATE_ON_START'), flush=True)"


def _fake_api(monkeypatch: pytest.MonkeyPatch, migrate: str) -> None:
    monkeypatch.setattr(services, "commands",
                        lambda env: [("api", [sys.executable, "-c", SHOW_SETTING], "http://x")])
    monkeypatch.setattr(services, "_answers", lambda url: True)
    monkeypatch.setattr(services, "migrate_command", lambda: [sys.executable, "-c", migrate])


def test_the_migrations_run_before_the_api_which_may_not_run_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_api(monkeypatch, "print('migrated', flush=True)")
    stack = services.Services({**os.environ, "MESO_VAR_DIR": str(tmp_path)})
    stack.start()
    try:
        stack.procs[0][1].wait(20)
    finally:
        stack.stop()
    assert (tmp_path / "log" / "api.log").read_text().split("\n")[:2] == ["migrated", "api saw false"]
    assert "MESO_MIGRATE_ON_START" not in stack.env  # only the API's own environment


def test_a_failed_migration_stops_the_start_and_shows_why(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_api(monkeypatch, "import sys; print('no such table: x'); sys.exit(1)")
    stack = services.Services({**os.environ, "MESO_VAR_DIR": str(tmp_path)})
    with pytest.raises(RuntimeError, match="migrations failed(.|\n)*no such table: x"):
        stack.start()
    assert stack.procs == []  # the API was never started

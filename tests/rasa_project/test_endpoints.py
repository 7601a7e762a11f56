"""The endpoints Rasa reads: the root's for a developer, each stack's own for ops/services.py."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from rasa.core.utils import AvailableEndpoints

from bot import paths
from ops import services

ROOT = paths.REPO_ROOT


@pytest.fixture
def no_meso_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in [k for k in os.environ if k.startswith("MESO_")]:
        monkeypatch.delenv(key)


def test_root_endpoints_need_no_settings(no_meso_env: None) -> None:
    """`rasa shell` / `rasa interactive`: the action server of `rasa run actions`, trackers in memory."""
    endpoints = AvailableEndpoints.read_endpoints(str(ROOT / "endpoints.yml"))
    assert endpoints.action.url == "http://127.0.0.1:5055/webhook"
    assert endpoints.tracker_store is None
    assert "${" not in (ROOT / "endpoints.yml").read_text(encoding="utf-8")


def test_a_stack_writes_its_own_endpoints(no_meso_env: None, monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    tracker = "postgresql://meso:p@ss:word@db.internal:5432/rasa"
    monkeypatch.setenv("MESO_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("MESO_ACTION_PORT", "47123")
    monkeypatch.setenv("MESO_TRACKER_URL", tracker)
    env = services.service_env()

    path = services.write_endpoints(env)

    assert path == tmp_path / "endpoints.yml"
    assert env["MESO_RASA_ENDPOINTS"] == str(path)
    rasa_argv = services.commands(env)[1][1]
    assert rasa_argv[rasa_argv.index("--endpoints") + 1] == str(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # the tracker URL may hold a password
    endpoints = AvailableEndpoints.read_endpoints(str(path))
    assert endpoints.action.url == "http://127.0.0.1:47123/webhook"
    assert endpoints.tracker_store.type == "SQL"
    assert endpoints.tracker_store.url == tracker
    assert endpoints.tracker_store.kwargs["db"] == "meso_tracker"


def test_the_scaled_set_up_keeps_its_endpoints_file(no_meso_env: None, monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    scale = str(ROOT / "endpoints.scale.yml")
    monkeypatch.setenv("MESO_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("MESO_RASA_ENDPOINTS", scale)
    monkeypatch.setenv("MESO_TRACKER_URL", "postgresql://meso@db.internal/rasa")
    monkeypatch.setenv("MESO_REDIS_HOST", "redis.internal")
    monkeypatch.setenv("MESO_REDIS_PORT", "6380")
    env = services.service_env()

    rasa_argv = services.commands(env)[1][1]
    assert rasa_argv[rasa_argv.index("--endpoints") + 1] == scale
    monkeypatch.setenv("MESO_ACTION_ENDPOINT", env["MESO_ACTION_ENDPOINT"])
    endpoints = AvailableEndpoints.read_endpoints(scale)  # Rasa fills ${...} from the environment
    assert endpoints.action.url == "http://127.0.0.1:5055/webhook"
    assert endpoints.tracker_store.url == "postgresql://meso@db.internal/rasa"
    assert endpoints.lock_store.type == "redis"
    assert endpoints.lock_store.url == "redis.internal"

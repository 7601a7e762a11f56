"""The API's launcher (``python -m api.serve``): uvicorn with the options every set-up needs
and the shared log format; bad arguments refused before anything starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from api import serve
from api.http_server import CoalescingHttpToolsProtocol


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What uvicorn was asked to run (nothing is served), with the shared metrics folder
    as the workers would have found it."""
    calls: list[dict[str, Any]] = []
    monkeypatch.delenv(serve.SHARED_METRICS_ENV, raising=False)  # restored after

    def run(app: str, **options: Any) -> None:
        shared = os.environ.get(serve.SHARED_METRICS_ENV)
        calls.append({"app": app, **options, "shared": shared,
                      "shared_exists": bool(shared) and Path(shared).is_dir()})

    monkeypatch.setattr(uvicorn, "run", run)
    return calls


def test_uvicorn_runs_the_app_with_its_fixed_options(started: list[dict[str, Any]]) -> None:
    assert serve.main(["--host", "0.0.0.0", "--port", "8123"]) == 0
    [options] = started
    assert options["app"] == "api.main:app" and (options["host"], options["port"]) == ("0.0.0.0", 8123)
    assert options["proxy_headers"] is False and options["access_log"] is False
    assert options["workers"] is None and options["shared"] is None
    module, name = options["http"].split(":")
    assert getattr(__import__(module, fromlist=[name]), name) is CoalescingHttpToolsProtocol


def test_several_workers_share_a_fresh_metrics_folder_removed_at_the_end(
    started: list[dict[str, Any]],
) -> None:
    assert serve.main(["--workers", "3"]) == 0 and serve.main(["--workers", "2"]) == 0
    first, second = started
    assert (first["workers"], second["workers"]) == (3, 2)
    assert first["shared_exists"] and second["shared_exists"]
    assert first["shared"] != second["shared"]  # nothing counted before this start
    assert not Path(first["shared"]).exists() and not Path(second["shared"]).exists()
    assert serve.SHARED_METRICS_ENV not in os.environ


def test_its_log_config_writes_json_lines(started: list[dict[str, Any]]) -> None:
    """Applied in a process of its own, as uvicorn applies it in each worker."""
    serve.main([])
    script = ("import json, logging, logging.config, sys; "
              "logging.config.dictConfig(json.loads(sys.argv[1])); "
              "logging.getLogger('uvicorn.error').info('Uvicorn running')")
    config = json.dumps(started[0]["log_config"], default=lambda f: f"{f.__module__}.{f.__qualname__}")
    done = subprocess.run([sys.executable, "-c", script, config], capture_output=True, text=True,
                          timeout=60, check=True)
    line = json.loads(done.stdout)
    assert (line["service"], line["logger"], line["message"]) == ("api", "uvicorn.error", "Uvicorn running")


@pytest.mark.parametrize(("argv", "env", "error"), [
    (["--workers", "0"], {}, "--workers must be 1 or more"),
    ([], {"MESO_LOG_FORMAT": "xml"}, "MESO_LOG_FORMAT must be one of json, text"),
])
def test_bad_arguments_are_refused_before_anything_starts(
    started: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    argv: list[str], env: dict[str, str], error: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert serve.main(argv) == 2
    assert error in capsys.readouterr().err
    assert started == []

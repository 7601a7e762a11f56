"""The processes ops.services starts under SCHED_BATCH: the API, with the threads it starts."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from ops import services

CHILD = """
import os, threading, time
seen = []
thread = threading.Thread(target=lambda: seen.append(os.sched_getscheduler(0)))
time.sleep(0.3)
thread.start(); thread.join()
print("main", os.sched_getscheduler(0), "thread", seen[0], flush=True)
time.sleep(30)
"""


@pytest.mark.parametrize(("name", "batch"), [("api", True), ("action server", False)])
def test_the_api_and_its_threads_run_as_batch(name: str, batch: bool, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services, "commands", lambda env: [(name, [sys.executable, "-c", CHILD], "http://x")])
    monkeypatch.setattr(services, "_answers", lambda url: True)
    monkeypatch.setattr(services, "migrate_command", lambda: [sys.executable, "-c", "pass"])
    stack = services.Services({**os.environ, "MESO_VAR_DIR": str(tmp_path)})
    stack.start()
    try:
        log = tmp_path / "log" / f"{name.replace(' ', '-')}.log"
        deadline = time.monotonic() + 20
        while "main" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        policy = os.SCHED_BATCH if batch else os.SCHED_OTHER
        assert log.read_text().split() == ["main", str(policy), "thread", str(policy)]
    finally:
        stack.stop()

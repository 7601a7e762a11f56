"""The real stack's logs: one request id from the API through Rasa to the action server, each
process writing JSON lines, and what a patient wrote in none of them."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx

from ops.services import Services

TEXT = "my quokka-zebra scalp story, does mesotherapy hurt"
"""Words found nowhere else in the stack, to look for in its logs."""
LOGS = {"api": "api.log", "rasa": "rasa.log", "actions": "action-server.log"}


def _log_dir(services: Services) -> Path:
    return Path(services.env["MESO_VAR_DIR"]) / "log"


def _lines_since(path: Path, offset: int) -> list[str]:
    with path.open("rb") as log:
        log.seek(offset)
        return [line for line in log.read().decode("utf-8").splitlines() if line.strip()]


def test_one_request_id_runs_through_all_three_logs_and_no_message_text_does(
    services: Services, api: httpx.Client,
) -> None:
    folder = _log_dir(services)
    offsets = {service: (folder / name).stat().st_size for service, name in LOGS.items()}
    opened = api.post("/api/v1/conversations", json={"consent": True})
    assert opened.status_code == 201, opened.text
    conversation_id = opened.json()["conversation_id"]
    turn = api.post(f"/api/v1/conversations/{conversation_id}/messages", json={"text": TEXT})
    assert turn.status_code == 200, turn.text
    rid = turn.headers["x-request-id"]

    carried: dict[str, list[dict[str, Any]]] = {}
    deadline = time.monotonic() + 10
    while True:
        parsed = {service: [json.loads(line) for line in _lines_since(folder / LOGS[service], offset)]
                  for service, offset in offsets.items()}  # every new line is one JSON object
        carried = {service: [line for line in lines if line.get("request_id") == rid]
                   for service, lines in parsed.items()}
        if all(carried.values()) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert all(carried.values()), {service: len(lines) for service, lines in carried.items()}
    access = [line for line in carried["api"] if line["logger"] == "api.access"]
    assert [(line["route"], line["status"]) for line in access] == [
        ("/api/v1/conversations/{conversation_id}/messages", 200)]
    assert {line["service"] for lines in carried.values() for line in lines} == set(LOGS)
    assert any(line["route"] == "/webhook" for line in carried["actions"])

    for name in LOGS.values():
        written = (folder / name).read_text(encoding="utf-8")
        assert "quokka" not in written, name
        assert conversation_id not in written, name

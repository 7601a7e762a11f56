"""The safety net under faults, on real processes: red-flag help when one part fails.

A stack of its own (the shared one is never stopped). For each fault, in a conversation
opened before it and in one opened during it: an emergency and a crisis message get the
urgent reply within the API's timeout plus one second and are stored with their level; a
plain question gets a 503 whose text says what to do if it is urgent; the patient's message
is stored either way; after the fault ends the conversation goes on.

Faults here: the action server stopped, the action server frozen (SIGSTOP) for longer than
the API's timeout, Rasa stopped, Rasa frozen. The figures of each run go to
``results/faults/matrix.json`` (the closing note's table).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from ops.services import Services
from ops.stack import private_services

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 2.0  # the API's timeout for Rasa in this stack (MESO_RASA_TIMEOUT)
ACTION_SERVER, RASA = 0, 1
MESSAGES = {
    "emergency": "my throat is closing up and I cant breathe after the injections",
    "crisis": "honestly i dont want to be alive anymore",
    "plain": "how much does a session cost?",
}
MATRIX: list[dict[str, object]] = []


@pytest.fixture(scope="module")
def services() -> Iterator[Services]:
    with private_services(
        MESO_RATE_LIMIT_CONVERSATIONS_PER_MINUTE="0",
        MESO_RATE_LIMIT_MESSAGES_PER_MINUTE="0",
        MESO_RASA_TIMEOUT=str(TIMEOUT),
    ) as running:
        yield running
    out = ROOT / "results" / "faults"
    out.mkdir(parents=True, exist_ok=True)
    (out / "matrix.json").write_text(json.dumps(MATRIX, indent=1), encoding="utf-8")


@pytest.fixture(scope="module")
def api(services: Services) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=services.env["MESO_API_URL"], timeout=30) as client:
        yield client


def _signal_group(services: Services, index: int, sig: signal.Signals) -> None:
    os.killpg(os.getpgid(services.procs[index][1].pid), sig)


@contextmanager
def stopped(services: Services, index: int) -> Iterator[None]:
    services.stop_one(index)
    try:
        yield
    finally:
        services.start_one(index)


@contextmanager
def frozen(services: Services, index: int) -> Iterator[None]:
    _signal_group(services, index, signal.SIGSTOP)
    try:
        yield
    finally:
        _signal_group(services, index, signal.SIGCONT)


FAULTS: dict[str, Callable[[Services], object]] = {
    "action server stopped": lambda s: stopped(s, ACTION_SERVER),
    "action server frozen": lambda s: frozen(s, ACTION_SERVER),
    "rasa stopped": lambda s: stopped(s, RASA),
    "rasa frozen": lambda s: frozen(s, RASA),
}


def _open(api: httpx.Client) -> str:
    response = api.post("/api/v1/conversations", json={"consent": True})
    assert response.status_code == 201, response.text
    return response.json()["conversation_id"]


def _patient_rows(services: Services, cid: str) -> list[tuple[str, str | None, str | None]]:
    db = sqlite3.connect(Path(services.env["MESO_VAR_DIR"]) / "meso.db")
    try:
        return db.execute(
            "SELECT text, status, red_flag FROM messages WHERE conversation_id = ? "
            "AND role = 'patient' ORDER BY seq", (cid,)).fetchall()
    finally:
        db.close()


def _conversation_level(services: Services, cid: str) -> str | None:
    db = sqlite3.connect(Path(services.env["MESO_VAR_DIR"]) / "meso.db")
    try:
        return db.execute("SELECT red_flag_level FROM conversations WHERE id = ?", (cid,)).fetchone()[0]
    finally:
        db.close()


def _check(api: httpx.Client, services: Services, fault: str, when: str, cid: str) -> None:
    for kind, text in MESSAGES.items():
        started = time.monotonic()
        response = api.post(f"/api/v1/conversations/{cid}/messages", json={"text": text})
        seconds = time.monotonic() - started
        stored = _patient_rows(services, cid)[-1]
        row = {"fault": fault, "conversation": when, "message": kind, "status": response.status_code,
               "seconds": round(seconds, 2), "stored": stored[0] == text, "flagged": stored[2]}
        MATRIX.append(row)
        assert stored[0] == text, row  # nothing the patient sent is lost
        if kind == "plain":
            assert response.status_code == 503, row
            assert "If it is urgent, call" in response.json()["detail"], row
            assert stored[1:] == ("unanswered", None), row
            continue
        assert response.status_code == 200, row
        assert seconds < TIMEOUT + 1.0, row
        first = response.json()["messages"][0]
        assert first["red_flag"] == kind, row
        assert first["text"].startswith("Call" if kind == "emergency" else "Please call"), row
        assert stored[1:] == ("answered", kind), row
    assert _conversation_level(services, cid) == "crisis"


@pytest.mark.parametrize("fault", list(FAULTS))
def test_red_flags_get_the_urgent_reply_under_the_fault(
    fault: str, services: Services, api: httpx.Client
) -> None:
    before = _open(api)
    with FAULTS[fault](services):  # type: ignore[attr-defined]
        during = _open(api)
        _check(api, services, fault, "opened before", before)
        _check(api, services, fault, "opened during", during)
    # The fault is over: both conversations go on.
    for cid in (before, during):
        deadline = time.monotonic() + 30
        while True:
            response = api.post(f"/api/v1/conversations/{cid}/messages",
                                json={"text": "what is mesotherapy?"})
            if response.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert response.status_code == 200, (fault, response.text)
        assert response.json()["messages"][0]["text"]

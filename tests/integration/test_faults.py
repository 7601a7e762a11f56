"""The safety net under faults, on real processes: red-flag help when one part fails.

A stack of its own (the shared one is never stopped). For each fault, in a conversation
opened before it and in one opened during it: an emergency and a crisis message get the
urgent reply within the API's timeout plus one second and are stored with their level; a
plain question gets a 503 whose text says what to do if it is urgent; the patient's message
is stored either way; after the fault ends the conversation goes on, and the transcript, the
history a reloaded widget shows and Rasa's tracker agree (no missing, orphan or duplicate
turn: ``api/tracker_sync.py``).

Faults: the action server stopped; the action server frozen (SIGSTOP) for longer than the
API's timeout; Rasa stopped; Rasa frozen; Rasa's tracker database locked (an exclusive
SQLite transaction held for at least 10 s); the API's own database locked the same way
(no conversation can be opened then: only the one opened before is tested, and the opening's
503 carries the urgent pointer). The figures of each run go to
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

from api.db import sqlite_file
from api.patient_auth import PatientKeys
from api.settings import normalise_database_url
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
    with httpx.Client(
        base_url=services.env["MESO_API_URL"], timeout=30, auth=PatientKeys()
    ) as client:
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


LOCK_SECONDS = 10.0
API_DATABASE = "the API's database locked"


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive transaction on the SQLite database at ``path`` for at least 10 s."""
    db = sqlite3.connect(path, isolation_level=None, timeout=30)
    db.execute("BEGIN EXCLUSIVE")
    started = time.monotonic()
    try:
        yield
    finally:
        time.sleep(max(0.0, LOCK_SECONDS - (time.monotonic() - started)))
        db.execute("ROLLBACK")
        db.close()


def _tracker_file(services: Services) -> Path:
    return Path(sqlite_file(normalise_database_url(services.env["MESO_TRACKER_URL"])))


FAULTS: dict[str, Callable[[Services], object]] = {
    "action server stopped": lambda s: stopped(s, ACTION_SERVER),
    "action server frozen": lambda s: frozen(s, ACTION_SERVER),
    "rasa stopped": lambda s: stopped(s, RASA),
    "rasa frozen": lambda s: frozen(s, RASA),
    "rasa's tracker database locked": lambda s: locked(_tracker_file(s)),
    API_DATABASE: lambda s: locked(Path(s.env["MESO_VAR_DIR"]) / "meso.db"),
}


def _open(api: httpx.Client) -> str:
    response = api.post("/api/v1/conversations", json={"consent": True})
    assert response.status_code == 201, response.text
    return response.json()["conversation_id"]


def _query(services: Services, sql: str, *params: object) -> list[tuple]:
    """Read the API's database directly."""
    db = sqlite3.connect(Path(services.env["MESO_VAR_DIR"]) / "meso.db")
    try:
        return db.execute(sql, params).fetchall()
    finally:
        db.close()


def _patient_rows(services: Services, cid: str) -> list[tuple[str, str | None, str | None]]:
    return _query(services, "SELECT text, status, red_flag FROM messages WHERE conversation_id = ? "
                  "AND role = 'patient' ORDER BY seq", cid)


def _patients(services: Services, cid: str) -> list[tuple[int, str]]:
    return _query(services, "SELECT id, status FROM messages WHERE conversation_id = ? "
                  "AND role = 'patient' ORDER BY seq", cid)


def _conversation_level(services: Services, cid: str) -> str | None:
    return _query(services, "SELECT red_flag_level FROM conversations WHERE id = ?", cid)[0][0]


def _tracker_turns(services: Services, cid: str) -> list[tuple[str | None, bool]]:
    """(message_id, answered) of every user event of Rasa's tracker, in order."""
    env = services.env
    response = httpx.get(f"{env['MESO_RASA_URL']}/conversations/{cid}/tracker",
                         params={"token": env["MESO_RASA_TOKEN"], "include_events": "ALL"}, timeout=30)
    response.raise_for_status()
    turns: list[tuple[str | None, bool]] = []
    for event in response.json()["events"]:
        if event["event"] == "user":
            turns.append((event.get("message_id"), False))
        elif event["event"] == "bot" and turns and event.get("text"):
            turns[-1] = (turns[-1][0], True)
    return turns


def _agree(api: httpx.Client, services: Services, cid: str) -> None:
    """Transcript, history and tracker tell the same turns."""
    patients = _patients(services, cid)
    turns = [t for t in _tracker_turns(services, cid) if t[0] and t[0].startswith("m")]
    ids = [t[0] for t in turns]
    assert len(ids) == len(set(ids)), ("a turn twice in the tracker", ids)
    answered_in_tracker = {t[0] for t in turns if t[1]}
    for row_id, status in patients:
        if status == "answered":
            assert f"m{row_id}" in ids, ("an answered turn missing from the tracker", row_id)
        assert (f"m{row_id}" in answered_in_tracker) <= (status == "answered"), (
            "the tracker has a reply the transcript lacks", row_id)
    history = api.get(f"/api/v1/conversations/{cid}/messages").json()["messages"]
    assert [m["role"] for m in history].count("patient") == len(patients)


Sent = list[tuple[str, str, httpx.Response, float]]


def _send(api: httpx.Client, cid: str) -> Sent:
    """Send the three messages under the fault; (kind, text, response, seconds) of each."""
    sent: Sent = []
    for kind, text in MESSAGES.items():
        started = time.monotonic()
        response = api.post(f"/api/v1/conversations/{cid}/messages", json={"text": text})
        sent.append((kind, text, response, time.monotonic() - started))
    return sent


def _stored(services: Services, cid: str, count: int) -> list[tuple[str, str | None, str | None]]:
    """The conversation's last ``count`` patient messages, once they are all written (the API's
    write-behind may still hold them just after its database was locked)."""
    deadline = time.monotonic() + 15
    while True:
        rows = _patient_rows(services, cid)
        if len(rows) >= count or time.monotonic() > deadline:
            return rows[-count:]
        time.sleep(0.5)


def _verify(services: Services, fault: str, when: str, cid: str, sent: Sent) -> None:
    stored = _stored(services, cid, len(sent))
    for (kind, text, response, seconds), row_stored in zip(sent, stored):
        row = {"fault": fault, "conversation": when, "message": kind, "status": response.status_code,
               "seconds": round(seconds, 2), "stored": row_stored[0] == text, "flagged": row_stored[2]}
        MATRIX.append(row)
        assert row_stored[0] == text, row  # nothing the patient sent is lost
        if kind == "plain":
            assert response.status_code == 503, row
            assert "If it is urgent, call" in response.json()["detail"], row
            assert row_stored[1:] == ("unanswered", None), row
            continue
        assert response.status_code == 200, row
        assert seconds < TIMEOUT + 1.0, row
        first = response.json()["messages"][0]
        assert first["red_flag"] == kind, row
        assert first["text"].startswith("Call" if kind == "emergency" else "Please call"), row
        assert row_stored[1:] == ("answered", kind), row
    assert _conversation_level(services, cid) == "crisis"


@pytest.mark.parametrize("fault", list(FAULTS))
def test_red_flags_get_the_urgent_reply_under_the_fault(
    fault: str, services: Services, api: httpx.Client
) -> None:
    before = _open(api)
    opened: list[str] = [before]
    with FAULTS[fault](services):  # type: ignore[attr-defined]
        sent = {"opened before": _send(api, before)}
        if fault == API_DATABASE:
            # No conversation can be created while the API's database refuses writes: the
            # opening says so, with the urgent pointer.
            refused = api.post("/api/v1/conversations", json={"consent": True})
            MATRIX.append({"fault": fault, "conversation": "opened during", "message": "opening",
                           "status": refused.status_code, "seconds": None, "stored": False,
                           "flagged": None})
            assert refused.status_code == 503 and "If it is urgent, call" in refused.json()["detail"]
        else:
            opened.append(_open(api))
            sent["opened during"] = _send(api, opened[1])
    for (when, messages), cid in zip(sent.items(), opened):
        _verify(services, fault, when, cid, messages)
    # The fault is over: the conversations go on.
    for cid in opened:
        deadline = time.monotonic() + 30
        while True:
            response = api.post(f"/api/v1/conversations/{cid}/messages",
                                json={"text": "what is mesotherapy?"})
            if response.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert response.status_code == 200, (fault, response.text)
        assert response.json()["messages"][0]["text"]
        _agree(api, services, cid)

"""The private services, for real: the action server and the meso channel refuse callers
without their secret, Rasa's `rest` channel is closed, and no secret is on any process's
command line (readable by every user of the machine: `ps`, /proc/<pid>/cmdline)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import httpx
import pytest

SECRET_KEYS = ("MESO_RASA_TOKEN", "MESO_ACTION_TOKEN", "MESO_TEST_KEY", "MESO_LINK_SECRET",
               "MESO_DATABASE_URL", "MESO_TRACKER_URL")


def _session_of(pid: str) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[3])  # after the name: state ppid pgrp session


def _stack_processes(stack: dict[str, str]) -> dict[int, bytes]:
    """Every process of the stack (each started in a session of its own, children included):
    pid -> its /proc cmdline."""
    leaders = {int(p) for p in stack["_MESO_PIDS"].split(",")}
    found: dict[int, bytes] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _session_of(entry) in leaders:
            try:
                found[int(entry)] = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                pass
    assert leaders <= set(found), "a process of the stack is not running"
    return found


def test_no_secret_is_on_any_command_line(stack: dict[str, str]) -> None:
    processes = _stack_processes(stack)
    values = [stack[k] for k in SECRET_KEYS if stack.get(k)]
    assert stack["MESO_RASA_TOKEN"] in values and stack["MESO_ACTION_TOKEN"] in values
    for pid, cmdline in processes.items():
        argv = cmdline.decode(errors="replace").split("\0")
        leaked = [k for k in SECRET_KEYS if stack.get(k) and stack[k].encode() in cmdline]
        assert not leaked, f"{leaked} on the command line of {pid}: {argv[:3]}"
        assert not any(a.startswith(("--auth-token", "--jwt-secret")) for a in argv), argv
    launched = b"\n".join(processes.values())
    assert b"bot.rasa_server" in launched and b"bot.action_server" in launched


def test_rasa_got_its_token_all_the_same(stack: dict[str, str]) -> None:
    """The launcher handed the token to Rasa in-process: its HTTP API needs it."""
    url = stack["MESO_RASA_URL"] + "/status"
    assert httpx.get(url, timeout=15).status_code == 401
    assert httpx.get(url, params={"token": "wrong"}, timeout=15).status_code == 401
    assert httpx.get(url, params={"token": stack["MESO_RASA_TOKEN"]}, timeout=15).status_code == 200


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}])
def test_the_action_server_refuses_a_call_without_the_secret(stack: dict[str, str],
                                                             headers: dict[str, str]) -> None:
    base = stack["MESO_ACTION_SERVER_URL"]
    call = {"next_action": "action_clinic_contact", "sender_id": "x", "version": "3.6.2",
            "domain": {}, "tracker": {"sender_id": "x", "slots": {}, "events": [],
                                      "latest_message": {}}}
    response = httpx.post(f"{base}/webhook", json=call, headers=headers, timeout=15)
    assert response.status_code == 401
    assert "events" not in response.text and "responses" not in response.text
    assert httpx.get(f"{base}/actions", headers=headers, timeout=15).status_code == 401
    assert httpx.get(f"{base}/health", timeout=15).status_code == 200  # readiness stays open


def test_the_action_server_serves_the_holder_of_the_secret(stack: dict[str, str]) -> None:
    response = httpx.get(stack["MESO_ACTION_SERVER_URL"] + "/actions", timeout=15,
                         headers={"Authorization": f"Bearer {stack['MESO_ACTION_TOKEN']}"})
    assert response.status_code == 200
    assert "action_answer_question" in {a["name"] for a in response.json()}


MESSAGE = {"message": "how much does a session cost?", "command": False}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}])
def test_the_meso_channel_refuses_a_caller_without_rasas_token(stack: dict[str, str],
                                                              headers: dict[str, str]) -> None:
    response = httpx.post(stack["MESO_RASA_URL"] + "/webhooks/meso/webhook", timeout=30,
                          headers=headers, json={"sender": secrets.token_urlsafe(32), **MESSAGE})
    assert response.status_code == 401


def test_rasa_reaches_the_locked_action_server(stack: dict[str, str]) -> None:
    """A knowledge answer comes from the action server: Rasa sent the secret it was given."""
    response = httpx.post(stack["MESO_RASA_URL"] + "/webhooks/meso/webhook", timeout=60,
                          headers={"Authorization": f"Bearer {stack['MESO_RASA_TOKEN']}"},
                          json={"sender": secrets.token_urlsafe(32), **MESSAGE})
    assert response.status_code == 200, response.text
    messages = response.json()["messages"]
    assert any((m.get("custom") or {}).get("sources") for m in messages), messages


def test_rasas_rest_channel_is_closed(stack: dict[str, str]) -> None:
    """Off unless MESO_RASA_REST_CHANNEL is true: it would take any sender and /intent{...}."""
    assert "MESO_RASA_REST_CHANNEL" not in stack
    response = httpx.post(stack["MESO_RASA_URL"] + "/webhooks/rest/webhook", timeout=30,
                          params={"token": stack["MESO_RASA_TOKEN"]},
                          json={"sender": "anyone", "message": '/inform{"x": 1}'})
    assert response.status_code == 404


def test_the_migrations_ran_once_as_their_own_step_and_the_api_never_runs_them(
        stack: dict[str, str]) -> None:
    """The stack ran ``api.cli migrate`` before the API (its log says so) and started the
    API with migrating at start-up off, as several workers must be started."""
    log = (Path(stack["MESO_VAR_DIR"]) / "log" / "api.log").read_text(errors="replace")
    first = log.index("The database is at the newest migration")  # once per start of the API
    assert "(it was at none)" in log[first:].splitlines()[0]
    api_pid = int(stack["_MESO_PIDS"].split(",")[2])
    environ = Path(f"/proc/{api_pid}/environ").read_bytes().split(b"\0")
    assert b"MESO_MIGRATE_ON_START=false" in environ

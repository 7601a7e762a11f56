"""A conversation through the public API with the real Rasa and action servers: what needs the
database, Rasa's tracker or a stopped process. The opening messages and gibberish or
out-of-scope questions are conversation tests (tests/conversations/consent.yml, out_of_scope.yml)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx

from ops.services import Services


def _start(api: httpx.Client) -> dict:
    response = api.post("/api/v1/conversations", json={"consent": True})
    assert response.status_code == 201, response.text
    return response.json()


def _say(api: httpx.Client, cid: str, text: str) -> list[dict]:
    response = api.post(f"/api/v1/conversations/{cid}/messages", json={"text": text})
    assert response.status_code == 200, response.text
    return response.json()["messages"]


def test_ready(api: httpx.Client) -> None:
    body = api.get("/readyz").json()
    assert body["status"] == "ok", body


def test_sourced_answer_follow_up_and_button(api: httpx.Client, stack: dict[str, str]) -> None:
    cid = _start(api)["conversation_id"]
    first = _say(api, cid, "how many sessions would I need?")
    assert first[0]["topic"] == "sessions" and first[0]["sources"]
    assert all({"id", "title", "url"} <= set(s) for s in first[0]["sources"])

    follow = _say(api, cid, "and what would that cost?")
    assert follow[0]["topic"] == "cost" and follow[0]["sources"]

    button = follow[0]["buttons"][0]
    clicked = _say(api, cid, button["payload"])
    assert clicked[0]["topic"] is not None and clicked[0]["sources"]

    db = sqlite3.connect(Path(stack["MESO_VAR_DIR"]) / "meso.db")
    rows = db.execute(
        "SELECT role, text, intent, button_title, status FROM messages WHERE conversation_id = ? ORDER BY seq",
        (cid,),
    ).fetchall()
    patient = [r for r in rows if r[0] == "patient"]
    assert [r[1] for r in patient] == [
        "how many sessions would I need?", "and what would that cost?", button["payload"]]
    assert patient[0][2] == "ask_sessions" and patient[2][3] == button["title"]
    assert all(r[4] == "answered" for r in patient)
    assert len([r for r in rows if r[0] == "assistant"]) >= 3


def test_typed_slash_command_is_read_as_words(api: httpx.Client, rasa: httpx.Client) -> None:
    cid = _start(api)["conversation_id"]
    replies = _say(api, cid, '/inform{"last_entry": "zzz-not-an-entry"}')
    assert replies, "the assistant still answers"
    tracker = rasa.get(f"/conversations/{cid}/tracker").json()
    assert tracker["latest_message"]["intent"]["name"] != "inform"
    assert tracker["slots"].get("last_entry") != "zzz-not-an-entry"


def test_action_server_down_gives_503_and_keeps_the_message(
    api: httpx.Client, stack: dict[str, str], services: Services
) -> None:
    cid = _start(api)["conversation_id"]
    services.stop_one(0)
    try:
        _action_server_down(api, stack, cid)
    finally:
        services.start_one(0)  # the session's other tests need it


def _action_server_down(api: httpx.Client, stack: dict[str, str], cid: str) -> None:
    response = api.post(f"/api/v1/conversations/{cid}/messages", json={"text": "does it hurt?"})
    assert response.status_code == 503
    assert response.json()["detail"]
    ready = api.get("/readyz")
    assert ready.status_code == 503 and ready.json()["checks"]["action_server"] != "ok"
    db = sqlite3.connect(Path(stack["MESO_VAR_DIR"]) / "meso.db")
    status = db.execute(
        "SELECT status FROM messages WHERE conversation_id = ? AND role = 'patient' ORDER BY seq DESC LIMIT 1",
        (cid,),
    ).fetchone()
    assert status == ("unanswered",)

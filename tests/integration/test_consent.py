"""Transcript consent through the real stack: without consent nothing is stored by the API,
the history comes from Rasa's tracker, and the purge erases Rasa's events; with consent the
history, ratings and retries use the API's record.

Runs first in this folder (the stack is shared; nothing here stops a process).
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta
from pathlib import Path

import httpx

from api.db import create_engine, create_sessionmaker, sqlite_file
from api.models import utcnow
from api.retention import PurgeResult, purge_unconsented
from api.settings import normalise_database_url
from api.tracker_store import TrackerStore


def _start(api: httpx.Client, consent: bool | None) -> dict:
    body = None if consent is None else {"consent": consent}
    response = api.post("/api/v1/conversations", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _say(api: httpx.Client, cid: str, text: str, **extra: str) -> list[dict]:
    response = api.post(f"/api/v1/conversations/{cid}/messages", json={"text": text, **extra})
    assert response.status_code == 200, response.text
    return response.json()["messages"]


def _history(api: httpx.Client, cid: str) -> httpx.Response:
    return api.get(f"/api/v1/conversations/{cid}/messages")


def _rows(stack: dict[str, str], sql: str, *params: object) -> list[tuple]:
    db = sqlite3.connect(Path(stack["MESO_VAR_DIR"]) / "meso.db")
    try:
        return db.execute(sql, params).fetchall()
    finally:
        db.close()


def _rasa_events(stack: dict[str, str], cid: str) -> int:
    path = sqlite_file(normalise_database_url(stack["MESO_TRACKER_URL"]))
    assert path is not None and path.exists()
    db = sqlite3.connect(path)
    try:
        row = db.execute("SELECT COUNT(*) FROM events WHERE sender_id = ?", (cid,)).fetchone()
        return int(row[0])
    finally:
        db.close()


def _purge_now(stack: dict[str, str]) -> PurgeResult:
    """Run the API's purge on the stack's databases as if every conversation had been idle."""

    async def run() -> PurgeResult:
        engine = create_engine(normalise_database_url(stack["MESO_DATABASE_URL"]))
        tracker = TrackerStore(stack["MESO_TRACKER_URL"])
        try:
            async with create_sessionmaker(engine)() as session:
                return await purge_unconsented(session, tracker, now=utcnow(), idle=timedelta(0))
        finally:
            await tracker.dispose()
            await engine.dispose()

    return asyncio.run(run())


def test_widget_config_comes_from_the_clinic_file(api: httpx.Client) -> None:
    body = api.get("/api/v1/widget/config").json()
    assert body["clinic"]["name"] == "Example Hair Clinic"
    assert body["transcript_idle_minutes"] == 30 and body["max_text_chars"] == 1000


def test_without_consent_nothing_is_stored_the_history_comes_from_rasa_and_the_purge_erases_it(
        api: httpx.Client, stack: dict[str, str]) -> None:
    opened = _start(api, None)
    cid = opened["conversation_id"]
    assert opened["consent"] is False
    privacy = [m["text"] for m in opened["messages"] if m["text"].startswith("Privacy")]
    assert len(privacy) == 1 and "not kept" in privacy[0], privacy
    button = opened["messages"][-1]["buttons"][-1]
    pressed = _say(api, cid, button["payload"])
    typed = _say(api, cid, "does it hurt?")
    assert pressed[0]["id"] is None and typed[0]["topic"] == "pain"

    assert _rows(stack, "SELECT COUNT(*) FROM messages WHERE conversation_id = ?", cid) == [(0,)]
    assert _rows(stack, "SELECT user_agent, red_flag_level, transcript_consent FROM conversations "
                        "WHERE id = ?", cid) == [(None, None, 0)]

    history = _history(api, cid)
    assert history.status_code == 200, history.text
    body = history.json()
    assert body["consent"] is False
    shown = [(m["role"], m["text"]) for m in body["messages"]]
    sent = [("assistant", m["text"]) for m in opened["messages"]]
    sent += [("patient", button["title"])] + [("assistant", m["text"]) for m in pressed]
    sent += [("patient", "does it hurt?")] + [("assistant", m["text"]) for m in typed]
    assert shown == sent
    assert body["messages"][-1]["sources"] == typed[-1]["sources"]

    assert _rasa_events(stack, cid) > 0, "Rasa keeps its working copy in the events table"
    result = _purge_now(stack)
    assert result.deleted >= 1
    assert _rasa_events(stack, cid) == 0
    assert _rows(stack, "SELECT COUNT(*) FROM conversations WHERE id = ?", cid) == [(0,)]
    assert _history(api, cid).status_code == 404
    gone = api.post(f"/api/v1/conversations/{cid}/messages", json={"text": "hello?"})
    assert gone.status_code == 404


def test_a_callback_request_outlives_the_purge_of_an_unconsented_chat(
        api: httpx.Client, stack: dict[str, str]) -> None:
    cid = _start(api, False)["conversation_id"]
    for text in ("/request_callback", "/affirm", "Sam Patient", "07700 900123", "no preference"):
        _say(api, cid, text)
    assert _rows(stack, "SELECT name, status FROM callback_requests WHERE conversation_id = ?",
                 cid) == [("Sam Patient", "open")]

    result = _purge_now(stack)

    assert result.expired >= 1
    assert _rasa_events(stack, cid) == 0
    [(expired_at, summary)] = _rows(
        stack, "SELECT expired_at, summary FROM conversations WHERE id = ?", cid)
    assert expired_at is not None and summary is None
    callbacks = "SELECT COUNT(*) FROM callback_requests WHERE conversation_id = ?"
    assert _rows(stack, callbacks, cid) == [(1,)]
    assert _history(api, cid).status_code == 404


def test_with_consent_history_feedback_and_retries_use_the_record(
        api: httpx.Client, stack: dict[str, str]) -> None:
    opened = _start(api, True)
    cid = opened["conversation_id"]
    privacy = [m["text"] for m in opened["messages"] if m["text"].startswith("Privacy")]
    assert len(privacy) == 1 and "keeps this chat" in privacy[0], privacy

    answer = _say(api, cid, "how many sessions would I need?", client_id="int-test-0001")
    again = _say(api, cid, "how many sessions would I need?", client_id="int-test-0001")
    assert again == answer and answer[0]["id"] is not None
    patients = _rows(
        stack, "SELECT COUNT(*) FROM messages WHERE conversation_id = ? AND role = 'patient'", cid)
    assert patients == [(1,)]

    rated = api.post(f"/api/v1/conversations/{cid}/feedback",
                     json={"message_id": answer[0]["id"], "rating": "up"})
    assert rated.status_code == 204
    assert _rows(stack, "SELECT feedback FROM messages WHERE conversation_id = ? AND seq = ?",
                 cid, int(answer[0]["id"])) == [("up",)]

    body = _history(api, cid).json()
    assert body["consent"] is True
    assert [m["text"] for m in body["messages"]] == (
        [m["text"] for m in opened["messages"]]
        + ["how many sessions would I need?"] + [m["text"] for m in answer])
    assert body["messages"][-len(answer)]["feedback"] == "up"

    assert _purge_now(stack) == PurgeResult(), "conversations with consent are never purged"
    assert _rasa_events(stack, cid) > 0

"""Red flags and guided decision support through the public API, with the real servers.

Runs before test_end_to_end.py, whose last test stops the action server.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx


def _start(api: httpx.Client) -> str:
    response = api.post("/api/v1/conversations", json={"consent": True})
    assert response.status_code == 201, response.text
    return response.json()["conversation_id"]


def _say(api: httpx.Client, cid: str, text: str) -> list[dict]:
    response = api.post(f"/api/v1/conversations/{cid}/messages", json={"text": text})
    assert response.status_code == 200, response.text
    return response.json()["messages"]


def _payloads(messages: list[dict]) -> list[str]:
    return [b["payload"] for m in messages for b in m.get("buttons") or []]


def _stored_level(stack: dict[str, str], cid: str) -> str | None:
    db = sqlite3.connect(Path(stack["MESO_VAR_DIR"]) / "meso.db")
    try:
        row = db.execute("SELECT red_flag_level FROM conversations WHERE id = ?", (cid,)).fetchone()
    finally:
        db.close()
    assert row is not None
    return row[0]


def test_emergency_reply_says_what_to_do_offers_nothing_else_and_flags(
        api: httpx.Client, stack: dict[str, str]) -> None:
    cid = _start(api)
    replies = _say(api, cid, "my lips r swelling up n i cant breath properly")
    assert replies[0]["red_flag"] == "emergency"
    first_sentence = replies[0]["text"].split(".")[0]
    assert "999" in first_sentence or "emergency" in first_sentence.lower(), replies[0]["text"]
    assert _payloads(replies) == [], "nothing else is offered with an emergency"
    assert _stored_level(stack, cid) == "emergency"


def test_crisis_gets_crisis_support_first(api: httpx.Client, stack: dict[str, str]) -> None:
    cid = _start(api)
    replies = _say(api, cid, "honestly i dont want to be here anymore")
    assert replies[0]["red_flag"] == "crisis"
    assert "116 123" in replies[0]["text"] or "988" in replies[0]["text"]
    assert _payloads(replies) == []
    assert _stored_level(stack, cid) == "crisis"


def test_a_question_about_a_symptom_is_answered_not_alarmed(api: httpx.Client, stack: dict[str, str]) -> None:
    cid = _start(api)
    replies = _say(api, cid, "is swelling a normal side effect?")
    assert all(m["red_flag"] is None for m in replies), replies
    assert replies[0]["topic"] == "side_effects" and replies[0]["sources"]
    assert _stored_level(stack, cid) is None


def test_red_flag_inside_the_checklist_interrupts_it_and_it_continues(
        api: httpx.Client, stack: dict[str, str]) -> None:
    cid = _start(api)
    consent = _say(api, cid, "/start_checklist")
    assert "/affirm" in _payloads(consent) and "/deny" in _payloads(consent)
    first = _say(api, cid, "/affirm")
    assert "/not_sure" in _payloads(first) and "/prefer_not_to_say" in _payloads(first)
    second = _say(api, cid, "/deny")
    question = second[-1]["text"]
    assert question != first[-1]["text"], "the next point is asked"

    alarm = _say(api, cid, "wait my throat feels really tight now")
    assert alarm[0]["red_flag"] == "emergency"
    assert _payloads(alarm) == []
    assert _stored_level(stack, cid) == "emergency"

    resumed = _say(api, cid, "/continue_form")
    assert resumed[-1]["text"] == question, "the checklist goes on where it stopped"


def test_summary_page_opens_for_the_holder_only(api: httpx.Client) -> None:
    cid = _start(api)
    _say(api, cid, "does it hurt?")
    replies = _say(api, cid, "/get_summary")
    urls = [m["summary_url"] for m in replies if m.get("summary_url")]
    assert urls, replies
    page = api.get(urls[0])
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert page.headers["cache-control"] == "no-store"
    other = _start(api)
    assert api.get(f"/api/v1/conversations/{other}/summary").status_code == 404


def test_callback_request_is_stored_for_staff(api: httpx.Client, stack: dict[str, str]) -> None:
    cid = _start(api)
    asked = _say(api, cid, "/request_callback")
    assert "/affirm" in _payloads(asked), "consent is asked before any detail"
    _say(api, cid, "/affirm")
    _say(api, cid, "Sam Patient")
    bad = _say(api, cid, "12")
    assert bad[-1]["text"], "a bad number is refused with a reason"
    _say(api, cid, "07700 900123")
    done = _say(api, cid, "no preference")
    assert done[-1]["text"]
    db = sqlite3.connect(Path(stack["MESO_VAR_DIR"]) / "meso.db")
    try:
        rows = db.execute("SELECT name, phone, status FROM callback_requests WHERE conversation_id = ?",
                          (cid,)).fetchall()
    finally:
        db.close()
    assert rows == [("Sam Patient", "07700 900123", "open")]


def test_answers_meant_for_a_guided_step_still_get_a_reply_outside_one(api: httpx.Client) -> None:
    cid = _start(api)
    for text in ("yes", "/continue_form", "stop", "/choose{\"choice\":\"cost\"}", "not sure"):
        replies = _say(api, cid, text)
        assert replies and replies[0]["text"], text

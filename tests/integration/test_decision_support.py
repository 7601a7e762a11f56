"""Red flags and guided decision support through the public API, with the real servers: what
needs the database or HTTP (the stored red-flag level, the summary page, the stored callback).
The conversations themselves are in tests/conversations/ (``python -m convtest``).

Runs before test_end_to_end.py, whose last test stops the action server.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import pytest


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


# What the replies say (every red-flag level, a symptom question answered and not flagged, a
# red flag inside the checklist and "continue") is in tests/conversations/red_flags.yml and
# crisis_in_guided_steps.yml. Here: the level the API stores for staff.
@pytest.mark.parametrize(("texts", "level"), [
    (["my lips r swelling up n i cant breath properly"], "emergency"),
    (["honestly i dont want to be here anymore"], "crisis"),
    (["is swelling a normal side effect?"], None),
    (["lets do the checklist", "yes", "no", "wait my throat feels really tight now", "continue"],
     "emergency"),
], ids=["emergency", "crisis", "symptom_question", "emergency_in_checklist"])
def test_red_flag_level_is_stored_for_staff(
        api: httpx.Client, stack: dict[str, str], texts: list[str], level: str | None) -> None:
    cid = _start(api)
    for text in texts:
        _say(api, cid, text)
    assert _stored_level(stack, cid) == level


def test_summary_page_opens_through_its_signed_link_only(api: httpx.Client) -> None:
    cid = _start(api)
    _say(api, cid, "does it hurt?")
    replies = _say(api, cid, "/get_summary")
    urls = [m["summary_url"] for m in replies if m.get("summary_url")]
    assert urls, replies
    page = api.get(urls[0])
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert page.headers["cache-control"] == "no-store"
    other = _start(api)
    forged = urls[0].replace(cid, other)
    assert api.get(forged).status_code == 404
    # The JSON document needs the conversation's token: the id alone opens nothing.
    assert api.get(f"/api/v1/conversations/{cid}/summary.json").status_code == 200
    assert api.get(f"/api/v1/conversations/{cid}/summary.json", auth=None).status_code == 404


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

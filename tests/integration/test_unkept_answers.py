"""Answers the patient asked not to keep, through the real stack: the questions are still
asked and the chat shows the tailored list and summary, but the API stores no record of them
and its stored summary (the printable page, staff's copy) leaves them out. With consent both
hold every answer."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import httpx

ANSWERS = ["/affirm"] + ["/deny"] * 10  # pregnant or breastfeeding: yes; the rest no
DETAILS = ['/choose{"choice":"top"}', '/choose{"choice":"1_to_5_years"}', '/choose{"choice":"minoxidil"}',
           "/deny", "/not_sure"]


def _start(api: httpx.Client, consent: bool) -> str:
    response = api.post("/api/v1/conversations", json={"consent": consent})
    assert response.status_code == 201, response.text
    return response.json()["conversation_id"]


def _say(api: httpx.Client, cid: str, text: str) -> list[dict]:
    response = api.post(f"/api/v1/conversations/{cid}/messages", json={"text": text})
    assert response.status_code == 200, response.text
    return response.json()["messages"]


def _stored(stack: dict[str, str], cid: str) -> tuple[dict | None, dict | None]:
    db = sqlite3.connect(Path(stack["MESO_VAR_DIR"]) / "meso.db")
    try:
        record, summary = db.execute("SELECT record, summary FROM conversations WHERE id = ?", (cid,)).fetchone()
    finally:
        db.close()
    return (json.loads(record) if record else None), (json.loads(summary) if summary else None)


def _walk(api: httpx.Client, cid: str, keep: str) -> str:
    """Checklist (keep = /affirm or /deny), the questions for the clinician, the summary; the
    summary's chat text."""
    _say(api, cid, "/decision_help")  # each command below is a button of the reply before it
    _say(api, cid, "/start_checklist")
    asked = _say(api, cid, keep)
    assert "(1 of 11)" in asked[-1]["text"], "the questions are asked, kept or not"
    for answer in ANSWERS:
        result = _say(api, cid, answer)
    assert "Pregnant or breastfeeding (you said yes)" in " ".join(m["text"] for m in result)
    _say(api, cid, "/describe_hair_loss")
    for answer in DETAILS:
        _say(api, cid, answer)
    [summary] = [m for m in _say(api, cid, "/get_summary") if m.get("summary_url")]
    return summary["text"]


def test_declined_answers_shape_the_chat_but_are_stored_nowhere(api: httpx.Client, stack: dict[str, str]) -> None:
    cid = _start(api, False)
    chat = _walk(api, cid, "/deny")
    assert "- Pregnant or breastfeeding: Yes" in chat and "- Where: Thinning on top" in chat
    assert "only in this chat" in chat
    record, summary = _stored(stack, cid)
    assert not record or all(v is None for v in record.values())
    text = json.dumps(summary)
    for answer in ("Pregnant or breastfeeding", "Thinning on top", "1 to 5 years", "Minoxidil", "You lean toward",
                   "Is anything in the mix unsafe while I am pregnant"):
        assert answer not in text, answer
    assert "Questions to ask the clinician" in text  # the summary itself is there, for the page


def test_kept_answers_are_in_the_record_and_the_stored_summary(api: httpx.Client, stack: dict[str, str]) -> None:
    cid = _start(api, True)
    chat = _walk(api, cid, "/affirm")
    assert "only in this chat" not in chat
    record, summary = _stored(stack, cid)
    assert record is not None
    assert record["check_pregnancy"] == "yes" and record["check_age"] == "no"
    assert record["hair_pattern"] == "top" and record["treatments_tried"] == ["minoxidil"]
    assert record["option_leaning"] == "not_sure"
    text = json.dumps(summary)
    assert "Pregnant or breastfeeding: Yes" in text and "Where: Thinning on top" in text
    assert [s["heading"] for s in summary["sections"]][:2] == ["Raise these first", "About your hair loss"]

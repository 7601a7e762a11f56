"""Consent holds everywhere in the staff console: no staff page or export shows the messages of
a conversation without transcript consent, Rasa's copy of them (the tracker) included; what
the patient agreed to keep on its own (here a callback request) is still shown.

The walk takes every staff route from the app's route table, so a route added later is
walked too: each GET (with the inbox's message filters and ``personal=1`` where they apply),
then each POST on the conversation (following its redirect), the erasure last. A route with a
path parameter the walk does not know fails until :data:`PARAMS` learns it.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_fakes import (
    CALLBACK_REQUEST,
    SUMMARY_DOC,
    Harness,
    answer_reply,
    default_reply,
    rasa_tracker_db,
)
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from sqlalchemy import update
from staff_fakes import StaffClient

from api.models import Conversation, Message

pytestmark = pytest.mark.anyio

# Words that exist only in what the patient did not agree to keep.
SAID = "quokkazanzibar"
"""Typed by the patient (in Rasa's tracker, and in the assistant's reply)."""
SLOT_VALUE = "wombatxylophone"
"""A slot value in Rasa's tracker."""
ENTITY_VALUE = "marmosetoboe"
"""An entity value in Rasa's tracker."""
RASA_DB_WORD = "capybaratuba"
"""In Rasa's own SQL tracker store (its ``events`` table)."""
ROW_TEXT = "narwhalbassoon"
"""A patient message row the API should never have stored (defence in depth)."""
ROW_ENTITY = "okapiharp"
ROW_TOPIC = "axolotlcello"
ROW_REPLY = "pangolinlute"
ROW_FLAG_NAME = "tapirkazoo"
ROW_HINT = "lemurtrumpet"
"""In a client hint (the browser) of the unconsented conversation."""
UNSEEN = (SAID, SLOT_VALUE, ENTITY_VALUE, RASA_DB_WORD, ROW_TEXT, ROW_ENTITY, ROW_TOPIC,
          ROW_REPLY, ROW_FLAG_NAME, ROW_HINT)

KEPT_SAID = "kookaburraviola"
"""Typed in a conversation with transcript consent (the walk's control: staff see it)."""
KEPT_SLOT = "dugongmarimba"

PARAM = re.compile(r"{([^}:]+)(?::[^}]*)?}")
PARAMS: dict[str, Callable[[dict[str, str]], str]] = {
    "conversation_id": lambda ids: ids["conversation"],
    "callback_id": lambda ids: ids["callback"],
    "user_id": lambda ids: ids["user"],
}
"""How the walk fills each path parameter (from the ids of the set-up)."""
FILTERED = {"/staff", "/staff/export.csv", "/staff/export.json"}
"""Routes taking the inbox's filters."""
MESSAGE_FILTERS: list[dict[str, str]] = [
    {"q": SAID},
    {"q": ROW_TEXT},
    {"q": ROW_REPLY},
    {"low_confidence": "1"},
    {"thumbs_down": "1"},
    {"topic": ROW_TOPIC},
]
"""Filters on the messages: the unconsented conversation must never match them."""
KNOWN_GETS = {
    "/staff",
    "/staff/conversations/{conversation_id}",
    "/staff/conversations/{conversation_id}/export.csv",
    "/staff/conversations/{conversation_id}/export.json",
    "/staff/conversations/{conversation_id}/story.yml",
    "/staff/conversations/{conversation_id}/conversation-test.yml",
    "/staff/export.csv",
    "/staff/export.json",
    "/staff/questions",
    "/staff/admin/audit",
    "/staff/admin/conversations/{conversation_id}/erase",
}
"""Routes the walk must find (so an empty or broken walk cannot pass)."""


def staff_routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path) under /staff, in the route table's order."""
    found = []
    for context in iter_route_contexts(app.routes):
        path = context.path or ""
        if path == "/staff" or path.startswith("/staff/"):
            found += [(m, path) for m in sorted(context.methods or ()) if m != "HEAD"]
    return found


def fill(path: str, ids: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in PARAMS:
            pytest.fail(f"{path}: the walk does not know the parameter {name!r}; add it to PARAMS")
        return PARAMS[name](ids)

    return PARAM.sub(one, path)


def body(response: httpx.Response) -> str:
    return response.text.lower()


def check(response: httpx.Response, what: str, ids: dict[str, str], query: dict[str, str],
          *, unlisted: bool = False) -> None:
    """Nothing of the unconsented transcript in ``response`` (a word given in the query may
    be echoed back); ``unlisted``: the conversation is not even named (a message filter)."""
    assert response.status_code < 500, f"{what}: {response.status_code}"
    text = body(response)
    echoed = " ".join(query.values()).lower()
    for word in UNSEEN:
        if word not in echoed:
            assert word not in text, f"{what} shows {word!r}"
    if unlisted:
        assert ids["conversation"].lower() not in text, f"{what} lists the conversation"


async def walk(h: Harness, staff: StaffClient, ids: dict[str, str]) -> dict[str, str]:
    """Visit every staff route for the conversation ``ids["conversation"]`` and check each
    answer; returns the bodies of the plain GETs by route path."""
    routes = staff_routes(h.app)
    gets = [path for method, path in routes if method == "GET"]
    assert KNOWN_GETS <= set(gets), KNOWN_GETS - set(gets)
    seen: dict[str, str] = {}
    for path in gets:
        url = fill(path, ids)
        variants = [({}, False), ({"personal": "1"}, False)]
        if path in FILTERED:
            variants += [({"callback": "open"}, False), *((q, True) for q in MESSAGE_FILTERS)]
        for query, unlisted in variants:
            response = await staff.client.get(url, params=query)
            check(response, f"GET {url}?{query}", ids, query, unlisted=unlisted)
            if not query:
                seen[path] = response.text
    # The actions on the conversation (each answers with a redirect to a page), erasure last.
    posts = [p for m, p in routes if m == "POST" and "{conversation_id}" in p]
    assert "/staff/conversations/{conversation_id}/notes" in posts
    for path in sorted(posts, key=lambda p: p.endswith("/erase")):
        url = fill(path, ids)
        response = await staff.post(url, {"tag": "walked", "text": "walked by the test"})
        check(response, f"POST {url}", ids, {})
        if response.status_code == 303:
            page = await staff.client.get(response.headers["location"])
            check(page, f"GET {response.headers['location']} after POST {url}", ids, {})
    # The audit log keeps the filters the walk used (the search text only as its length).
    used = {k: v for query in MESSAGE_FILTERS for k, v in query.items() if k != "q"}
    audit = await staff.client.get("/staff/admin/audit")
    check(audit, "the audit log after the walk", ids, used)
    return seen


def callback_reply(sender: str, message: str, command: bool) -> Any:
    """The bot stores a callback request or a summary when asked; anything else gets the
    usual answer, which repeats the patient's words."""
    if "summary" in message:
        return {
            "messages": [{"text": "Here is your summary.", "custom": {"summary": SUMMARY_DOC}}],
            "nlu": {"intent": "request_summary", "confidence": 0.95},
        }
    if "call me" in message:
        return {
            "messages": [{"text": "Thanks, the clinic will call you.",
                          "custom": {"callback": CALLBACK_REQUEST}}],
            "nlu": {"intent": "request_callback", "confidence": 0.95},
        }
    return default_reply(sender, message, command)


async def say(h: Harness, cid: str, text: str) -> None:
    response = await h.client.post(f"/api/v1/conversations/{cid}/messages", json={"text": text})
    assert response.status_code == 200, response.text


def remember_in_rasa(h: Harness, cid: str, said: str, slot: str) -> None:
    """Rasa's tracker of ``cid`` gains what a real one holds: a user message with an entity,
    slots and a form."""
    h.rasa.events.setdefault(cid, []).extend([
        {"event": "user", "text": f"my {said} hurts",
         "parse_data": {"intent": {"name": "report_symptom", "confidence": 0.4},
                        "entities": [{"entity": "body_part", "value": ENTITY_VALUE}]}},
        {"event": "action", "name": "callback_form"},
        {"event": "active_loop", "name": "callback_form"},
        {"event": "slot", "name": "callback_preferred_time", "value": slot},
        {"event": "slot", "name": "hair_concern", "value": f"{slot} worries"},
    ])


def fill_rasa_store(path: Path, cid: str) -> None:
    """Rasa's SQL tracker store, holding the unconsented conversation's events."""
    rasa_tracker_db(path, {})
    connection = sqlite3.connect(path)
    try:
        for i, data in enumerate([
            {"event": "user", "text": f"{SAID} {RASA_DB_WORD}"},
            {"event": "slot", "name": "callback_preferred_time", "value": RASA_DB_WORD},
        ]):
            connection.execute(
                "INSERT INTO events (sender_id, type_name, timestamp, data) VALUES (?, ?, ?, ?)",
                (cid, data["event"], 1_700_000_000.0 + i, json.dumps(data)),
            )
        connection.commit()
    finally:
        connection.close()


async def unconsented_with_callback(h: Harness) -> dict[str, str]:
    """A conversation without transcript consent, in the inbox because of its callback
    request, with the summary the patient kept; Rasa holds its words. Returns the walk's
    ids."""
    h.rasa.reply = callback_reply
    cid = await h.new_conversation(consent=False)
    await say(h, cid, f"does {SAID} hurt")
    await say(h, cid, "please call me")
    await say(h, cid, "my summary please")
    remember_in_rasa(h, cid, SAID, SLOT_VALUE)
    [callback] = h.rows("SELECT id FROM callback_requests WHERE conversation_id = ?", cid)
    [user] = h.rows("SELECT id FROM staff_users ORDER BY id LIMIT 1")
    assert h.messages(cid) == []  # the API kept none of it
    return {"conversation": cid, "callback": str(callback["id"]), "user": str(user["id"])}


async def add_stray_rows(h: Harness, cid: str) -> None:
    """Rows the API never writes without consent (a bug, a restore, a hand-made row): a
    fallback message with an entity and red-flag names, an answer rated down on a topic,
    and a client hint."""
    async with h.app.state.runtime.sessionmaker() as session:
        session.add_all([
            Message(conversation_id=cid, seq=1, role="patient", text=f"is {ROW_TEXT} normal",
                    intent="nlu_fallback", intent_confidence=0.2, status="answered",
                    entities=[{"entity": "body_part", "value": ROW_ENTITY}],
                    red_flag="same_day", red_flag_names=[ROW_FLAG_NAME]),
            Message(conversation_id=cid, seq=2, role="assistant", text=f"{ROW_REPLY} answer",
                    topic=ROW_TOPIC, feedback="down"),
        ])
        await session.execute(
            update(Conversation).where(Conversation.id == cid).values(
                user_agent=f"Mozilla/5.0 {ROW_HINT}", language="en-GB"
            )
        )
        await session.commit()


def assert_callback_shown(pages: dict[str, str], ids: dict[str, str]) -> None:
    """What the patient agreed to keep on its own (the callback request, the summary) is still
    there."""
    cid = ids["conversation"]
    assert cid in pages["/staff"]  # listed, because of the callback request
    transcript = pages["/staff/conversations/{conversation_id}"]
    assert "<dd>Ann Example</dd>" in transcript
    assert "No messages: the patient did not agree that the transcript be kept." in transcript
    assert "Consultation summary" in transcript
    summary = pages.get("/staff/conversations/{conversation_id}/summary")
    if summary is not None:  # the staff route to the summary, where there is one
        assert SUMMARY_DOC["title"] in summary
    document = json.loads(pages["/staff/conversations/{conversation_id}/export.json"])
    [conversation] = document["conversations"]
    assert conversation["messages"] == []
    [callback] = conversation["callback_requests"]
    assert callback["status"] == "open" and callback["phone"].endswith("58")
    everything = json.loads(pages["/staff/export.json"])
    assert cid in [c["id"] for c in everything["conversations"]]


async def test_no_staff_route_shows_rasas_copy_of_an_unconsented_conversation(
    h: Harness, admin_client: StaffClient, tracker_path: Path
) -> None:
    ids = await unconsented_with_callback(h)
    fill_rasa_store(tracker_path, ids["conversation"])
    # The control: a kept conversation's words do reach the story export the walk visits.
    kept = await h.new_conversation(consent=True)
    await say(h, kept, f"does {KEPT_SAID} hurt")
    remember_in_rasa(h, kept, KEPT_SAID, KEPT_SLOT)
    story = await admin_client.client.get(f"/staff/conversations/{kept}/story.yml")
    assert story.status_code == 200 and KEPT_SAID in story.text and KEPT_SLOT in story.text

    pages = await walk(h, admin_client, ids)

    assert_callback_shown(pages, ids)


async def test_no_staff_route_shows_message_rows_of_an_unconsented_conversation(
    h: Harness, admin_client: StaffClient
) -> None:
    ids = await unconsented_with_callback(h)
    await add_stray_rows(h, ids["conversation"])

    pages = await walk(h, admin_client, ids)

    assert_callback_shown(pages, ids)
    transcript = pages["/staff/conversations/{conversation_id}"]
    assert "<dd>en-GB</dd>" not in transcript  # no client hint either


async def test_the_story_export_refuses_without_transcript_consent_and_never_asks_rasa(
    h: Harness, reviewer_client: StaffClient
) -> None:
    ids = await unconsented_with_callback(h)
    cid = ids["conversation"]
    h.rasa.requests.clear()

    for name in ("story.yml", "conversation-test.yml"):
        response = await reviewer_client.client.get(f"/staff/conversations/{cid}/{name}")
        assert response.status_code == 404, name
        assert response.headers["content-type"].startswith("text/html")
        assert "content-disposition" not in response.headers
        assert "did not agree to keep the transcript" in response.text
        assert SAID not in response.text and SLOT_VALUE not in response.text

    assert [r for r in h.rasa.requests if "/tracker" in r.url.path] == []
    exports = h.rows("SELECT * FROM audit_log WHERE action = 'export'")
    assert exports == []


async def test_unconsented_messages_never_feed_questions_we_could_not_answer(
    h: Harness, reviewer_client: StaffClient
) -> None:
    ids = await unconsented_with_callback(h)
    await add_stray_rows(h, ids["conversation"])
    kept = await h.new_conversation(consent=True)
    h.rasa.reply = lambda sender, message, command: {
        **answer_reply(sender, message, command),
        "nlu": {"intent": "nlu_fallback", "confidence": 0.3},
    }
    await say(h, kept, "is the bassoon normal")

    html = (await reviewer_client.client.get("/staff/questions")).text

    assert "is the bassoon normal" in html and kept in html
    assert ROW_TEXT not in html and ids["conversation"] not in html
    [(detail,)] = h.rows(
        "SELECT detail FROM audit_log WHERE action = 'view_questions' ORDER BY id DESC LIMIT 1"
    )
    assert json.loads(detail)["messages"] == 1

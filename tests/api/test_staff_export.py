"""Exports: CSV formula neutralisation, CSV and JSON through the console (masking, admin-only
personal details, the inbox's filters, the audit log), the Rasa test story and the
conversation test (read back with the conversation-test runner's own reader)."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from api_fakes import COST_PAYLOAD, TOKEN, Harness, opening_reply
from staff_fakes import StaffClient

from api.models import CallbackRequest, Conversation, ConversationTag, Message
from api.models import StaffNote, StaffUser
from api.staff.export import (
    CSV_COLUMNS,
    neutralise,
    safe_filename,
    stories_from_events,
    story_yaml,
    to_csv,
)
from api.staff.templating import environment
from convtest import catalog, spec

pytestmark = pytest.mark.anyio

# Neutralisation (pure) ----------------------------------------------------------------------


@pytest.mark.parametrize("first", ["=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠"])
def test_every_dangerous_first_character_is_neutralised(first: str) -> None:
    cell = f"{first}HYPERLINK(\"http://evil.example\",\"x\")"
    assert neutralise(cell) == "'" + cell


@pytest.mark.parametrize("cell", [" =1+1", "   -2", "\n@SUM(A1)", " \t+cmd|' /C calc'!A0"])
def test_dangerous_characters_after_leading_whitespace_are_neutralised(cell: str) -> None:
    assert neutralise(cell) == "'" + cell


@pytest.mark.parametrize(
    "cell", ["", "How much is it?", "1+1=2", "email a@b.com", "'quoted", "0.9300", "5 - 6 weeks"]
)
def test_normal_text_is_untouched(cell: str) -> None:
    assert neutralise(cell) == cell


def test_the_csv_neutralises_every_cell_and_keeps_the_header() -> None:
    body, rows = to_csv([["=1+2", "-3", "@x", "plain", "+44 20"]])
    parsed = list(csv.reader(io.StringIO(body)))
    assert rows == 1
    assert parsed[0] == list(CSV_COLUMNS)
    assert parsed[1] == ["'=1+2", "'-3", "'@x", "plain", "'+44 20"]


def test_safe_filenames() -> None:
    assert safe_filename('conv"; rm -rf /', "csv") == "conv-rm--rf.csv"
    assert safe_filename("", "json") == "export.json"


# Rasa test story (pure) ---------------------------------------------------------------------


def _user(text: str | None, intent: str, entities: list[dict[str, Any]] | None = None) -> dict:
    return {
        "event": "user",
        "text": text,
        "parse_data": {"intent": {"name": intent, "confidence": 0.9}, "entities": entities or []},
    }


def _action(name: str) -> dict[str, Any]:
    return {"event": "action", "name": name}


OPENING: list[dict[str, Any]] = [
    _action("action_session_start"),
    {"event": "session_started"},
    _action("action_listen"),
    _user(
        '/start_conversation{"transcript_consent":"yes"}',
        "start_conversation",
        # Rasa gives a command's entities the position of its payload.
        [{"entity": "transcript_consent", "value": "yes", "start": 19, "end": 47}],
    ),
    _action("action_welcome"),
    {"event": "bot", "text": "Hello"},
    _action("action_listen"),
]


def test_story_steps_from_tracker_events() -> None:
    events = [
        *OPENING,
        _user("I'd like a call back, ann@example.com", "request_callback"),
        _action("callback_form"),
        {"event": "active_loop", "name": "callback_form"},
        {"event": "slot", "name": "requested_slot", "value": "callback_name"},
        _action("action_listen"),
        _user("Ann Example", "inform"),
        {"event": "slot", "name": "callback_name", "value": "Ann Example"},
        _action("callback_form"),
        {"event": "active_loop", "name": None},
        {"event": "slot", "name": "requested_slot", "value": None},
        _action("action_unlikely_intent"),
        {"event": "action", "name": None, "action_text": "end-to-end bot text"},
        {"event": "bot", "text": "Thanks"},
    ]
    [story] = stories_from_events("abcd1234", events, personal=False)
    assert story.name == "abcd1234"
    document = yaml.safe_load(story_yaml([story]))
    assert document["version"] == "3.1"
    assert document["stories"][0]["story"] == "abcd1234"
    assert document["stories"][0]["steps"] == [
        {
            "user": '/start_conversation{"transcript_consent":"yes"}\n',
            "intent": "start_conversation",
        },
        {"action": "action_welcome"},
        {"user": "I'd like a call back, a***@e***.com\n", "intent": "request_callback"},
        {"action": "callback_form"},
        {"active_loop": "callback_form"},
        {"slot_was_set": [{"requested_slot": "callback_name"}]},
        # The name given to the form is masked in the text and in the slot.
        {"user": "A***\n", "intent": "inform"},
        {"slot_was_set": [{"callback_name": "A***"}]},
        {"action": "callback_form"},
        {"active_loop": None},
        {"slot_was_set": [{"requested_slot": None}]},
    ]


def test_story_yaml_looks_like_the_suites_stories() -> None:
    [story] = stories_from_events("abcd1234", [*OPENING, _user("hiya", "greet")], personal=False)
    assert story_yaml([story]) == (
        'version: "3.1"\n'
        "stories:\n"
        "- story: abcd1234\n"
        "  steps:\n"
        "  - user: |\n"
        '      /start_conversation{"transcript_consent":"yes"}\n'
        "    intent: start_conversation\n"
        "  - action: action_welcome\n"
        "  - user: |\n"
        "      hiya\n"
        "    intent: greet\n"
    )


def test_personal_details_stay_in_a_story_when_asked_for() -> None:
    events = [*OPENING, _user("ring 07700 900123", "inform")]
    [story] = stories_from_events("abcd1234", events, personal=True)
    assert story.steps[-1] == {"user": "ring 07700 900123\n", "intent": "inform"}
    [masked] = stories_from_events("abcd1234", events, personal=False)
    assert masked.steps[-1] == {"user": "ring *** ** 23\n", "intent": "inform"}


def test_entities_are_annotated_or_listed() -> None:
    events = [
        *OPENING,
        _user(
            "is mesotherapy safe",
            "ask_safety",
            [{"entity": "treatment", "start": 3, "end": 14, "value": "mesotherapy"}],
        ),
        _user("meso therapy", "ask_safety",
              [{"entity": "treatment", "start": 0, "end": 12, "value": "mesotherapy"}]),
        _user("that one", "inform", [{"entity": "topic", "value": "cost"}]),
    ]
    [story] = stories_from_events("abcd1234", events, personal=False)
    assert story.steps[-3:] == [
        {"user": "is [mesotherapy](treatment) safe\n", "intent": "ask_safety"},
        {
            "user": '[meso therapy]{"entity": "treatment", "value": "mesotherapy"}\n',
            "intent": "ask_safety",
        },
        {"user": "that one\n", "intent": "inform", "entities": [{"topic": "cost"}]},
    ]


def test_one_story_per_session_and_none_without_user_messages() -> None:
    second = [_action("action_session_start"), {"event": "session_started"},
              {"event": "slot", "name": "transcript_consent", "value": "yes"},
              _action("action_listen"), _user("hello again", "greet"), _action("utter_greet")]
    stories = stories_from_events("abcd1234", [*OPENING, *second], personal=False)
    assert [s.name for s in stories] == ["abcd1234 session 1", "abcd1234 session 2"]
    assert stories[1].steps == [
        {"slot_was_set": [{"transcript_consent": "yes"}]},
        {"user": "hello again\n", "intent": "greet"},
        {"action": "utter_greet"},
    ]
    assert stories_from_events("abcd1234", [], personal=False) == []
    assert stories_from_events("abcd1234", OPENING[:3], personal=False) == []


# Through the console (async) -------------------------------------------------------------------------

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
PATIENT_TEXT = "=HYPERLINK(\"http://x\") I'm Ann Example, ring 07700 900123 or ann@example.com"


async def _store(h: Harness, *rows: Any) -> None:
    async with h.app.state.runtime.sessionmaker() as session:
        session.add_all(rows)
        await session.commit()


async def _conversation(h: Harness, cid: str, *, red_flag: str | None = None) -> str:
    """A kept conversation with a patient message holding personal details and a formula, an
    answer with sources and a thumbs down, a callback request, a tag and a note."""
    await _store(
        h,
        Conversation(id=cid, created_at=T0, last_activity_at=T0, red_flag_level=red_flag,
                     record={"contact_note": "text me on 07700 900123", "sure": {"yes": 3}}),
        Message(conversation_id=cid, seq=1, role="patient", text=PATIENT_TEXT, created_at=T0,
                intent="request_callback", intent_confidence=0.93, red_flag=red_flag),
        Message(conversation_id=cid, seq=2, role="assistant", text="-5 is not a price",
                created_at=T0 + timedelta(seconds=2), topic="cost", entry_id="cost-001",
                sources=[{"id": "nhs", "title": "Hair loss (NHS)"}, {"id": "c", "title": "Leaflet"}],
                feedback="down"),
        CallbackRequest(conversation_id=cid, name="Ann Example", phone="+44 20 7946 0958",
                        email="ann@example.com", preferred_time="mornings, Ann Example here",
                        consent_at=T0),
        ConversationTag(conversation_id=cid, tag="knowledge-gap", created_by="admin"),
        StaffNote(conversation_id=cid, author_name="Rita", text="Called ann@example.com"),
    )
    return cid


def _csv(response: httpx.Response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.text)))


def _audit(h: Harness) -> list[tuple[str, str | None, str | None, dict[str, Any]]]:
    return [
        (row["action"], row["target_type"], row["target_id"], json.loads(row["detail"]))
        for row in h.rows("SELECT * FROM audit_log WHERE action LIKE 'export%' ORDER BY id")
    ]


async def test_a_conversation_as_csv_masked_and_neutralised(
    h: Harness, reviewer_client: StaffClient
) -> None:
    cid = await _conversation(h, "conv-csv-0001")
    response = await reviewer_client.client.get(f"/staff/conversations/{cid}/export.csv")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == 'attachment; filename="conversation-conv-csv.csv"'
    assert response.headers["cache-control"] == "no-store"
    assert response.content.startswith(b"conversation_id,seq,")  # no byte-order mark
    header, patient, answer = _csv(response)
    assert header == list(CSV_COLUMNS)
    assert patient == [
        cid, "1", "2026-03-02T10:00:00Z", "patient",
        "'=HYPERLINK(\"http://x\") I'm A***, ring *** ** 23 or a***@e***.com",
        "", "request_callback", "0.9300", "", "", "", "", "",
    ]
    assert answer == [
        cid, "2", "2026-03-02T10:00:02Z", "assistant", "'-5 is not a price",
        "", "", "", "", "cost", "cost-001", "Hair loss (NHS); Leaflet", "down",
    ]
    assert _audit(h) == [
        ("export", "conversation", cid,
         {"format": "csv", "rows": 2, "conversations": 1, "personal": False}),
    ]


async def test_an_admin_gets_personal_details_only_when_asking(
    h: Harness, admin_client: StaffClient
) -> None:
    cid = await _conversation(h, "conv-adm-0001")
    masked = await admin_client.client.get(f"/staff/conversations/{cid}/export.csv")
    assert "07700 900123" not in masked.text
    full = await admin_client.client.get(f"/staff/conversations/{cid}/export.csv?personal=1")
    assert full.status_code == 200
    assert _csv(full)[1][4] == "'" + PATIENT_TEXT
    document = (await admin_client.client.get(
        f"/staff/conversations/{cid}/export.json", params={"personal": "1"}
    )).json()
    assert document["personal_details"] is True
    assert document["conversations"][0]["callback_requests"][0]["phone"] == "+44 20 7946 0958"
    assert [entry[3]["personal"] for entry in _audit(h)] == [False, True, True]


async def test_a_conversation_as_json_with_everything_masked(
    h: Harness, reviewer_client: StaffClient
) -> None:
    cid = await _conversation(h, "conv-json-001", red_flag="same_day")
    response = await reviewer_client.client.get(f"/staff/conversations/{cid}/export.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-disposition"] == 'attachment; filename="conversation-conv-jso.json"'
    document = response.json()
    assert document["personal_details"] is False
    assert document["scope"] == {"conversation": cid}
    [conversation] = document["conversations"]
    assert conversation["id"] == cid
    assert conversation["red_flag_level"] == "same_day"
    assert conversation["tags"] == ["knowledge-gap"]
    assert conversation["notes"] == [
        {"author": "Rita", "time_utc": conversation["notes"][0]["time_utc"],
         "text": "Called a***@e***.com"}
    ]
    assert conversation["record"] == {"contact_note": "text me on *** ** 23", "sure": {"yes": 3}}
    [callback] = conversation["callback_requests"]
    assert (callback["name"], callback["phone"], callback["email"], callback["preferred_time"]) == (
        "A***", "*** ** 58", "a***@e***.com", "mornings, A*** here"
    )
    assert callback["status"] == "open"
    assert [m["seq"] for m in conversation["messages"]] == [1, 2]
    assert conversation["messages"][0]["text"] == (
        "=HYPERLINK(\"http://x\") I'm A***, ring *** ** 23 or a***@e***.com"
    )
    assert conversation["messages"][1]["sources"][0]["title"] == "Hair loss (NHS)"
    assert "07700" not in response.text and "Ann Example" not in response.text


async def test_the_filtered_set_uses_the_inbox_filters(
    h: Harness, reviewer_client: StaffClient
) -> None:
    flagged = await _conversation(h, "conv-flag-001", red_flag="emergency")
    await _conversation(h, "conv-calm-001")
    response = await reviewer_client.client.get("/staff/export.csv?red_flag=flagged&page=3")
    assert response.status_code == 200
    assert re.fullmatch(
        r'attachment; filename="conversations-\d{8}-\d{6}\.csv"',
        response.headers["content-disposition"],
    )
    assert {row[0] for row in _csv(response)[1:]} == {flagged}
    document = (await reviewer_client.client.get("/staff/export.json?tag=knowledge-gap")).json()
    assert document["scope"] == {"filters": {"tag": "knowledge-gap"}}
    assert sorted(c["id"] for c in document["conversations"]) == ["conv-calm-001", flagged]
    assert _audit(h) == [
        ("export", None, None, {"filters": {"red_flag": "flagged"}, "format": "csv", "rows": 2,
                                "conversations": 1, "personal": False}),
        ("export", None, None, {"filters": {"tag": "knowledge-gap"}, "format": "json",
                                "rows": 2, "conversations": 2, "personal": False}),
    ]


async def test_search_text_is_not_written_to_the_audit_log(
    h: Harness, reviewer_client: StaffClient
) -> None:
    await _conversation(h, "conv-srch-001")
    response = await reviewer_client.client.get("/staff/export.csv", params={"q": "ann@example"})
    assert len(_csv(response)) == 3
    [(_, _, _, detail)] = _audit(h)
    assert detail["filters"] == {"search_chars": 11}
    assert "ann@example" not in json.dumps(detail)


async def test_a_conversation_as_a_rasa_test_story(
    h: Harness, reviewer_client: StaffClient
) -> None:
    cid = await h.new_conversation()
    said = await h.client.post(
        f"/api/v1/conversations/{cid}/messages", json={"text": "call me on 07700 900123"}
    )
    assert said.status_code == 200
    h.rasa.requests.clear()
    response = await reviewer_client.client.get(f"/staff/conversations/{cid}/story.yml")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/yaml; charset=utf-8"
    # A file name never ends in "-" (safe_filename), and a random id's 8th character may be one.
    stem = f"story-{cid[:8]}".rstrip("-")
    assert response.headers["content-disposition"] == f'attachment; filename="{stem}.yml"'
    document = yaml.safe_load(response.text)
    assert document["stories"][0]["story"] == cid[:8]
    assert [s for s in document["stories"][0]["steps"] if "user" in s][-1] == {
        "user": "call me on *** ** 23\n", "intent": "x"
    }
    [request] = h.rasa.requests
    assert request.url.path == f"/conversations/{cid}/tracker"
    assert request.url.params["token"] == TOKEN
    [(action, target_type, target_id, detail)] = _audit(h)
    assert (action, target_type, target_id) == ("export", "conversation", cid)
    assert detail == {"format": "story", "rows": 2, "stories": 1, "personal": False}


# Conversation test (through the console) --------------------------------------------------

CALLBACK_TEXT = "I'm Ann Example, ring 07700 900123 or ann@example.com"
COST_BUTTON = {"title": "What does it cost?", "payload": COST_PAYLOAD}
PAIN_REPLY = "Please ask a doctor today. Bleeding that does not stop needs care."
COST_REPLY = "A session costs 150 to 300 pounds in most clinics."


async def _kept_turns(h: Harness, cid: str) -> str:
    """A kept conversation: the opening, a typed question with a red flag, a button press
    answered with a summary link, and a message with personal details; a callback request."""
    at = iter(T0 + timedelta(seconds=n) for n in range(20))
    await _store(
        h,
        Conversation(id=cid, created_at=T0, last_activity_at=T0, red_flag_level="same_day"),
        Message(conversation_id=cid, seq=1, role="assistant", created_at=next(at),
                text="Hello! I answer general questions.", buttons=[COST_BUTTON]),
        Message(conversation_id=cid, seq=2, role="patient", created_at=next(at),
                text="  does it hurt, my scalp is bleeding ", intent="ask_pain",
                intent_confidence=0.87, red_flag="same_day"),
        Message(conversation_id=cid, seq=3, role="assistant", created_at=next(at),
                text=PAIN_REPLY,
                topic="pain", entry_id="pain-does-it-hurt",
                sources=[{"id": "critical-review", "title": "A review"}]),
        Message(conversation_id=cid, seq=4, role="assistant", created_at=next(at),
                text="Anything else?", buttons=[COST_BUTTON],
                sources=[{"id": "critical-review", "title": "A review"},
                         {"id": "hairloss-guide", "title": "A guide"}]),
        Message(conversation_id=cid, seq=5, role="patient", created_at=next(at),
                text=COST_PAYLOAD, button_title="What does it cost?", intent="ask_cost",
                intent_confidence=0.99),
        Message(conversation_id=cid, seq=6, role="assistant", created_at=next(at),
                text=COST_REPLY, topic="cost",
                entry_id="cost-per-session", sources=[{"id": "hairloss-guide", "title": "G"}],
                offers_summary=True),
        Message(conversation_id=cid, seq=7, role="patient", created_at=next(at),
                text=CALLBACK_TEXT, intent="request_callback", intent_confidence=0.15),
        Message(conversation_id=cid, seq=8, role="assistant", created_at=next(at),
                text="Thanks Ann Example, the clinic will call 07700 900123.",
                buttons=[{"title": "Call ann@example.com", "payload": "/affirm"}]),
        CallbackRequest(conversation_id=cid, name="Ann Example", phone="07700 900123",
                        consent_at=T0),
    )
    return cid


def _settled(drafted: dict[str, Any], confidence: float, reply: str) -> dict[str, Any]:
    """A step's drafted assertions (one mapping) less the two whose value is the draft's
    choice, checked here: a confidence margin under the one seen, a phrase of the reply."""
    drafted = dict(drafted)
    if "min_confidence" in drafted:
        assert drafted.pop("min_confidence") <= confidence
    assert all(phrase in reply for phrase in drafted.pop("text_contains"))
    return drafted


def _read_back(text: str, tmp_path: Path) -> list[spec.TestCase]:
    """The export read by the conversation-test runner's own reader, with no problem."""
    path = tmp_path / "tests" / "conversations" / "exported.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    cases, problems = spec.read_file(path, catalog.build())
    assert problems == []
    return cases


async def test_a_conversation_as_a_conversation_test(
    h: Harness, reviewer_client: StaffClient, tmp_path: Path
) -> None:
    cid = await _kept_turns(h, "conv-cvt-0001")
    response = await reviewer_client.client.get(f"/staff/conversations/{cid}/conversation-test.yml")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/yaml; charset=utf-8"
    assert response.headers["content-disposition"] == (
        'attachment; filename="conversation-conv-cvt.yml"'
    )
    assert response.headers["cache-control"] == "no-store"
    header = [line for line in response.text.splitlines() if line.startswith("#")]
    assert header[0].startswith("# Conversation test exported from conversation conv-cvt on ")
    assert "Review the drafted assertions before committing" in header[1]
    assert "Personal details are masked" in header[2]
    [case] = yaml.safe_load(response.text)["test_cases"]
    assert case["test_case"] == "conversation_conv-cvt"
    assert re.fullmatch(r"Exported from the staff console on \d{4}-\d{2}-\d{2}\.",
                        case["description"])
    assert case["tags"] == ["exported"]
    # The opening is no turn; each step replays the patient's words or press, in order.
    steps = case["steps"]
    assert [{k: v for k, v in step.items() if k != "assertions"} for step in steps] == [
        {"user": "does it hurt, my scalp is bleeding"},
        {"press": "What does it cost?"},
        {"user": "I'm A***, ring *** ** 23 or a***@e***.com"},
    ]
    drafted = [{k: v for a in step["assertions"] for k, v in a.items()} for step in steps]
    assert _settled(drafted[0], 0.87, PAIN_REPLY) == {
        "intent": "ask_pain", "red_flag": "same_day", "topic": "pain",
        "entry": "pain-does-it-hurt", "sources": ["critical-review", "hairloss-guide"],
        "buttons": ["What does it cost?"],
    }
    assert _settled(drafted[1], 0.99, COST_REPLY) == {
        "intent": "ask_cost", "red_flag": "none", "topic": "cost", "entry": "cost-per-session",
        "sources": ["hairloss-guide"], "no_buttons": True, "summary_link": True,
    }
    # Personal details masked in the patient's words and in the reply's text and buttons.
    assert _settled(drafted[2], 0.15, "Thanks A***, the clinic will call *** ** 23.") == {
        "intent": "request_callback", "red_flag": "none", "buttons": ["Call a***@e***.com"],
    }
    assert "07700" not in response.text and "Ann" not in response.text
    assert "example.com" not in response.text
    [read] = _read_back(response.text, tmp_path)
    assert [(step.kind, step.value) for step in read.steps] == [
        ("user", "does it hurt, my scalp is bleeding"),
        ("press", "What does it cost?"),
        ("user", "I'm A***, ring *** ** 23 or a***@e***.com"),
    ]
    assert (read.name, read.tags, read.consent) == ("conversation_conv-cvt", ["exported"], True)
    assert _audit(h) == [
        ("export", "conversation", cid, {"format": "convtest", "rows": 3, "personal": False}),
    ]


async def test_an_admin_gets_personal_details_in_a_conversation_test_only_when_asking(
    h: Harness, admin_client: StaffClient, tmp_path: Path
) -> None:
    cid = await _kept_turns(h, "conv-cvt-0002")
    url = f"/staff/conversations/{cid}/conversation-test.yml"
    masked = await admin_client.client.get(url)
    assert masked.status_code == 200
    assert "07700" not in masked.text and "ann@example.com" not in masked.text
    full = await admin_client.client.get(url, params={"personal": "1"})
    assert full.status_code == 200
    assert "Personal details are included" in full.text
    [case] = _read_back(full.text, tmp_path)
    assert case.steps[-1].value == CALLBACK_TEXT
    assert "Thanks Ann Example, the clinic will" in full.text
    assert "Call ann@example.com" in full.text
    assert [(entry[3]["format"], entry[3]["personal"]) for entry in _audit(h)] == [
        ("convtest", False), ("convtest", True),
    ]


REAL_IDS_REPLY = "Most people feel a few stings. Numbing cream helps."


def _real_ids_reply(sender: str, message: str, command: bool) -> dict[str, Any]:
    """The fake Rasa answering with ids of this checkout's knowledge base and domain."""
    if command and message.startswith("/start_conversation"):
        return opening_reply(sender, message, command)
    return {
        "messages": [{
            "text": REAL_IDS_REPLY,
            "custom": {"sources": [{"id": "inliber", "title": "A study"}], "topic": "pain",
                       "entry_id": "pain-numbing-and-sensitivity"},
        }],
        "nlu": {"intent": "ask_pain", "confidence": 0.91, "entities": []},
    }


async def test_a_conversation_held_through_the_api_exports_as_a_clean_conversation_test(
    h: Harness, reviewer_client: StaffClient, tmp_path: Path
) -> None:
    h.rasa.reply = _real_ids_reply
    cid = await h.new_conversation()
    for text in (COST_PAYLOAD, "is it painful, my email is ann@example.com"):
        said = await h.client.post(f"/api/v1/conversations/{cid}/messages", json={"text": text})
        assert said.status_code == 200, said.text
    h.rasa.requests.clear()
    response = await reviewer_client.client.get(f"/staff/conversations/{cid}/conversation-test.yml")
    assert response.status_code == 200
    assert response.headers["content-disposition"] == (
        f'attachment; filename="conversation-{cid[:8].rstrip("-")}.yml"'
    )
    [case] = _read_back(response.text, tmp_path)
    assert case.name == f"conversation_{cid[:8]}"
    assert [(step.kind, step.value) for step in case.steps] == [
        ("press", "What does it cost?"),
        ("user", "is it painful, my email is a***@e***.com"),
    ]
    drafted = {a.name: a.value for a in case.steps[1].assertions}
    assert _settled(drafted, 0.91, REAL_IDS_REPLY) == {
        "intent": ["ask_pain"], "red_flag": "none", "topic": "pain",
        "entry": "pain-numbing-and-sensitivity", "sources": ["inliber"], "no_buttons": True,
    }
    assert h.rasa.requests == []  # from the stored rows alone


async def test_no_conversation_test_without_a_kept_transcript(
    h: Harness, admin_client: StaffClient
) -> None:
    cid = await h.new_conversation(consent=False)
    said = await h.client.post(f"/api/v1/conversations/{cid}/messages", json={"text": "hi"})
    assert said.status_code == 200
    response = await admin_client.client.get(f"/staff/conversations/{cid}/conversation-test.yml")
    assert response.status_code == 404
    assert "content-disposition" not in response.headers
    assert "No conversation test for this conversation" in response.text
    assert "did not agree to keep the transcript" in response.text
    assert _audit(h) == []


async def test_nobody_signed_in_gets_no_conversation_test(h: Harness) -> None:
    cid = await _kept_turns(h, "conv-cvt-0003")
    response = await h.client.get(f"/staff/conversations/{cid}/conversation-test.yml")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/staff/login?next=")
    assert response.content == b""
    assert _audit(h) == []


REFUSALS: list[tuple[str, str, int, str]] = [
    # (who, url: {cid} is a stored conversation that Rasa knows nothing of, status, reason)
    # Personal details are for admins only.
    *[
        ("reviewer", url, 403, "for administrators")
        for url in (
            "/staff/conversations/{cid}/export.csv?personal=1",
            "/staff/conversations/{cid}/export.json?personal=on",
            "/staff/conversations/{cid}/story.yml?personal=1",
            "/staff/conversations/{cid}/conversation-test.yml?personal=yes",
            "/staff/export.csv?personal=1",
            "/staff/export.json?personal=true",
        )
    ],
    # Unusable values.
    ("admin", "/staff/conversations/{cid}/export.csv?personal=2", 422, "must be ticked"),
    ("admin", "/staff/conversations/{cid}/conversation-test.yml?personal=x", 422, "must be ticked"),
    ("admin", "/staff/export.json?personal=maybe", 422, "must be ticked"),
    ("reviewer", "/staff/export.csv?date_from=yesterday", 422, "written as YYYY-MM-DD"),
    ("admin", "/staff/export.json?red_flag=purple", 422, "unknown value"),
    # Nothing to export.
    *[
        ("reviewer", f"/staff/conversations/no-such-id/{name}", 404, "Conversation not found")
        for name in ("export.csv", "export.json", "story.yml", "conversation-test.yml")
    ],
    # Stored, but Rasa's events are gone (erased, or expired without transcript consent).
    ("admin", "/staff/conversations/{cid}/story.yml", 404, "No test story for this conversation"),
]


@pytest.mark.parametrize(("who", "url", "status", "reason"), REFUSALS)
async def test_refused_exports_answer_a_page_with_the_reason_and_export_nothing(
    h: Harness,
    admin_client: StaffClient,
    reviewer_client: StaffClient,
    who: str,
    url: str,
    status: int,
    reason: str,
) -> None:
    cid = await _conversation(h, "conv-refused1")
    client = admin_client if who == "admin" else reviewer_client
    response = await client.client.get(url.format(cid=cid))
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert "content-disposition" not in response.headers
    assert reason in response.text
    assert "Ann" not in response.text and "07700" not in response.text
    refused = [("export_refused", "conversation" if "{cid}" in url else None)] * (status == 403)
    assert [entry[:2] for entry in _audit(h)] == refused
    if status == 403:
        assert not h.rasa.requests  # the story was not even fetched


@pytest.mark.parametrize(
    "answer", [httpx.Response(500), httpx.Response(200, text="not json"),
               httpx.Response(200, json={"events": ["not an event"]})]
)
async def test_no_story_while_rasa_fails(
    h: Harness, reviewer_client: StaffClient, answer: httpx.Response
) -> None:
    cid = await _conversation(h, "conv-down-001")
    h.rasa.tracker_response = lambda sender: answer
    response = await reviewer_client.client.get(f"/staff/conversations/{cid}/story.yml")
    assert (response.status_code, response.headers["retry-after"]) == (503, "30")
    assert "not answering" in response.text
    assert _audit(h) == []


# The export form (a macro the inbox and transcript pages import) ----------------------------


def _form(role: str, base: str, query: dict[str, str], story: bool) -> str:
    template = environment().from_string(
        '{% from "staff/export_form.html" import export_form with context %}'
        "{{ export_form(base, query, story=story) }}"
    )
    user = StaffUser(username=role, display_name=role, role=role, password_hash="x")
    return template.render(user=user, base=base, query=query, story=story)


def test_the_export_form_carries_the_filters_and_offers_personal_details_to_admins() -> None:
    html = _form("admin", "/staff", {"red_flag": "flagged", "q": '"><b>', "page": "2"}, False)
    assert 'formaction="/staff/export.csv"' in html and 'formaction="/staff/export.json"' in html
    assert '<input type="hidden" name="red_flag" value="flagged">' in html
    assert 'value="&#34;&gt;&lt;b&gt;"' in html  # escaped
    assert 'name="page"' not in html and "story.yml" not in html
    assert "conversation-test.yml" not in html
    assert 'name="personal" value="1"' in html


def test_the_export_form_for_a_reviewer_and_a_conversation() -> None:
    html = _form("reviewer", "/staff/conversations/conv-1", {}, True)
    assert 'name="personal"' not in html
    assert "masked in exports" in html
    assert 'formaction="/staff/conversations/conv-1/story.yml"' in html
    assert 'formaction="/staff/conversations/conv-1/conversation-test.yml"' in html
    assert "Download conversation test" in html

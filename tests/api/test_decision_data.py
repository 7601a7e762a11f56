"""The bot's data blocks through the real app: red flags, the record, callbacks, summaries."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from api_fakes import Harness, messages_url, SummaryLinkTo
from sqlalchemy import text

pytestmark = pytest.mark.anyio

SUMMARY: dict[str, Any] = {
    "title": "Your questions for the consultation",
    "generated_at": "2026-11-29T10:15:00+01:00",
    "sections": [
        {
            "heading": "What matters most to you",
            "intro": None,
            "items": [{"text": "Cost", "sources": []}],
        }
    ],
    "footer": "General information only.",
}
CALLBACK: dict[str, Any] = {
    "name": "Ann Example",
    "phone": "+44 20 7946 0958",
    "email": None,
    "consent": True,
    "preferred_time": "after 5pm",
}


def replying(*messages: dict[str, Any]) -> Callable[[str, str, bool], dict[str, Any]]:
    """A fake Rasa reply with these messages (and a fixed NLU result)."""

    def reply(sender: str, message: str, command: bool) -> dict[str, Any]:
        return {"messages": list(messages), "nlu": {"intent": "report_symptom", "confidence": 0.9}}

    return reply


def conversation(h: Harness, conversation_id: str) -> Any:
    [row] = h.rows("SELECT * FROM conversations WHERE id = ?", conversation_id)
    return row


async def say(h: Harness, conversation_id: str, text: str = "hello") -> Any:
    response = await h.client.post(messages_url(conversation_id), json={"text": text})
    assert response.status_code == 200, response.text
    return response.json()["messages"]


# --- red flags -----------------------------------------------------------------------------


async def test_red_flag_marks_the_patient_message_the_conversation_and_the_reply(
    h: Harness,
) -> None:
    conversation_id = await h.new_conversation()
    assert conversation(h, conversation_id)["red_flag_level"] is None
    h.rasa.reply = replying(
        {
            "text": "Call 999 now.",
            "custom": {"red_flag": {"level": "emergency", "flags": ["breathing", "swelling"]}},
        },
        {"text": "I have flagged this conversation for the clinic's staff."},
    )

    shown = await say(h, conversation_id, "my throat feels tight")

    assert [m["red_flag"] for m in shown] == ["emergency", "emergency"]
    patient = h.messages(conversation_id)[2]
    assert (patient["role"], patient["red_flag"]) == ("patient", "emergency")
    assert json.loads(patient["red_flag_names"]) == ["breathing", "swelling"]
    assert all(m["red_flag"] is None for m in h.messages(conversation_id)[3:])
    row = conversation(h, conversation_id)
    assert row["red_flag_level"] == "emergency"
    assert row["red_flag_at"] is not None


async def test_the_conversation_keeps_the_most_severe_level_and_the_first_time(
    h: Harness,
) -> None:
    conversation_id = await h.new_conversation()
    levels = ["prompt", "emergency", "same_day", None, "prompt"]
    seen: list[tuple[str | None, str | None]] = []
    first_at = None
    for level in levels:
        custom = {"red_flag": {"level": level, "flags": []}} if level else {}
        h.rasa.reply = replying({"text": "reply", "custom": custom})
        shown = await say(h, conversation_id)
        row = conversation(h, conversation_id)
        first_at = first_at or row["red_flag_at"]
        assert row["red_flag_at"] == first_at
        seen.append((shown[0]["red_flag"], row["red_flag_level"]))

    assert seen == [
        ("prompt", "prompt"),
        ("emergency", "emergency"),
        ("same_day", "emergency"),
        (None, "emergency"),
        ("prompt", "emergency"),
    ]
    patients = [m for m in h.messages(conversation_id) if m["role"] == "patient"]
    assert [m["red_flag"] for m in patients] == levels
    h.rasa.reply = replying(
        {"text": "Please reach out now.", "custom": {"red_flag": {"level": "crisis"}}}
    )
    await say(h, conversation_id)
    assert conversation(h, conversation_id)["red_flag_level"] == "crisis"


async def test_several_flags_in_one_reply_give_the_most_severe(h: Harness) -> None:
    conversation_id = await h.new_conversation()
    h.rasa.reply = replying(
        {
            "text": "Crisis support first.",
            "custom": {"red_flag": {"level": "crisis", "flags": ["self_harm"]}},
        },
        {
            "text": "And about the swelling.",
            "custom": {"red_flag": {"level": "same_day", "flags": ["pus"]}},
        },
    )

    shown = await say(h, conversation_id)

    assert [m["red_flag"] for m in shown] == ["crisis", "crisis"]
    patient = h.messages(conversation_id)[2]
    assert patient["red_flag"] == "crisis"
    assert json.loads(patient["red_flag_names"]) == ["self_harm", "pus"]


async def test_the_red_flag_index_lets_staff_find_flagged_conversations(h: Harness) -> None:
    calm = await h.new_conversation()
    flagged = await h.new_conversation()
    await say(h, calm)
    h.rasa.reply = replying({"text": "Call now.", "custom": {"red_flag": {"level": "same_day"}}})
    await say(h, flagged)

    rows = h.rows("SELECT id FROM conversations WHERE red_flag_level IS NOT NULL")
    assert [r["id"] for r in rows] == [flagged]
    plan = h.query_plan("SELECT id FROM conversations WHERE red_flag_level = 'same_day'")
    assert "ix_conversations_red_flag_level" in plan


@pytest.mark.parametrize(
    "block",
    [
        {"level": "urgent", "flags": ["breathing"]},
        {"level": None},
        {"flags": ["breathing"]},
        "emergency",
        ["emergency"],
    ],
    ids=["unknown level", "null level", "no level", "a string", "a list"],
)
async def test_a_malformed_red_flag_is_ignored_with_a_warning(
    h: Harness, caplog: pytest.LogCaptureFixture, block: Any
) -> None:
    conversation_id = await h.new_conversation()
    h.rasa.outside_contract = True  # the bot never sends this: the API must refuse it
    h.rasa.reply = replying(
        {"text": "An answer.", "custom": {"red_flag": block, "topic": "pain"}}
    )
    caplog.set_level("WARNING", logger="api")

    shown = await say(h, conversation_id, "it hurts")

    assert shown[0]["text"] == "An answer." and shown[0]["topic"] == "pain"
    assert shown[0]["red_flag"] is None
    patient = h.messages(conversation_id)[2]
    assert (patient["text"], patient["status"]) == ("it hurts", "answered")
    assert patient["red_flag"] is None
    assert conversation(h, conversation_id)["red_flag_level"] is None
    assert any("red_flag block from the bot ignored" in r.getMessage() for r in caplog.records)


async def test_a_red_flag_with_nothing_to_show_gets_the_urgent_reply_all_the_same(
    h: Harness,
) -> None:
    """Rasa found a red flag but its reply failed (no text): the safety net sends the urgent
    reply for the bot's level, even where its own rules see nothing, and staff see the flag."""
    conversation_id = await h.new_conversation()
    h.rasa.reply = replying({"custom": {"red_flag": {"level": "emergency", "flags": ["fainting"]}}})

    response = await h.client.post(messages_url(conversation_id), json={"text": "I went down"})

    assert response.status_code == 200
    assert response.json()["messages"][0]["red_flag"] == "emergency"
    assert response.json()["messages"][0]["text"].startswith("Call your local emergency number")
    patient = [m for m in h.messages(conversation_id) if m["role"] == "patient"][-1]
    assert (patient["text"], patient["status"], patient["red_flag"]) == (
        "I went down",
        "answered",
        "emergency",
    )
    assert conversation(h, conversation_id)["red_flag_level"] == "emergency"


async def test_a_red_flag_in_the_opening_flags_only_the_conversation(h: Harness) -> None:
    h.rasa.reply = replying({"text": "Hello.", "custom": {"red_flag": {"level": "prompt"}}})

    response = await h.client.post("/api/v1/conversations", json={"consent": True})

    assert response.status_code == 201
    body = response.json()
    assert body["messages"][0]["red_flag"] == "prompt"
    assert conversation(h, body["conversation_id"])["red_flag_level"] == "prompt"


# --- record --------------------------------------------------------------------------------


async def test_record_blocks_merge_key_by_key_and_null_deletes(h: Harness) -> None:
    conversation_id = await h.new_conversation()
    assert json.loads(conversation(h, conversation_id)["record"]) == {}
    turns: list[dict[str, Any]] = [
        {"checklist_consent": True, "checklist": {"pregnant": False}},
        {"values": {"cost": 4, "needles": 2}},
        {"checklist": {"pregnant": False, "blood_thinners": True}, "sure": [True, False]},
        {"values": None, "cost_estimate": {"sessions": 6, "per_session": 150}},
        {"never_set": None},
    ]
    for update in turns:
        h.rasa.reply = replying({"text": "Noted.", "custom": {"record": update}})
        await say(h, conversation_id)

    assert json.loads(conversation(h, conversation_id)["record"]) == {
        "checklist_consent": True,
        "checklist": {"pregnant": False, "blood_thinners": True},
        "sure": [True, False],
        "cost_estimate": {"sessions": 6, "per_session": 150},
    }


async def test_several_record_blocks_in_one_reply_apply_in_order(h: Harness) -> None:
    conversation_id = await h.new_conversation()
    h.rasa.reply = replying(
        {"text": "One.", "custom": {"record": {"sure": [True], "values": {"speed": 1}}}},
        {"custom": {"record": {"sure": None, "values": {"speed": 5}}}},
    )

    shown = await say(h, conversation_id)

    assert [m["text"] for m in shown] == ["One."]
    assert json.loads(conversation(h, conversation_id)["record"]) == {"values": {"speed": 5}}


async def test_a_malformed_or_oversized_record_is_ignored(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    conversation_id = await h.new_conversation()
    h.rasa.outside_contract = True  # the bot never sends this: the API must refuse it
    h.rasa.reply = replying({"text": "ok", "custom": {"record": {"values": {"cost": 1}}}})
    await say(h, conversation_id)
    caplog.set_level("WARNING", logger="api")

    for bad in (["values"], {"": 1}, {"notes": "x" * 70_000}):
        h.rasa.reply = replying({"text": "ok", "custom": {"record": bad}})
        await say(h, conversation_id)
    # Each block fits, but together they would pass the limit.
    for key in ("a", "b"):
        h.rasa.reply = replying({"text": "ok", "custom": {"record": {key: "x" * 40_000}}})
        await say(h, conversation_id)

    record = json.loads(conversation(h, conversation_id)["record"])
    assert set(record) == {"values", "a"}
    logged = [r.getMessage() for r in caplog.records]
    assert sum("record block from the bot ignored" in m for m in logged) == 3
    assert sum("record update ignored" in m for m in logged) == 1
    assert not any("xxxx" in m for m in logged)


# --- callbacks -----------------------------------------------------------------------------


async def test_a_callback_request_is_stored_open_with_the_consent_time(h: Harness) -> None:
    conversation_id = await h.new_conversation()
    h.rasa.reply = replying(
        {"text": "Thank you, the clinic will call you.", "custom": {"callback": CALLBACK}}
    )

    shown = await say(h, conversation_id, "yes, call me")

    assert shown[0]["text"] == "Thank you, the clinic will call you."
    [row] = h.rows("SELECT * FROM callback_requests")
    assert row["conversation_id"] == conversation_id
    assert (row["name"], row["phone"], row["email"], row["preferred_time"]) == (
        "Ann Example",
        "+44 20 7946 0958",
        None,
        "after 5pm",
    )
    assert (row["status"], row["done_at"]) == ("open", None)
    assert row["consent_at"] is not None and row["created_at"] == row["consent_at"]
    plan = h.query_plan("SELECT id FROM callback_requests WHERE status = 'open'")
    assert "ix_callback_requests_status" in plan


async def test_an_invalid_callback_is_refused_and_the_patient_still_gets_the_reply(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    conversation_id = await h.new_conversation()
    bad = {**CALLBACK, "phone": "call 0800 123 456 now", "email": "not-an-address"}
    h.rasa.outside_contract = True  # the bot never sends this: the API must refuse it
    h.rasa.reply = replying(
        {"text": "Thank you.", "custom": {"callback": bad, "record": {"asked_callback": True}}}
    )
    caplog.set_level("DEBUG", logger="api")

    shown = await say(h, conversation_id, "my number is 0800 123 456")

    assert [m["text"] for m in shown] == ["Thank you."]
    assert h.rows("SELECT * FROM callback_requests") == []
    patient = h.messages(conversation_id)[2]
    assert (patient["text"], patient["status"]) == ("my number is 0800 123 456", "answered")
    assert json.loads(conversation(h, conversation_id)["record"]) == {"asked_callback": True}
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "callback block from the bot ignored" in logged
    for value in ("0800", "not-an-address", "Ann Example", "after 5pm"):
        assert value not in logged


@pytest.mark.parametrize(
    "changes",
    [{"consent": False}, {"phone": None}, {"name": ""}, {"consent": "yes"}],
    ids=["no consent", "no contact", "no name", "consent not a boolean"],
)
async def test_callbacks_the_api_would_not_accept_are_never_stored(
    h: Harness, changes: dict[str, Any]
) -> None:
    conversation_id = await h.new_conversation()
    h.rasa.outside_contract = True  # the bot never sends this: the API must refuse it
    h.rasa.reply = replying({"text": "ok", "custom": {"callback": {**CALLBACK, **changes}}})

    await say(h, conversation_id)

    assert h.rows("SELECT * FROM callback_requests") == []


async def test_deleting_a_conversation_deletes_its_callback_requests(h: Harness) -> None:
    conversation_id = await h.new_conversation()
    h.rasa.reply = replying({"text": "ok", "custom": {"callback": CALLBACK}})
    await say(h, conversation_id)
    async with h.app.state.runtime.engine.begin() as connection:
        await connection.execute(text("DELETE FROM conversations"))

    assert h.rows("SELECT * FROM callback_requests") == []
    assert h.rows("SELECT * FROM messages") == []


# --- summary -------------------------------------------------------------------------------


async def test_a_summary_is_stored_and_its_message_links_to_it(h: Harness) -> None:
    conversation_id = await h.new_conversation()
    h.rasa.reply = replying(
        {"text": "Here is your summary.", "custom": {"summary": SUMMARY}},
        {"text": "Anything else?"},
    )

    shown = await say(h, conversation_id, "summary please")

    assert shown[0]["summary_url"] == SummaryLinkTo(conversation_id)
    assert shown[1]["summary_url"] is None
    row = conversation(h, conversation_id)
    stored = json.loads(row["summary"])
    assert stored["title"] == SUMMARY["title"]
    assert stored["generated_at"] == "2026-11-29T09:15:00Z"  # kept in UTC
    assert stored["sections"][0]["items"] == [{"text": "Cost", "sources": [], "figures": []}]
    assert row["summary_at"] is not None


async def test_the_latest_summary_replaces_the_earlier_one(h: Harness) -> None:
    conversation_id = await h.new_conversation()
    for title in ("First", "Second"):
        h.rasa.reply = replying(
            {"text": "Summary.", "custom": {"summary": {**SUMMARY, "title": title}}}
        )
        await say(h, conversation_id)

    assert json.loads(conversation(h, conversation_id)["summary"])["title"] == "Second"


async def test_a_malformed_summary_is_ignored(h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    conversation_id = await h.new_conversation()
    caplog.set_level("WARNING", logger="api")
    h.rasa.outside_contract = True  # the bot never sends these: the API must refuse them
    for bad in (
        {**SUMMARY, "generated_at": "yesterday"},
        {**SUMMARY, "title": ""},
        {**SUMMARY, "sections": [{"heading": "H", "items": [{"sources": ["x"]}]}]},
        "a summary",
    ):
        h.rasa.reply = replying({"text": "Summary.", "custom": {"summary": bad}})
        shown = await say(h, conversation_id)
        assert shown[0]["summary_url"] is None

    assert conversation(h, conversation_id)["summary"] is None
    logged = [r.getMessage() for r in caplog.records]
    assert sum("summary block from the bot ignored" in m for m in logged) == 4


# --- messages with nothing to show ---------------------------------------------------------


async def test_a_data_only_message_is_processed_but_not_shown_or_stored(h: Harness) -> None:
    conversation_id = await h.new_conversation()
    h.rasa.reply = replying(
        {
            "custom": {
                "red_flag": {"level": "same_day", "flags": ["pus"]},
                "record": {"checklist": {"infection": True}},
                "callback": CALLBACK,
                "summary": SUMMARY,
            }
        },
        {
            "text": "Please contact the clinic today.",
            "buttons": [{"title": "OK", "payload": "/affirm"}],
        },
        {"text": "Anything else?"},
    )

    shown = await say(h, conversation_id)

    assert [m["text"] for m in shown] == ["Please contact the clinic today.", "Anything else?"]
    assert [m["red_flag"] for m in shown] == ["same_day", "same_day"]
    # The summary's own message is not shown: the next shown message offers it.
    assert shown[0]["summary_url"] == SummaryLinkTo(conversation_id)
    assert shown[1]["summary_url"] is None
    stored = h.messages(conversation_id)[2:]
    assert [(m["role"], m["text"]) for m in stored] == [
        ("patient", "hello"),
        ("assistant", "Please contact the clinic today."),
        ("assistant", "Anything else?"),
    ]
    row = conversation(h, conversation_id)
    assert row["red_flag_level"] == "same_day"
    assert json.loads(row["record"]) == {"checklist": {"infection": True}}
    assert json.loads(row["summary"])["title"] == SUMMARY["title"]
    assert len(h.rows("SELECT * FROM callback_requests")) == 1


async def test_a_trailing_data_only_summary_is_offered_by_the_last_shown_message(
    h: Harness,
) -> None:
    conversation_id = await h.new_conversation()
    h.rasa.reply = replying(
        {"text": "First."}, {"text": "Your summary is ready."}, {"custom": {"summary": SUMMARY}}
    )

    shown = await say(h, conversation_id)

    assert [m["summary_url"] for m in shown] == [
        None,
        SummaryLinkTo(conversation_id),
    ]


async def test_data_values_are_never_logged(h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG", logger="api")
    conversation_id = await h.new_conversation()
    h.rasa.reply = replying(
        {
            "text": "Thanks.",
            "custom": {
                "red_flag": {"level": "crisis", "flags": ["self_harm_secret"]},
                "record": {"values": "private-value-xyz"},
                "callback": {**CALLBACK, "name": "Private Name"},
                "summary": {**SUMMARY, "title": "Private title"},
            },
        }
    )
    await say(h, conversation_id)

    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("api"))
    secrets = ("self_harm_secret", "private-value-xyz", "Private Name", "7946", "Private title")
    for secret in secrets:
        assert secret not in logged
    assert conversation_id not in logged

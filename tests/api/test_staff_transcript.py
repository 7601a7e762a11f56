"""The transcript page for staff (GET /staff/conversations/{id}) and the actions on it: what
it shows of every turn, that everything is escaped, and that each action changes the record,
writes its audit entry, refuses unfit input and needs the CSRF token."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from html import escape
from typing import Any

import pytest
from api_fakes import CALLBACK_REQUEST, COST_PAYLOAD, SUMMARY_DOC, Harness
from staff_fakes import StaffClient

pytestmark = pytest.mark.anyio

SCRIPT = "<script>alert(1)</script>"


def page(conversation_id: str) -> str:
    return f"/staff/conversations/{conversation_id}"


def replying(
    *messages: dict[str, Any], intent: str = "report_symptom", confidence: float = 0.9
) -> Callable[[str, str, bool], dict[str, Any]]:
    def reply(sender: str, message: str, command: bool) -> dict[str, Any]:
        return {"messages": list(messages), "nlu": {"intent": intent, "confidence": confidence}}

    return reply


async def say(h: Harness, conversation_id: str, text: str) -> None:
    response = await h.client.post(
        f"/api/v1/conversations/{conversation_id}/messages", json={"text": text}
    )
    assert response.status_code == 200, response.text


def audit_log(h: Harness) -> list[tuple[str, str, str | None, dict[str, Any]]]:
    return [
        (row["action"], row["actor_name"], row["target_id"], json.loads(row["detail"]))
        for row in h.rows("SELECT * FROM audit_log ORDER BY id")
    ]


def staff_tables(h: Harness) -> dict[str, list[tuple[Any, ...]]]:
    """Everything an action could change (the audit log included)."""
    return {
        **h.snapshot(),
        **{
            table: [tuple(r) for r in h.rows(f"SELECT * FROM {table} ORDER BY 1")]
            for table in ("conversation_tags", "staff_notes", "audit_log")
        },
    }


def conversation(h: Harness, conversation_id: str) -> Any:
    [row] = h.rows("SELECT * FROM conversations WHERE id = ?", conversation_id)
    return row


# --- what the page shows --------------------------------------------------------------------


async def test_a_script_in_a_patient_message_is_shown_as_text(
    h: Harness, reviewer_client: StaffClient
) -> None:
    conversation_id = await h.new_conversation()
    await say(h, conversation_id, SCRIPT)

    response = await reviewer_client.client.get(page(conversation_id))

    assert response.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text
    assert "<script" not in response.text.lower()


async def test_every_turn_shows_its_time_intent_knowledge_sources_and_rating(
    h: Harness, reviewer_client: StaffClient
) -> None:
    conversation_id = await h.new_conversation()
    await say(h, conversation_id, COST_PAYLOAD)  # presses "What does it cost?"
    rated = await h.client.post(
        f"/api/v1/conversations/{conversation_id}/feedback",
        json={"message_id": "4", "rating": "down"},
    )
    assert rated.status_code == 204

    html = (await reviewer_client.client.get(page(conversation_id))).text

    turns = re.findall(r'<li class="turn turn--(\w+)[^"]*" id="turn-(\d+)"', html)
    assert turns == [("assistant", "1"), ("assistant", "2"), ("patient", "3"), ("assistant", "4")]
    assert "Pressed the button:</span> What does it cost?" in html
    assert '<span class="code">ask_cost</span> (confidence 0.93)' in html
    assert "treatment = mesotherapy" in html
    assert "<dt>Topic</dt><dd>cost</dd>" in html
    assert '<span class="code">cost-001</span> (score 0.87), certainty: moderate' in html
    assert '<a href="https://example.org/nhs" rel="noopener noreferrer">Hair loss (NHS)</a>' in html
    assert "<li>Clinic leaflet</li>" in html
    assert "What does it cost?; Does it hurt?" in html  # the buttons offered
    assert "Thumbs down</span>" in html
    assert re.search(r'<time datetime="[^"]+">\d+ \w{3} \d{4}, \d\d:\d\d:\d\d</time>', html)


async def test_red_flags_low_confidence_and_only_web_links(
    h: Harness, reviewer_client: StaffClient
) -> None:
    conversation_id = await h.new_conversation()
    h.rasa.reply = replying(
        {
            "text": "Please call 999 now.",
            "custom": {
                "red_flag": {"level": "emergency", "flags": ["breathing", "swelling"]},
                "sources": [{"id": "x", "title": "Trick", "url": "javascript:alert(1)"}],
            },
        },
        intent="nlu_fallback",
        confidence=0.41,
    )
    await say(h, conversation_id, "my throat is tight")

    html = (await reviewer_client.client.get(page(conversation_id))).text

    assert "<dt>Red flag</dt>" in html and "Emergency</span>: breathing, swelling" in html
    assert "(confidence 0.41)" in html and "Low confidence or fallback" in html
    assert "<li>Trick</li>" in html and "javascript:" not in html


async def test_the_header_shows_callbacks_record_summary_and_client_hints(
    h: Harness, reviewer_client: StaffClient
) -> None:
    response = await h.client.post(
        "/api/v1/conversations",
        json={"consent": True},
        headers={"User-Agent": "Mozilla/5.0 <b>", "Accept-Language": "en-GB,en;q=0.8"},
    )
    conversation_id = response.json()["conversation_id"]
    h.rasa.reply = replying(
        {
            "text": "Thank you.",
            "custom": {
                "callback": {**CALLBACK_REQUEST, "email": "ann@example.org",
                             "preferred_time": "after 5pm"},
                "record": {"check_pregnant": "no", "values": {"cost": "very important"}},
                "summary": SUMMARY_DOC,
            },
        }
    )
    await say(h, conversation_id, "please call me")

    html = (await reviewer_client.client.get(page(conversation_id))).text

    for shown in ("Ann Example", "+44 20 7946 0958", "ann@example.org", "after 5pm"):
        assert f"<dd>{shown}</dd>" in html
    assert "Open</span>" in html and "/callbacks/1/done" in html
    assert "<dt>Check pregnant</dt>\n  <dd>no</dd>" in html
    assert "<dt>Cost</dt>\n  <dd>very important</dd>" in html
    assert f'href="/staff/conversations/{conversation_id}/summary"' in html
    assert "<dd>en-GB</dd>" in html and "Mozilla/5.0 &lt;b&gt;" in html


async def test_without_transcript_consent_the_page_says_why_there_are_no_messages(
    h: Harness, reviewer_client: StaffClient
) -> None:
    conversation_id = await h.new_conversation(consent=False)
    h.rasa.reply = replying({"text": "Thanks.", "custom": {"callback": CALLBACK_REQUEST}})
    await say(h, conversation_id, "call me")

    html = (await reviewer_client.client.get(page(conversation_id))).text

    assert "No messages: the patient did not agree that the transcript be kept." in html
    assert "<dd>Ann Example</dd>" in html


async def test_an_unknown_conversation_is_a_404_page(
    h: Harness, reviewer_client: StaffClient
) -> None:
    response = await reviewer_client.client.get(page("no-such-id"))

    assert response.status_code == 404
    assert "Conversation not found" in response.text
    assert [a for a, *_ in audit_log(h) if a == "view_conversation"] == []


async def test_every_view_is_audited(h: Harness, reviewer_client: StaffClient) -> None:
    conversation_id = await h.new_conversation()

    for _ in range(2):
        assert (await reviewer_client.client.get(page(conversation_id))).status_code == 200

    views = [entry for entry in audit_log(h) if entry[0] == "view_conversation"]
    assert views == [("view_conversation", "reviewer", conversation_id, {})] * 2


async def test_only_admins_see_the_erase_link(
    h: Harness, admin_client: StaffClient, reviewer_client: StaffClient
) -> None:
    conversation_id = await h.new_conversation()
    erase = f'href="/staff/admin/conversations/{conversation_id}/erase"'

    assert erase in (await admin_client.client.get(page(conversation_id))).text
    assert erase not in (await reviewer_client.client.get(page(conversation_id))).text


# --- actions --------------------------------------------------------------------------------


async def act(staff: StaffClient, url: str, **data: str) -> str:
    """POST an action; it must redirect to the transcript; return the notice shown there."""
    response = await staff.post(url, data)
    assert response.status_code == 303, response.text
    target = response.headers["location"]
    shown = await staff.client.get(target)
    notice = re.search(r'<div class="flash" role="status">(.*?)</div>', shown.text)
    assert notice, "no notice after the action"
    return notice.group(1)


async def test_a_reviewer_tags_notes_reviews_and_flags_and_each_step_is_audited(
    h: Harness, reviewer_client: StaffClient
) -> None:
    cid = await h.new_conversation()
    url = page(cid)

    assert await act(reviewer_client, f"{url}/tags", tag="  Knowledge   GAP ") == "Tag added."
    assert await act(reviewer_client, f"{url}/tags", tag="knowledge gap") == (
        "That tag was already there."
    )
    assert await act(reviewer_client, f"{url}/tags", tag="call_back-2") == "Tag added."
    tags = h.rows("SELECT * FROM conversation_tags ORDER BY tag")
    assert [(r["tag"], r["created_by"]) for r in tags] == [
        ("call_back-2", "Reviewer"),
        ("knowledge gap", "Reviewer"),
    ]
    assert await act(reviewer_client, f"{url}/tags/remove", tag="call_back-2") == "Tag removed."
    assert [r["tag"] for r in h.rows("SELECT tag FROM conversation_tags")] == ["knowledge gap"]

    note = "Called back <b>twice</b>.\nNo answer."
    assert await act(reviewer_client, f"{url}/notes", text=note) == "Note added."
    [row] = h.rows("SELECT * FROM staff_notes")
    assert (row["conversation_id"], row["author_name"], row["text"]) == (cid, "Reviewer", note)
    html = (await reviewer_client.client.get(url)).text
    assert "Called back &lt;b&gt;twice&lt;/b&gt;.\nNo answer." in html

    assert await act(reviewer_client, f"{url}/review") == "Marked as reviewed."
    assert conversation(h, cid)["reviewed_by"] == "Reviewer"
    assert conversation(h, cid)["reviewed_at"] is not None
    assert await act(reviewer_client, f"{url}/flag") == "Flagged for attention."
    assert conversation(h, cid)["staff_flag"] == 1
    assert await act(reviewer_client, f"{url}/unflag") == "Flag removed."
    assert await act(reviewer_client, f"{url}/unreview") == "Marked as not reviewed."
    row = conversation(h, cid)
    assert (row["reviewed_at"], row["reviewed_by"], row["staff_flag"]) == (None, None, 0)

    changes = [e for e in audit_log(h) if e[2] == cid and e[0] != "view_conversation"]
    note_id = h.rows("SELECT id FROM staff_notes")[0]["id"]
    assert changes == [
        ("tag_add", "reviewer", cid, {"tag": "knowledge gap"}),
        ("tag_add", "reviewer", cid, {"tag": "call_back-2"}),
        ("tag_remove", "reviewer", cid, {"tag": "call_back-2"}),
        ("note_add", "reviewer", cid, {"note_id": note_id, "length": len(note)}),
        ("review", "reviewer", cid, {}),
        ("flag", "reviewer", cid, {}),
        ("unflag", "reviewer", cid, {}),
        ("unreview", "reviewer", cid, {}),
    ]


async def test_marking_a_callback_request_done(h: Harness, reviewer_client: StaffClient) -> None:
    cid = await h.new_conversation()
    other = await h.new_conversation()
    h.rasa.reply = replying({"text": "Thanks.", "custom": {"callback": CALLBACK_REQUEST}})
    await say(h, cid, "call me")
    await say(h, other, "call me too")
    [mine] = h.rows("SELECT id FROM callback_requests WHERE conversation_id = ?", cid)
    [theirs] = h.rows("SELECT id FROM callback_requests WHERE conversation_id = ?", other)

    wrong = await reviewer_client.post(f"{page(cid)}/callbacks/{theirs['id']}/done")
    assert wrong.status_code == 404
    assert (await reviewer_client.post(f"{page(cid)}/callbacks/x/done")).status_code == 404
    done = await act(reviewer_client, f"{page(cid)}/callbacks/{mine['id']}/done")
    again = await act(reviewer_client, f"{page(cid)}/callbacks/{mine['id']}/done")

    assert (done, again) == (
        "Callback request marked done.",
        "That callback request was already done.",
    )
    rows = {r["id"]: r for r in h.rows("SELECT * FROM callback_requests")}
    assert (rows[mine["id"]]["status"], rows[mine["id"]]["done_by"]) == ("done", "Reviewer")
    assert rows[mine["id"]]["done_at"] is not None
    assert rows[theirs["id"]]["status"] == "open"
    assert [e for e in audit_log(h) if e[0] == "callback_done"] == [
        ("callback_done", "reviewer", cid, {"callback_id": mine["id"]})
    ]
    html = (await reviewer_client.client.get(page(cid))).text
    assert "/done" not in html and "by Reviewer" in html


@pytest.mark.parametrize(
    ("action", "data", "reason"),
    [
        ("tags", {"tag": ""}, "Write a tag"),
        ("tags", {"tag": "<script>"}, "only the letters a to z, digits"),
        ("tags", {"tag": "é" * 3 + "!"}, "only the letters a to z, digits"),
        ("tags", {"tag": "x" * 65}, "at most 64 characters"),
        ("notes", {"text": "   \n "}, "cannot be empty"),
        ("notes", {"text": "x" * 2001}, "at most 2000 characters"),
    ],
)
async def test_unfit_tags_and_notes_are_refused_and_nothing_changes(
    h: Harness, reviewer_client: StaffClient, action: str, data: dict[str, str], reason: str
) -> None:
    cid = await h.new_conversation()
    before = staff_tables(h)

    response = await reviewer_client.post(f"{page(cid)}/{action}", data)

    assert response.status_code == 422
    assert "Nothing was changed" in response.text and reason in response.text
    after = staff_tables(h)
    assert after["audit_log"][len(before["audit_log"]):] == [
        tuple(r) for r in h.rows("SELECT * FROM audit_log WHERE action = 'view_conversation'")
    ]
    assert {k: v for k, v in after.items() if k != "audit_log"} == {
        k: v for k, v in before.items() if k != "audit_log"
    }
    kept = data.get("tag") or data.get("text") or ""
    assert kept.strip() == "" or escape(kept[:64]) in response.text  # kept, to correct


@pytest.mark.parametrize(
    ("action", "data"),
    [
        ("tags", {"tag": "ok"}),
        ("tags/remove", {"tag": "ok"}),
        ("notes", {"text": "hello"}),
        ("review", {}),
        ("unreview", {}),
        ("flag", {}),
        ("unflag", {}),
        ("callbacks/1/done", {}),
    ],
)
async def test_an_action_without_the_csrf_token_is_refused_and_changes_nothing(
    h: Harness, reviewer_client: StaffClient, action: str, data: dict[str, str]
) -> None:
    cid = await h.new_conversation()
    h.rasa.reply = replying({"text": "Thanks.", "custom": {"callback": CALLBACK_REQUEST}})
    await say(h, cid, "call me")
    before = staff_tables(h)

    missing = await reviewer_client.client.post(f"{page(cid)}/{action}", data=data)
    wrong = await reviewer_client.client.post(
        f"{page(cid)}/{action}", data={**data, "csrf_token": "forged"}
    )

    assert (missing.status_code, wrong.status_code) == (403, 403)
    assert staff_tables(h) == before


async def test_actions_on_an_unknown_conversation_are_404(
    h: Harness, reviewer_client: StaffClient
) -> None:
    before = staff_tables(h)

    response = await reviewer_client.post(f"{page('no-such-id')}/tags", {"tag": "x"})

    assert response.status_code == 404
    assert staff_tables(h) == before

"""The public chat routes, through the real app, a real SQLite file and a fake Rasa."""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_fakes import (
    COST_PAYLOAD,
    PAIN_PAYLOAD,
    Harness,
    default_reply,
    messages_url,
    sent,
    stored_time,
)
from sqlalchemy.ext.asyncio import create_async_engine

from api.db import create_sessionmaker
from api.schemas import UNAVAILABLE_DETAIL
from api.settings import Settings
from api.sqlite_driver import GatedConnection

pytestmark = pytest.mark.anyio

URL_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{43,}$")


# --- creating a conversation -------------------------------------------------------------


async def test_create_returns_201_secret_id_and_stores_opening_messages(h: Harness) -> None:
    response = await h.client.post(
        "/api/v1/conversations",
        json={"consent": True},
        headers={"User-Agent": "TestBrowser/1.0", "Accept-Language": "en-GB,en;q=0.8"},
    )

    assert response.status_code == 201
    body = response.json()
    conversation_id = body["conversation_id"]
    assert URL_SAFE_ID.fullmatch(conversation_id)
    assert body["consent"] is True
    assert [sent(call) for call in h.rasa.calls] == [
        {
            "sender": conversation_id,
            "message": '/start_conversation{"transcript_consent":"yes"}',
            "command": True,
        }
    ]
    assert [m["text"] for m in body["messages"]] == [
        "Hello! I answer general questions about mesotherapy for hair loss.",
        "I am not a doctor. What would you like to know?",
    ]
    assert body["messages"][1]["buttons"] == [
        {"title": "What does it cost?", "payload": COST_PAYLOAD},
        {"title": "Does it hurt?", "payload": PAIN_PAYLOAD},
    ]
    assert body["messages"][0] == {
        "id": "1",
        "role": "assistant",
        "text": body["messages"][0]["text"],
        "buttons": [],
        "sources": [],
        "topic": None,
        "entry": None,
        "red_flag": None,
        "summary_url": None,
        "figures": [],
        "feedback": None,
    }

    [conversation] = h.rows("SELECT * FROM conversations")
    assert conversation["id"] == conversation_id
    assert conversation["user_agent"] == "TestBrowser/1.0"
    assert conversation["language"] == "en-GB"
    assert "203.0.113.7" not in json.dumps(
        [tuple(r) for r in h.rows("SELECT * FROM conversations")], default=str
    )
    stored = h.messages(conversation_id)
    assert [(m["seq"], m["role"], m["text"]) for m in stored] == [
        (1, "assistant", body["messages"][0]["text"]),
        (2, "assistant", body["messages"][1]["text"]),
    ]
    assert json.loads(stored[1]["buttons"]) == body["messages"][1]["buttons"]


async def test_without_consent_or_body_nothing_of_the_transcript_is_stored(h: Harness) -> None:
    for kwargs in ({}, {"json": {}}, {"json": {"consent": False}}):
        response = await h.client.post(
            "/api/v1/conversations",
            headers={"User-Agent": "TestBrowser/1.0", "Accept-Language": "en-GB"},
            **kwargs,
        )
        assert response.status_code == 201
        body = response.json()
        assert body["consent"] is False
        assert h.rasa.calls[-1]["message"] == '/start_conversation{"transcript_consent":"no"}'
        assert [m["text"] for m in body["messages"]][0].startswith("Hello!")
        assert all(m["id"] is None for m in body["messages"])

    rows = h.rows("SELECT * FROM conversations")
    assert len(rows) == 3
    for row in rows:
        assert row["transcript_consent"] == 0 and row["consent_at"] is None
        assert (row["user_agent"], row["language"], row["origin"]) == (None, None, None)
    assert h.rows("SELECT * FROM messages") == []


@pytest.mark.parametrize("consent", ["yes", 1, None, [True]])
async def test_consent_must_be_a_boolean(h: Harness, consent: Any) -> None:
    response = await h.client.post("/api/v1/conversations", json={"consent": consent})

    assert response.status_code == 422
    assert response.json() == {"detail": 'The field "consent" must be true or false.'}
    assert h.rows("SELECT * FROM conversations") == []
    assert h.rasa.calls == []


async def test_each_conversation_gets_a_fresh_id_and_client_ids_are_ignored(h: Harness) -> None:
    chosen = "A" * 43
    first = await h.client.post("/api/v1/conversations", json={"conversation_id": chosen})
    second = await h.client.post("/api/v1/conversations")

    ids = {first.json()["conversation_id"], second.json()["conversation_id"]}
    assert len(ids) == 2 and chosen not in ids
    assert {row["id"] for row in h.rows("SELECT id FROM conversations")} == ids


def unavailable(h: Harness) -> dict[str, str]:
    """A 503's body: the usual text, then what to do if it is urgent (the clinic's numbers, or
    the domain's defaults)."""
    return {"detail": h.app.state.runtime.safety_net.unavailable(UNAVAILABLE_DETAIL)}


async def test_every_503_says_what_to_do_if_it_is_urgent(h: Harness) -> None:
    detail = unavailable(h)["detail"]
    assert detail.startswith(UNAVAILABLE_DETAIL)
    assert "999" in detail and "116 123" in detail  # the domain's default numbers


async def test_opening_works_when_rasa_is_down_and_a_red_flag_gets_the_urgent_reply(
    h: Harness,
) -> None:
    def down(sender: str, message: str, command: bool) -> Any:
        raise httpx.ConnectError("connection refused")

    h.rasa.reply = down
    response = await h.client.post("/api/v1/conversations", json={"consent": True})

    assert response.status_code == 201
    opening = [m["text"] for m in response.json()["messages"]]
    assert opening[0].startswith("Hello! I'm the information assistant of Example Hair Clinic")
    assert "keeps this chat, as you agreed" in opening[2]
    assert "not available" in opening[-1] and "999" in opening[-1]
    conversation_id = response.json()["conversation_id"]

    urgent = await h.client.post(
        messages_url(conversation_id), json={"text": "my throat is closing up and i cant breathe"}
    )
    plain = await h.client.post(messages_url(conversation_id), json={"text": "how much is it?"})

    assert urgent.status_code == 200
    first = urgent.json()["messages"][0]
    assert first["text"].startswith("Call your local emergency number")
    assert first["red_flag"] == "emergency"
    assert "can't answer anything else" in urgent.json()["messages"][1]["text"]
    assert (plain.status_code, plain.json()) == (503, unavailable(h))
    [row] = h.rows("SELECT red_flag_level FROM conversations")
    assert row["red_flag_level"] == "emergency"
    patients = [m for m in h.messages(conversation_id) if m["role"] == "patient"]
    assert [(m["status"], m["red_flag"]) for m in patients] == [
        ("answered", "emergency"),
        ("unanswered", None),
    ]


# --- sending messages --------------------------------------------------------------------


async def test_message_reply_is_mapped_and_both_sides_are_stored(h: Harness) -> None:
    conversation_id = await h.new_conversation()

    response = await h.client.post(
        messages_url(conversation_id), json={"text": " How much is it? "}
    )

    assert response.status_code == 200
    assert response.json() == {
        "messages": [
            {
                "id": "4",
                "role": "assistant",
                "text": "reply to How much is it?",
                "buttons": [],
                "sources": [
                    {
                        "id": "nhs-hair-loss",
                        "title": "Hair loss (NHS)",
                        "url": "https://example.org/nhs",
                    },
                    {"id": "clinic-leaflet", "title": "Clinic leaflet", "url": None},
                ],
                "topic": "cost",
                "entry": "cost-001",
                "red_flag": None,
                "summary_url": None,
                "figures": [],
                "feedback": None,
            }
        ],
        "understanding": None,
    }
    assert sent(h.rasa.calls[-1]) == {
        "sender": conversation_id,
        "message": "How much is it?",
        "command": False,
    }
    stored = h.messages(conversation_id)
    assert len(stored) == 4
    patient, answer = stored[2], stored[3]
    assert (patient["seq"], patient["role"], patient["text"]) == (3, "patient", " How much is it? ")
    assert patient["status"] == "answered"
    assert patient["intent"] == "ask_cost"
    assert patient["intent_confidence"] == pytest.approx(0.93)
    assert json.loads(patient["entities"]) == [{"entity": "treatment", "value": "mesotherapy"}]
    assert patient["button_title"] is None
    assert (answer["seq"], answer["role"], answer["topic"]) == (4, "assistant", "cost")
    assert answer["entry_id"] == "cost-001"
    assert answer["score"] == pytest.approx(0.87)
    assert answer["certainty"] == "moderate"
    assert [s["id"] for s in json.loads(answer["sources"])] == ["nhs-hair-loss", "clinic-leaflet"]
    [conversation] = h.rows("SELECT * FROM conversations")
    assert conversation["last_activity_at"] >= conversation["created_at"]
    assert conversation["updated_at"] > conversation["created_at"]


async def test_rasa_messages_with_missing_fields_get_defaults_and_empty_ones_are_skipped(
    h: Harness,
) -> None:
    conversation_id = await h.new_conversation()
    h.rasa.reply = lambda sender, message, command: {
        "messages": [
            {"text": "only text"},
            {},
            {"custom": {"topic": "cost"}},
            {"buttons": [{"title": "Yes", "payload": "/affirm"}]},
        ]
    }

    response = await h.client.post(messages_url(conversation_id), json={"text": "hi"})

    assert response.status_code == 200
    assert response.json()["understanding"] is None
    assert response.json()["messages"] == [
        {
            "id": "4",
            "role": "assistant",
            "text": "only text",
            "buttons": [],
            "sources": [],
            "topic": None,
            "entry": None,
            "red_flag": None,
            "summary_url": None,
            "figures": [],
            "feedback": None,
        },
        {
            "id": "5",
            "role": "assistant",
            "text": "",
            "buttons": [{"title": "Yes", "payload": "/affirm"}],
            "sources": [],
            "topic": None,
            "entry": None,
            "red_flag": None,
            "summary_url": None,
            "figures": [],
            "feedback": None,
        },
    ]
    stored = h.messages(conversation_id)
    assert [m["role"] for m in stored[2:]] == ["patient", "assistant", "assistant"]
    assert stored[2]["status"] == "answered" and stored[2]["intent"] is None


async def test_text_of_exactly_the_limit_is_accepted_after_stripping(h: Harness) -> None:
    conversation_id = await h.new_conversation()

    response = await h.client.post(
        messages_url(conversation_id), json={"text": "  " + "a" * 1000 + "\n"}
    )

    assert response.status_code == 200
    assert h.messages(conversation_id)[-2]["text"] == "  " + "a" * 1000 + "\n"


BAD_INPUT: list[tuple[str, Callable[[str], tuple[str, dict[str, Any]]], int]] = [
    ("empty text", lambda cid: (messages_url(cid), {"json": {"text": ""}}), 422),
    ("whitespace only", lambda cid: (messages_url(cid), {"json": {"text": " \n\t  "}}), 422),
    ("1001 characters", lambda cid: (messages_url(cid), {"json": {"text": "a" * 1001}}), 413),
    (
        "far too large a body",
        lambda cid: (messages_url(cid), {"json": {"text": "a" * 50_000}}),
        413,
    ),
    (
        "malformed JSON",
        lambda cid: (
            messages_url(cid),
            {"content": b'{"text": "hi', "headers": {"Content-Type": "application/json"}},
        ),
        422,
    ),
    ("wrong type", lambda cid: (messages_url(cid), {"json": {"text": 42}}), 422),
    ("null text", lambda cid: (messages_url(cid), {"json": {"text": None}}), 422),
    ("missing field", lambda cid: (messages_url(cid), {"json": {"message": "hi"}}), 422),
    ("array body", lambda cid: (messages_url(cid), {"json": ["hi"]}), 422),
    ("unknown conversation", lambda cid: (messages_url("B" * 43), {"json": {"text": "hi"}}), 404),
    ("malformed id", lambda cid: (messages_url("not-an-id"), {"json": {"text": "hi"}}), 404),
    (
        "id with bad characters",
        lambda cid: (messages_url(cid[:-1] + "$"), {"json": {"text": "hi"}}),
        404,
    ),
]


@pytest.mark.parametrize(
    ("case", "make_request", "expected"), BAD_INPUT, ids=[c[0] for c in BAD_INPUT]
)
async def test_bad_input_is_refused_with_a_sentence_and_changes_nothing(
    h: Harness,
    case: str,
    make_request: Callable[[str], tuple[str, dict[str, Any]]],
    expected: int,
) -> None:
    conversation_id = await h.new_conversation()
    before = h.snapshot()
    rasa_calls = len(h.rasa.calls)
    url, kwargs = make_request(conversation_id)

    response = await h.client.post(url, **kwargs)

    assert response.status_code == expected
    body = response.json()
    assert list(body) == ["detail"]
    assert isinstance(body["detail"], str) and len(body["detail"]) > 10
    assert body["detail"][0].isupper() and body["detail"].endswith(".")
    assert h.snapshot() == before
    assert len(h.rasa.calls) == rasa_calls


async def test_validation_details_name_the_problem(h: Harness) -> None:
    conversation_id = await h.new_conversation()
    url = messages_url(conversation_id)

    async def detail(**kwargs: Any) -> str:
        return str((await h.client.post(url, **kwargs)).json()["detail"])

    assert "JSON" in await detail(content=b"{", headers={"Content-Type": "application/json"})
    assert await detail(json={}) == 'The field "text" is required.'
    assert await detail(json={"text": 1}) == 'The field "text" must be a string.'
    assert "empty" in await detail(json={"text": "   "})
    assert "too long" in await detail(json={"text": "x" * 1001})


async def test_unknown_extra_fields_are_ignored(h: Harness) -> None:
    conversation_id = await h.new_conversation()

    response = await h.client.post(
        messages_url(conversation_id), json={"text": "hi", "mood": "curious"}
    )

    assert response.status_code == 200
    assert h.rasa.calls[-1]["message"] == "hi"


# --- commands and buttons ----------------------------------------------------------------


@pytest.mark.parametrize("text", ["/restart", "/start_conversation", '/ask_topic{"topic":"risks"}'])
async def test_text_starting_with_slash_is_passed_as_plain_words(h: Harness, text: str) -> None:
    conversation_id = await h.new_conversation()

    response = await h.client.post(messages_url(conversation_id), json={"text": text})

    assert response.status_code == 200
    assert sent(h.rasa.calls[-1]) == {"sender": conversation_id, "message": text, "command": False}
    patient = h.messages(conversation_id)[2]
    assert (patient["text"], patient["button_title"]) == (text, None)


async def test_offered_button_payload_is_a_command_and_its_title_is_stored(h: Harness) -> None:
    conversation_id = await h.new_conversation()

    response = await h.client.post(messages_url(conversation_id), json={"text": PAIN_PAYLOAD})

    assert response.status_code == 200
    assert sent(h.rasa.calls[-1]) == {"sender": conversation_id, "message": PAIN_PAYLOAD, "command": True}
    patient = h.messages(conversation_id)[2]
    assert (patient["role"], patient["text"], patient["button_title"]) == (
        "patient",
        PAIN_PAYLOAD,
        "Does it hurt?",
    )


async def test_payload_no_longer_offered_is_plain_words(h: Harness) -> None:
    conversation_id = await h.new_conversation()
    # The reply to this message offers no buttons, so the opening's buttons are gone.
    await h.client.post(messages_url(conversation_id), json={"text": "hello"})

    response = await h.client.post(messages_url(conversation_id), json={"text": COST_PAYLOAD})

    assert response.status_code == 200
    assert sent(h.rasa.calls[-1]) == {
        "sender": conversation_id,
        "message": COST_PAYLOAD,
        "command": False,
    }
    assert h.messages(conversation_id)[-2]["button_title"] is None


async def test_payload_offered_in_another_conversation_is_plain_words(h: Harness) -> None:
    await h.new_conversation()  # offers COST_PAYLOAD
    other = await h.new_conversation()
    await h.client.post(messages_url(other), json={"text": "hello"})  # other's buttons are gone

    await h.client.post(messages_url(other), json={"text": COST_PAYLOAD})

    assert sent(h.rasa.calls[-1]) == {"sender": other, "message": COST_PAYLOAD, "command": False}


async def test_button_still_counts_after_an_unanswered_press(h: Harness) -> None:
    conversation_id = await h.new_conversation()

    def down(sender: str, message: str, command: bool) -> Any:
        raise httpx.ConnectError("refused")

    h.rasa.reply = down
    failed = await h.client.post(messages_url(conversation_id), json={"text": COST_PAYLOAD})
    h.rasa.reply = default_reply
    retried = await h.client.post(messages_url(conversation_id), json={"text": COST_PAYLOAD})

    assert (failed.status_code, retried.status_code) == (503, 200)
    assert h.rasa.calls[-1]["command"] is True
    statuses = [
        (m["role"], m["status"], m["button_title"]) for m in h.messages(conversation_id)[2:]
    ]
    assert statuses == [
        ("patient", "unanswered", "What does it cost?"),
        ("patient", "answered", "What does it cost?"),
        ("assistant", None, None),
    ]


# --- Rasa failures -------------------------------------------------------------------------


async def _raise_connect(sender: str, message: str, command: bool) -> Any:
    raise httpx.ConnectError("connection refused")


async def _hang(sender: str, message: str, command: bool) -> Any:
    await asyncio.sleep(30)


def _http_500(sender: str, message: str, command: bool) -> Any:
    return httpx.Response(500, text="boom")


def _not_json(sender: str, message: str, command: bool) -> Any:
    return httpx.Response(200, text="<html>oops</html>")


def _wrong_shape(sender: str, message: str, command: bool) -> Any:
    return {"messages": [{"text": "hi", "buttons": [{"title": "no payload"}]}]}


@pytest.mark.parametrize(
    "failure",
    [_raise_connect, _hang, _http_500, _not_json, _wrong_shape],
    ids=["connection refused", "timeout", "HTTP 500", "not JSON", "wrong shape"],
)
async def test_rasa_failure_gives_503_in_time_and_keeps_the_message_unanswered(
    start: Callable[..., Any], failure: Callable[..., Any]
) -> None:
    async with start(rasa_timeout=0.5) as h:
        conversation_id = await h.new_conversation()
        h.rasa.reply = failure
        started = time.monotonic()

        response = await h.client.post(messages_url(conversation_id), json={"text": "is it safe?"})

        assert time.monotonic() - started < 1.5
        assert response.status_code == 503
        assert response.json() == unavailable(h)
        stored = h.messages(conversation_id)
        assert len(stored) == 3
        assert (stored[-1]["role"], stored[-1]["text"], stored[-1]["status"]) == (
            "patient",
            "is it safe?",
            "unanswered",
        )


async def test_default_timeout_answers_within_five_seconds(start: Callable[..., Any]) -> None:
    default_timeout = Settings.model_fields["rasa_timeout"].default
    async with start(rasa_timeout=default_timeout) as h:
        conversation_id = await h.new_conversation()
        h.rasa.reply = _hang
        started = time.monotonic()

        response = await h.client.post(messages_url(conversation_id), json={"text": "hello?"})

        assert response.status_code == 503
        assert 3.9 < time.monotonic() - started < 5.0


async def test_database_down_gives_503_json(h: Harness, tmp_path: Path) -> None:
    conversation_id = await h.new_conversation()
    runtime = h.app.state.runtime
    broken = create_async_engine(f"sqlite+aiosqlite:///{tmp_path}")  # a folder: cannot open
    healthy_maker = runtime.sessionmaker
    runtime.sessionmaker = create_sessionmaker(broken)
    try:
        response = await h.client.post(messages_url(conversation_id), json={"text": "hi"})
        created = await h.client.post("/api/v1/conversations")
    finally:
        runtime.sessionmaker = healthy_maker
        await broken.dispose()

    assert (response.status_code, response.json()) == (503, unavailable(h))
    assert (created.status_code, created.json()) == (503, unavailable(h))


# --- ordering ------------------------------------------------------------------------------


async def test_concurrent_messages_to_one_conversation_are_answered_in_order(h: Harness) -> None:
    conversation_id = await h.new_conversation()
    other_id = await h.new_conversation()
    rng = random.Random(1234)
    h.rasa.delay = lambda: rng.uniform(0.0, 0.03)
    texts = [f"question {i}" for i in range(12)]

    responses = await asyncio.gather(
        *(h.client.post(messages_url(conversation_id), json={"text": t}) for t in texts),
        *(h.client.post(messages_url(other_id), json={"text": t}) for t in texts[:4]),
    )

    for text, response in zip(texts, responses, strict=False):
        assert response.status_code == 200
        assert response.json()["messages"][0]["text"] == f"reply to {text}"
    assert h.rasa.max_in_flight == 1  # never two turns of one conversation at Rasa at once
    stored = h.messages(conversation_id)[2:]
    assert [m["seq"] for m in stored] == list(range(3, 3 + 2 * len(texts)))
    patients, answers = stored[0::2], stored[1::2]
    assert all(m["role"] == "patient" and m["status"] == "answered" for m in patients)
    assert all(m["role"] == "assistant" for m in answers)
    assert [a["text"] for a in answers] == [f"reply to {p['text']}" for p in patients]
    sent_to_rasa = [c["message"] for c in h.rasa.calls if c["sender"] == conversation_id][1:]
    assert sent_to_rasa == [p["text"] for p in patients]
    assert sorted(sent_to_rasa) == sorted(texts)
    runtime = h.app.state.runtime
    assert len(runtime.locks) == 0  # per-conversation locks are cleaned up


# --- rate limits ---------------------------------------------------------------------------


async def test_messages_per_conversation_are_rate_limited(start: Callable[..., Any]) -> None:
    async with start(rate_limit_messages_per_minute=2) as h:
        conversation_id = await h.new_conversation()
        other_id = await h.new_conversation()
        for _ in range(2):
            ok = await h.client.post(messages_url(conversation_id), json={"text": "hi"})
            assert ok.status_code == 200
        before = h.snapshot()

        limited = await h.client.post(messages_url(conversation_id), json={"text": "hi"})

        assert limited.status_code == 429
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        assert isinstance(limited.json()["detail"], str)
        assert h.snapshot() == before
        other = await h.client.post(messages_url(other_id), json={"text": "hi"})
        assert other.status_code == 200


async def test_new_conversations_per_client_are_rate_limited(start: Callable[..., Any]) -> None:
    async with start(rate_limit_conversations_per_minute=3) as h:
        for _ in range(3):
            await h.new_conversation()
        before = h.snapshot()

        limited = await h.client.post("/api/v1/conversations")

        assert limited.status_code == 429
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        assert list(limited.json()) == ["detail"]
        assert h.snapshot() == before


async def test_zero_disables_rate_limits(start: Callable[..., Any]) -> None:
    async with start(rate_limit_messages_per_minute=0, rate_limit_conversations_per_minute=0) as h:
        conversation_id = await h.new_conversation()
        for _ in range(3):
            await h.new_conversation()
        statuses = {
            (await h.client.post(messages_url(conversation_id), json={"text": "hi"})).status_code
            for _ in range(40)
        }
        assert statuses == {200}


# --- headers and records -------------------------------------------------------------------


async def test_api_responses_are_not_cached(h: Harness) -> None:
    response = await h.client.post("/api/v1/conversations")
    assert response.headers["Cache-Control"] == "no-store"


async def test_timestamps_are_stored_in_utc(h: Harness) -> None:
    before = datetime.now(UTC)
    conversation_id = await h.new_conversation()
    after = datetime.now(UTC)

    [row] = h.rows("SELECT created_at FROM conversations WHERE id = ?", conversation_id)
    assert before <= stored_time(row["created_at"]) <= after


async def test_message_text_is_never_logged(h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG", logger="api")
    secret = "my-private-symptom-xyz"
    conversation_id = await h.new_conversation()
    await h.client.post(messages_url(conversation_id), json={"text": secret})
    h.rasa.reply = _raise_connect
    await h.client.post(messages_url(conversation_id), json={"text": secret})

    records = [r for r in caplog.records if r.name.startswith("api")]
    assert len(records) >= 3, "the API logs its requests"
    logged = "\n".join(record.getMessage() for record in records)
    assert secret not in logged
    assert "reply to" not in logged
    assert conversation_id not in logged


# --- retries with a client id --------------------------------------------------------------


async def test_an_answered_retry_gets_the_stored_replies_without_a_second_message(
    h: Harness,
) -> None:
    conversation_id = await h.new_conversation()
    body = {"text": "How much is it?", "client_id": "m-0001-abcd"}

    first = await h.client.post(messages_url(conversation_id), json=body)
    calls = len(h.rasa.calls)
    again = await h.client.post(messages_url(conversation_id), json=body)

    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json() == first.json()
    assert len(h.rasa.calls) == calls, "the retry is not sent to the assistant"
    stored = h.messages(conversation_id)
    assert [m["role"] for m in stored] == ["assistant", "assistant", "patient", "assistant"]
    assert stored[2]["client_id"] == "m-0001-abcd"


async def test_an_unanswered_retry_is_sent_again_and_stored_once(h: Harness) -> None:
    conversation_id = await h.new_conversation()
    h.rasa.reply = _raise_connect
    body = {"text": PAIN_PAYLOAD, "client_id": "m-0002-abcd"}
    failed = await h.client.post(messages_url(conversation_id), json=body)
    h.rasa.reply = default_reply

    retried = await h.client.post(messages_url(conversation_id), json=body)

    assert (failed.status_code, retried.status_code) == (503, 200)
    assert sent(h.rasa.calls[-1]) == {"sender": conversation_id, "message": PAIN_PAYLOAD, "command": True}
    patients = [m for m in h.messages(conversation_id) if m["role"] == "patient"]
    assert [(p["status"], p["button_title"]) for p in patients] == [("answered", "Does it hurt?")]
    assert retried.json()["messages"][0]["id"] == "4"


async def test_an_unanswered_message_retried_later_moves_to_the_end(h: Harness) -> None:
    conversation_id = await h.new_conversation()
    h.rasa.reply = _raise_connect
    first = {"text": "first", "client_id": "m-first-1"}
    await h.client.post(messages_url(conversation_id), json=first)
    h.rasa.reply = default_reply
    await h.client.post(messages_url(conversation_id), json={"text": "second"})

    retried = await h.client.post(messages_url(conversation_id), json=first)

    assert retried.json()["messages"][0]["text"] == "reply to first"
    stored = [(m["role"], m["text"]) for m in h.messages(conversation_id)[2:]]
    assert stored == [
        ("patient", "second"),
        ("assistant", "reply to second"),
        ("patient", "first"),
        ("assistant", "reply to first"),
    ]


async def test_a_client_id_reused_for_other_text_is_refused(h: Harness) -> None:
    conversation_id = await h.new_conversation()
    await h.client.post(
        messages_url(conversation_id), json={"text": "one", "client_id": "m-same-01"}
    )
    before = h.snapshot()
    calls = len(h.rasa.calls)

    response = await h.client.post(
        messages_url(conversation_id), json={"text": "two", "client_id": "m-same-01"}
    )

    assert response.status_code == 422
    assert "client_id" in response.json()["detail"]
    assert h.snapshot() == before and len(h.rasa.calls) == calls


async def test_the_same_client_id_in_two_conversations_is_two_messages(h: Harness) -> None:
    first, second = await h.new_conversation(), await h.new_conversation()
    for conversation_id in (first, second):
        response = await h.client.post(
            messages_url(conversation_id), json={"text": "hi", "client_id": "m-shared-1"}
        )
        assert response.status_code == 200
    assert len(h.rows("SELECT * FROM messages WHERE client_id = 'm-shared-1'")) == 2


@pytest.mark.parametrize("client_id", ["short", "x" * 65, "has space 1", "semi;colon", 12345678])
async def test_a_malformed_client_id_is_refused(h: Harness, client_id: Any) -> None:
    conversation_id = await h.new_conversation()
    before = h.snapshot()

    response = await h.client.post(
        messages_url(conversation_id), json={"text": "hi", "client_id": client_id}
    )

    assert response.status_code == 422
    assert response.json()["detail"].startswith('The field "client_id"')
    assert h.snapshot() == before


async def test_a_turn_never_visits_the_database_thread_when_nothing_waits(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no other process writing and no checkpoint due, every statement and commit of a
    turn runs on the event loop (``api.sqlite_driver.inline_statements``): no trip at all."""
    created = (await h.client.post("/api/v1/conversations", json={"consent": True})).json()
    trips: list[str] = []
    real = GatedConnection._execute

    async def counted(self: GatedConnection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        trips.append(getattr(fn, "__name__", "statement"))
        return await real(self, fn, *args, **kwargs)

    monkeypatch.setattr(GatedConnection, "_execute", counted)
    response = await h.client.post(
        f"/api/v1/conversations/{created['conversation_id']}/messages", json={"text": "hello"}
    )

    assert response.status_code == 200
    assert [m["text"] for m in response.json()["messages"]]
    assert len(h.messages(created["conversation_id"])) > len(created["messages"]) + 1
    assert trips == []

"""The API's own database refusing writes (api/write_behind.py): a red flag still gets the
urgent reply in time, a plain question a 503 with the urgent pointer, and every message is
written once the database takes writes again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from api_fakes import FakeRasa, Harness, messages_url, running_app
from sqlalchemy import text

from api import conversation_auth, write_behind
from api.models import utcnow
from api.settings import Settings

pytestmark = pytest.mark.anyio


async def test_a_locked_database_costs_no_red_flag_and_loses_no_message(h: Harness) -> None:
    conversation_id = await h.new_conversation()
    calls = len(h.rasa.calls)
    async with h.writes_refused():
        started = time.monotonic()
        urgent = await h.client.post(
            messages_url(conversation_id), json={"text": "my lips are swelling and i cant breathe"}
        )
        seconds = time.monotonic() - started
        plain = await h.client.post(
            messages_url(conversation_id), json={"text": "how much is it?", "client_id": "m-lock-0001"}
        )
        waiting = len(h.app.state.runtime.write_behind)
    for _ in range(50):  # the write-behind retries every second
        if not len(h.app.state.runtime.write_behind):
            break
        await asyncio.sleep(0.1)

    assert urgent.status_code == 200 and seconds < 3.0
    assert urgent.json()["messages"][0]["red_flag"] == "emergency"
    assert plain.status_code == 503 and "If it is urgent, call" in plain.json()["detail"]
    assert waiting == 2
    assert len(h.rasa.calls) == calls, "the bot is not asked while the turn cannot be stored"
    patients = [m for m in h.messages(conversation_id) if m["role"] == "patient"]
    assert [(m["text"], m["status"], m["red_flag"], m["tracker_pending"]) for m in patients] == [
        ("my lips are swelling and i cant breathe", "answered", "emergency", 1),
        ("how much is it?", "unanswered", None, 1),
    ]
    [row] = h.rows("SELECT red_flag_level FROM conversations WHERE id = ?", conversation_id)
    assert row["red_flag_level"] == "emergency"


async def test_while_turns_wait_new_ones_queue_behind_them_without_waiting_for_the_database(
    h: Harness,
) -> None:
    conversation_id = await h.new_conversation()
    async with h.writes_refused():
        await h.client.post(messages_url(conversation_id), json={"text": "first"})
        started = time.monotonic()
        urgent = await h.client.post(messages_url(conversation_id), json={"text": "i cant breathe"})
        seconds = time.monotonic() - started
    for _ in range(50):
        if not len(h.app.state.runtime.write_behind):
            break
        await asyncio.sleep(0.1)

    assert urgent.status_code == 200 and seconds < 0.5, seconds
    patients = [m["text"] for m in h.messages(conversation_id) if m["role"] == "patient"]
    assert patients == ["first", "i cant breathe"], "written in the order they came"


@pytest.fixture
def own_postgres() -> Any:
    """A PostgreSQL of this test's own, to stop and start again."""
    from ops.datastores import private_postgres

    with private_postgres() as server:
        yield server


async def test_a_postgresql_that_is_down_costs_no_red_flag_and_loses_no_message(
    make_settings: Callable[..., Settings], fake_rasa: FakeRasa, own_postgres: Any,
) -> None:
    """PostgreSQL stopped: not even the conversation's token can be checked. A red flag gets
    the urgent reply, a plain question and a new conversation a 503 with the urgent pointer;
    the messages are written once it is back, those whose token opens the conversation only."""
    settings = make_settings(database_url=own_postgres.url)
    async with running_app(settings, fake_rasa, db_path=None) as h:  # type: ignore[arg-type]
        conversation_id = await h.new_conversation()
        calls = len(fake_rasa.calls)
        forged = {"Authorization": "Bearer " + "x" * 43}
        with own_postgres.down():
            started = time.monotonic()
            urgent = await h.client.post(
                messages_url(conversation_id), json={"text": "my lips are swelling and i cant breathe"}
            )
            seconds = time.monotonic() - started
            plain = await h.client.post(
                messages_url(conversation_id), json={"text": "how much is it?", "client_id": "m-down-0001"}
            )
            stranger = await h.client.post(
                messages_url(conversation_id), json={"text": "i cant breathe"}, headers=forged
            )
            opening = await h.client.post("/api/v1/conversations", json={"consent": True})
            waiting = len(h.app.state.runtime.write_behind)
            asked = len(fake_rasa.calls) - calls
            await asyncio.sleep(1.5)  # the write-behind tries, and fails, while it is down
        for _ in range(100):  # the write-behind retries every second
            if not len(h.app.state.runtime.write_behind):
                break
            await asyncio.sleep(0.1)
        async with h.app.state.runtime.engine.connect() as connection:
            patients = (await connection.execute(text(
                "SELECT text, status, red_flag FROM messages WHERE conversation_id = :c "
                "AND role = 'patient' ORDER BY seq"), {"c": conversation_id})).all()
        after = await h.client.post(messages_url(conversation_id),
                                    json={"text": "how much is it?", "client_id": "m-down-0001"})

    assert urgent.status_code == 200 and seconds < 3.0
    assert urgent.json()["messages"][0]["red_flag"] == "emergency"
    assert plain.status_code == 503 and "If it is urgent, call" in plain.json()["detail"]
    assert stranger.status_code == 200  # the urgent reply: it reveals nothing of the conversation
    assert opening.status_code == 503 and "If it is urgent, call" in opening.json()["detail"]
    assert waiting == 3
    assert asked == 0, "the bot is not asked while nothing can be stored"
    assert [tuple(p) for p in patients] == [
        ("my lips are swelling and i cant breathe", "answered", "emergency"),
        ("how much is it?", "unanswered", None),
    ]  # the stranger's message is not in the conversation
    assert after.status_code == 200  # the patient's Retry gets the bot's answer
    assert [m["text"] for m in after.json()["messages"]] == ["reply to how much is it?"]


@pytest.mark.parametrize("idle_hours", [0, 48])
async def test_an_unchecked_turn_is_written_only_into_an_open_conversation_its_token_opens(
    h: Harness, idle_hours: int
) -> None:
    """A turn kept while PostgreSQL was down is written with a token that opens the
    conversation, never into one that had ended (48 h idle, past MESO_RESUME_HOURS) and never
    with a wrong token; and no more than MAX_UNCHECKED such turns wait."""
    conversation_id = await h.new_conversation()
    token = h.token(conversation_id)
    if idle_hours:
        h.execute("UPDATE conversations SET last_activity_at = ? WHERE id = ?",
                  utcnow() - timedelta(hours=idle_hours), conversation_id)
    runtime = h.app.state.runtime
    runtime.write_behind.keep(conversation_id, "right token", None, None, None,
                              token_hash=conversation_auth.token_hash(token))
    runtime.write_behind.keep(conversation_id, "wrong token", None, None, None,
                              token_hash=conversation_auth.token_hash("x" * 43))
    assert await runtime.write_behind.flush(runtime.sessionmaker, runtime.locks) == 2
    patients = [m["text"] for m in h.messages(conversation_id) if m["role"] == "patient"]
    assert patients == ([] if idle_hours else ["right token"])

    for n in range(write_behind.MAX_UNCHECKED + 5):
        runtime.write_behind.keep(f"c{n}", "junk", None, None, None, token_hash="h")
    assert len(runtime.write_behind) == write_behind.MAX_UNCHECKED


async def test_a_conversation_lock_the_database_cannot_give_costs_no_red_flag(
    make_settings: Callable[..., Settings], fake_rasa: FakeRasa, postgres_url: str,
) -> None:
    """The token checks out, but the conversation's lock cannot be taken (its pool's
    connections dropped, or too many clients): the safety net answers and the turn is kept."""
    from sqlalchemy.engine import make_url

    from api.locks import SharedLocks
    from ops.stack import free_port

    settings = make_settings(database_url=postgres_url)
    async with running_app(settings, fake_rasa, db_path=None) as h:  # type: ignore[arg-type]
        conversation_id = await h.new_conversation()
        runtime = h.app.state.runtime
        working = runtime.locks
        nowhere = make_url(postgres_url).set(port=free_port()).render_as_string(hide_password=False)
        runtime.locks = SharedLocks.for_url(nowhere)
        try:
            urgent = await h.client.post(messages_url(conversation_id), json={"text": "i cant breathe"})
            plain = await h.client.post(messages_url(conversation_id), json={"text": "how much is it?"})
            waiting = len(runtime.write_behind)
        finally:
            await runtime.locks.close()
            runtime.locks = working
    assert urgent.status_code == 200 and urgent.json()["messages"][0]["red_flag"] == "emergency"
    assert plain.status_code == 503 and "If it is urgent, call" in plain.json()["detail"]
    assert waiting == 2

"""The API's own database refusing writes (api/write_behind.py): a red flag still gets the
urgent reply in time, a plain question a 503 with the urgent pointer, and every message is
written once the database takes writes again."""

from __future__ import annotations

import asyncio
import sqlite3
import time

import pytest
from api_fakes import Harness, messages_url

pytestmark = pytest.mark.anyio


async def test_a_locked_database_costs_no_red_flag_and_loses_no_message(h: Harness) -> None:
    conversation_id = await h.new_conversation()
    calls = len(h.rasa.calls)
    locker = sqlite3.connect(h.db_path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        started = time.monotonic()
        urgent = await h.client.post(
            messages_url(conversation_id), json={"text": "my lips are swelling and i cant breathe"}
        )
        seconds = time.monotonic() - started
        plain = await h.client.post(
            messages_url(conversation_id), json={"text": "how much is it?", "client_id": "m-lock-0001"}
        )
        waiting = len(h.app.state.runtime.write_behind)
    finally:
        locker.execute("ROLLBACK")
        locker.close()
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
    locker = sqlite3.connect(h.db_path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        await h.client.post(messages_url(conversation_id), json={"text": "first"})
        started = time.monotonic()
        urgent = await h.client.post(messages_url(conversation_id), json={"text": "i cant breathe"})
        seconds = time.monotonic() - started
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    for _ in range(50):
        if not len(h.app.state.runtime.write_behind):
            break
        await asyncio.sleep(0.1)

    assert urgent.status_code == 200 and seconds < 0.5, seconds
    patients = [m["text"] for m in h.messages(conversation_id) if m["role"] == "patient"]
    assert patients == ["first", "i cant breathe"], "written in the order they came"

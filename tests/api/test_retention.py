"""Erasing conversations: the purge of conversations without transcript consent (the API's
rows and Rasa's tracker events) and the background task that runs it."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from api_fakes import (
    CALLBACK_REQUEST as CALLBACK,
    SUMMARY_DOC as SUMMARY,
    Harness,
    rasa_tracker_db,
    tracker_counts,
)

from api.models import utcnow
from api.retention import PurgeResult, erase_conversation, purge_unconsented
from api.tracker_store import TrackerStore

pytestmark = pytest.mark.anyio

IDLE = timedelta(minutes=30)
LATER = timedelta(minutes=31)


async def purge(h: Harness, *, after: timedelta = LATER, **kwargs: Any) -> PurgeResult:
    runtime = h.app.state.runtime
    async with runtime.sessionmaker() as session:
        return await purge_unconsented(
            session, runtime.tracker, now=utcnow() + after, idle=IDLE, **kwargs
        )


def ids(h: Harness) -> set[str]:
    return {row["id"] for row in h.rows("SELECT id FROM conversations")}


async def test_idle_conversations_without_consent_are_erased_with_their_rasa_events(
    h: Harness, tracker_path: Path
) -> None:
    unconsented = await h.new_conversation(consent=False)
    consented = await h.new_conversation(consent=True)
    rasa_tracker_db(tracker_path, {unconsented: 6, consented: 4, "someone-else": 2})

    early = await purge(h, after=timedelta(minutes=29))
    assert early == PurgeResult(deleted=0, expired=0)
    assert ids(h) == {unconsented, consented}

    result = await purge(h)

    assert result == PurgeResult(deleted=1, expired=0)
    assert ids(h) == {consented}
    assert tracker_counts(tracker_path) == {consented: 4, "someone-else": 2}
    assert len(h.messages(consented)) == 2
    response = await h.client.get(f"/api/v1/conversations/{unconsented}/messages")
    assert response.status_code == 404


async def test_a_message_counts_as_activity(h: Harness) -> None:
    conversation_id = await h.new_conversation(consent=False)
    row = h.rows("SELECT last_activity_at FROM conversations")[0]
    await asyncio.sleep(0.01)
    await h.client.post(f"/api/v1/conversations/{conversation_id}/messages", json={"text": "hi"})
    assert h.rows("SELECT last_activity_at FROM conversations")[0][0] > row[0]


@pytest.mark.parametrize("kept", ["callback", "record"])
async def test_a_conversation_holding_separately_consented_data_is_expired_not_deleted(
    h: Harness, tracker_path: Path, kept: str
) -> None:
    conversation_id = await h.new_conversation(consent=False)
    block = {"callback": CALLBACK} if kept == "callback" else {"record": {"values": {"cost": 3}}}
    h.rasa.reply = lambda sender, message, command: {
        "messages": [{"text": "Done.", "custom": {**block, "summary": SUMMARY}}]
    }
    sent = await h.client.post(
        f"/api/v1/conversations/{conversation_id}/messages", json={"text": "/affirm"}
    )
    assert sent.status_code == 200
    rasa_tracker_db(tracker_path, {conversation_id: 8})

    result = await purge(h)

    assert result == PurgeResult(deleted=0, expired=1)
    [row] = h.rows("SELECT * FROM conversations")
    assert row["expired_at"] is not None
    assert (row["summary"], row["summary_at"]) == (None, None)
    if kept == "callback":
        assert len(h.rows("SELECT * FROM callback_requests")) == 1
    else:
        assert json.loads(row["record"]) == {"values": {"cost": 3}}
    assert tracker_counts(tracker_path) == {}
    base = f"/api/v1/conversations/{conversation_id}"
    assert (await h.client.get(f"{base}/messages")).status_code == 404
    assert (await h.client.post(f"{base}/messages", json={"text": "hi"})).status_code == 404
    assert (await h.client.get(f"{base}/summary.json")).status_code == 404
    assert await purge(h) == PurgeResult(), "an expired conversation is not purged again"


async def test_when_rasas_events_cannot_be_erased_the_row_stays_for_the_next_run(
    h: Harness, tracker_path: Path
) -> None:
    conversation_id = await h.new_conversation(consent=False)
    tracker_path.mkdir(parents=True)  # a folder where the database file should be: unusable
    runtime = h.app.state.runtime

    with pytest.raises(Exception):  # noqa: B017 - whatever the driver raises
        await purge(h)
    assert ids(h) == {conversation_id}

    tracker_path.rmdir()
    runtime.tracker = TrackerStore(f"sqlite:///{tracker_path}")
    assert await purge(h) == PurgeResult(deleted=1)


async def test_a_conversation_active_during_the_purge_is_left_alone(h: Harness) -> None:
    conversation_id = await h.new_conversation(consent=False)
    runtime = h.app.state.runtime

    async with runtime.locks.hold(conversation_id):  # a turn in progress
        task = asyncio.create_task(purge(h, after=LATER, locks=runtime.locks))
        await asyncio.sleep(0.05)
        assert not task.done(), "the purge waits for the turn"
        # the turn's activity, in the future the purge sees
        h.execute("UPDATE conversations SET last_activity_at = ?", utcnow() + LATER)
    assert await task == PurgeResult()
    assert ids(h) == {conversation_id}


async def test_erase_conversation_removes_everything(h: Harness, tracker_path: Path) -> None:
    conversation_id = await h.new_conversation(consent=True)
    h.rasa.reply = lambda sender, message, command: {
        "messages": [{"text": "We will call.", "custom": {"callback": CALLBACK}}]
    }
    await h.client.post(f"/api/v1/conversations/{conversation_id}/messages", json={"text": "ok"})
    rasa_tracker_db(tracker_path, {conversation_id: 3, "other": 1})
    runtime = h.app.state.runtime

    async with runtime.sessionmaker() as session:
        assert await erase_conversation(session, runtime.tracker, conversation_id) is True
        assert await erase_conversation(session, runtime.tracker, conversation_id) is False

    snapshot = h.snapshot()
    assert snapshot == {"conversations": [], "messages": [], "callback_requests": []}
    assert tracker_counts(tracker_path) == {"other": 1}


# --- the background task -----------------------------------------------------------------


def age(h: Harness, conversation_id: str) -> None:
    """Make the conversation's last activity an hour old."""
    old = utcnow() - timedelta(hours=1)
    h.execute("UPDATE conversations SET last_activity_at = ? WHERE id = ?", old, conversation_id)


async def wait_for(condition: Callable[[], bool], seconds: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_the_app_purges_every_interval_and_stops_cleanly(
    start: Callable[..., Any], tracker_path: Path
) -> None:
    async with start(purge_interval_seconds=0.05) as h:
        conversation_id = await h.new_conversation(consent=False)
        kept = await h.new_conversation(consent=False)
        rasa_tracker_db(tracker_path, {conversation_id: 2, kept: 2})
        age(h, conversation_id)
        await wait_for(lambda: conversation_id not in ids(h))
        assert ids(h) == {kept}
        assert tracker_counts(tracker_path) == {kept: 2}
        [purge_task] = [t for t in asyncio.all_tasks() if t.get_name() == "purge-unconsented"]
    assert purge_task.done()


async def test_a_failing_purge_is_logged_and_retried_without_stopping_the_app(
    start: Callable[..., Any], tracker_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="api")
    tracker_path.mkdir(parents=True)  # unusable until removed
    async with start(purge_interval_seconds=0.05) as h:
        conversation_id = await h.new_conversation(consent=False)
        age(h, conversation_id)
        await wait_for(lambda: any("purge failed" in r.getMessage() for r in caplog.records))
        assert (await h.client.get("/healthz")).status_code == 200
        tracker_path.rmdir()
        await wait_for(lambda: conversation_id not in ids(h))
        # The run logs after its session closes, a moment after the row is gone: wait for
        # the line too, or leaving the app can cancel the run before it logs.
        await wait_for(lambda: any(r.getMessage().startswith("purge: ") for r in caplog.records))

    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "purge: 1 conversations without transcript consent erased, 0 expired" in logged
    assert conversation_id not in logged

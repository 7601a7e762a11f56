"""Retention: conversations idle longer than the retention period are erased (the API's
rows and Rasa's events), exactly those and no others, and the run is audited."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from api_fakes import Harness, rasa_tracker_db, tracker_counts

from api.models import utcnow
from api.staff.erasure import apply_retention, count_older

pytestmark = pytest.mark.anyio

DAYS = 30


def set_last_activity(h: Harness, conversation_id: str, when: datetime) -> None:
    h.execute("UPDATE conversations SET last_activity_at = ? WHERE id = ?", when, conversation_id)


async def test_retention_erases_exactly_the_conversations_older_than_the_period(
    h: Harness, tracker_path: Path
) -> None:
    now = utcnow()
    cutoff = now - timedelta(days=DAYS)
    older = await h.new_conversation()
    at_cutoff = await h.new_conversation()
    younger = await h.new_conversation()
    set_last_activity(h, older, cutoff - timedelta(seconds=1))
    set_last_activity(h, at_cutoff, cutoff)
    set_last_activity(h, younger, cutoff + timedelta(seconds=1))
    rasa_tracker_db(tracker_path, {older: 4, at_cutoff: 2, younger: 1})
    runtime = h.app.state.runtime

    async with runtime.sessionmaker() as session:
        assert await count_older(session, DAYS, now) == 1
        deleted = await apply_retention(session, runtime.tracker, DAYS, now, None)

    assert deleted == 1
    assert {r["id"] for r in h.rows("SELECT id FROM conversations")} == {at_cutoff, younger}
    assert h.rows("SELECT * FROM messages WHERE conversation_id = ?", older) == []
    assert tracker_counts(tracker_path) == {at_cutoff: 2, younger: 1}
    [entry] = h.rows("SELECT * FROM audit_log WHERE action = 'retention'")
    assert entry["actor_name"] == "system" and entry["actor_id"] is None
    detail = json.loads(entry["detail"])
    assert (detail["days"], detail["deleted"]) == (DAYS, 1)
    assert older not in entry["detail"]


async def test_zero_days_keeps_everything(h: Harness) -> None:
    conversation_id = await h.new_conversation()
    set_last_activity(h, conversation_id, utcnow() - timedelta(days=3650))
    runtime = h.app.state.runtime
    async with runtime.sessionmaker() as session:
        assert await apply_retention(session, runtime.tracker, 0, utcnow(), None) == 0
    assert [r["id"] for r in h.rows("SELECT id FROM conversations")] == [conversation_id]


async def test_a_run_with_nothing_to_erase_is_audited_too(h: Harness) -> None:
    await h.new_conversation()
    runtime = h.app.state.runtime
    async with runtime.sessionmaker() as session:
        assert await apply_retention(session, runtime.tracker, DAYS, utcnow(), None) == 0
    [entry] = h.rows("SELECT detail FROM audit_log WHERE action = 'retention'")
    assert json.loads(entry["detail"])["deleted"] == 0
    assert len(h.rows("SELECT id FROM conversations")) == 1

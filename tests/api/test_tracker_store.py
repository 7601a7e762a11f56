"""Erasing a conversation's events from Rasa's tracker store (a real SQLite file shaped like
Rasa 3.6's ``events`` table)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from api_fakes import rasa_tracker_db, tracker_counts

from api.tracker_store import TrackerStore

pytestmark = pytest.mark.anyio


async def test_erase_deletes_only_that_conversations_events(tmp_path: Path) -> None:
    path = tmp_path / "rasa-tracker.db"
    rasa_tracker_db(path, {"conv-a": 5, "conv-b": 3})
    store = TrackerStore(f"sqlite:///{path}")
    try:
        assert await store.erase("conv-a") == 5
        assert await store.erase("conv-a") == 0
        assert await store.erase("conv-unknown") == 0
    finally:
        await store.dispose()
    assert tracker_counts(path) == {"conv-b": 3}


async def test_a_missing_database_file_is_left_uncreated(tmp_path: Path) -> None:
    path = tmp_path / "not-yet" / "rasa-tracker.db"
    store = TrackerStore(f"sqlite:///{path}")
    try:
        assert await store.erase("conv-a") == 0
    finally:
        await store.dispose()
    assert not path.exists() and not path.parent.exists()


async def test_a_database_without_the_events_table_has_nothing_to_erase(tmp_path: Path) -> None:
    path = tmp_path / "rasa-tracker.db"
    sqlite3.connect(path).close()
    store = TrackerStore(f"sqlite:///{path}")
    try:
        assert await store.erase("conv-a") == 0
    finally:
        await store.dispose()


async def test_the_journal_mode_of_rasas_database_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "rasa-tracker.db"
    rasa_tracker_db(path, {"conv-a": 1})
    store = TrackerStore(f"sqlite:///{path}")
    try:
        await store.erase("conv-a")
    finally:
        await store.dispose()
    connection = sqlite3.connect(path)
    try:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    finally:
        connection.close()

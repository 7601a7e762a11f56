"""Rasa's tracker store as the stack configures it (bot.stores.tracker_store), and the
remembered event-class lookup (bot.process_tuning.cache_event_types)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from rasa.core.tracker_store import SQLTrackerStore, TrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted, BotUttered, Event, SessionStarted, SlotSet, UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.utils.common import all_subclasses
from rasa.core.utils import AvailableEndpoints

from bot import paths
from bot.process_tuning import _RASAS_RESOLVE, _resolve_by_type, cache_event_types
from bot.stores.tracker_store import MesoTrackerStore
from ops import services


@pytest.fixture(scope="module")
def domain() -> Domain:
    return Domain.load(str(paths.REPO_ROOT / "domain.yml"))


def _conversation(domain: Domain, turns: int) -> DialogueStateTracker:
    tracker = DialogueStateTracker("conversation-1", domain.slots)
    for event in (ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen")):
        tracker.update(event)
    for i in range(turns):
        parse = {"intent": {"name": "ask_cost", "confidence": 0.9}, "entities": [], "text": f"question {i}"}
        for event in (UserUttered(f"question {i}", parse["intent"], [], parse),
                      ActionExecuted("action_answer_question"),
                      BotUttered(f"answer {i}", {"buttons": [{"title": "More", "payload": "/more"}]}),
                      SlotSet("last_entry", f"entry-{i}"), ActionExecuted("action_listen")):
            tracker.update(event)
    return tracker


@pytest.mark.asyncio
async def test_it_reads_back_what_rasas_own_store_reads(domain: Domain, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tracker.db'}"
    ours = MesoTrackerStore(domain, host=url, db="meso_tracker")
    tracker = _conversation(domain, 3)
    await ours.save(tracker)
    for event in list(_conversation(domain, 5).events)[len(tracker.events):]:
        tracker.update(event)
    await ours.save(tracker)  # only the new events are added
    rasas = SQLTrackerStore(domain, host=url, db="meso_tracker")
    mine, theirs = await ours.retrieve("conversation-1"), await rasas.retrieve("conversation-1")
    assert [e.as_dict() for e in mine.events] == [e.as_dict() for e in theirs.events]
    assert mine.get_slot("last_entry") == "entry-4"
    full, rasas_full = await ours.retrieve_full_tracker("conversation-1"), await rasas.retrieve_full_tracker("conversation-1")
    assert [e.as_dict() for e in full.events] == [e.as_dict() for e in rasas_full.events]
    assert len(full.events) >= len(tracker.events)
    assert await ours.retrieve("nobody") is None


def test_sqlite_connections_are_tuned(domain: Domain, tmp_path: Path) -> None:
    store = MesoTrackerStore(domain, host=f"sqlite:///{tmp_path / 'tracker.db'}", db="meso_tracker")
    with store.engine.connect() as connection:
        pragma = lambda name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()  # noqa: E731
        assert (pragma("journal_mode"), pragma("synchronous"), pragma("secure_delete")) == ("wal", 1, 1)
        assert pragma("busy_timeout") > 0
    # WAL is a property of the file: the API's own connections see it too.
    assert sqlite3.connect(tmp_path / "tracker.db").execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_the_stacks_endpoints_load_this_store(domain: Domain, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESO_VAR_DIR", str(tmp_path))
    monkeypatch.delenv("MESO_TRACKER_URL", raising=False)
    monkeypatch.delenv("MESO_RASA_ENDPOINTS", raising=False)
    env = services.service_env()
    monkeypatch.setenv("MESO_ACTION_TOKEN", env["MESO_ACTION_TOKEN"])
    endpoints = AvailableEndpoints.read_endpoints(str(services.write_endpoints(env)))
    store = TrackerStore.create(endpoints.tracker_store, domain=domain)
    inner = getattr(store, "_tracker_store", store)
    assert isinstance(inner, MesoTrackerStore)


@pytest.mark.parametrize("cls", sorted(all_subclasses(Event), key=lambda c: c.__name__), ids=lambda c: c.__name__)
def test_the_remembered_lookup_finds_what_rasas_walk_finds(cls: Any) -> None:
    rasas = _RASAS_RESOLVE[0] if _RASAS_RESOLVE else Event.resolve_by_type
    assert _resolve_by_type(cls.type_name) is rasas(cls.type_name)


def test_unknown_types_are_answered_as_rasa_answers_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Event, "resolve_by_type", Event.resolve_by_type)
    cache_event_types()
    assert Event.resolve_by_type("topic") is None
    assert Event.resolve_by_type("no_such_event", default=SlotSet) is SlotSet
    with pytest.raises(ValueError, match="Unknown event name"):
        Event.resolve_by_type("no_such_event")
    assert Event.from_parameters({"event": "slot", "name": "x", "value": 1}) == SlotSet("x", 1)


@pytest.mark.asyncio
async def test_sqlite_connections_are_kept_open_between_turns(domain: Domain, tmp_path: Path) -> None:
    store = MesoTrackerStore(domain, host=f"sqlite:///{tmp_path / 'tracker.db'}", db="meso_tracker")
    opened: list[Any] = []
    import sqlalchemy as sa

    sa.event.listen(store.engine, "connect", lambda connection, _record: opened.append(connection))
    tracker = _conversation(domain, 1)
    for _ in range(5):
        await store.save(tracker)
        await store.retrieve("conversation-1")
    assert len(opened) <= 1


@pytest.mark.asyncio
async def test_a_turn_read_here_is_written_without_counting_and_without_repeats(domain: Domain, tmp_path: Path) -> None:
    import sqlalchemy as sa

    store = MesoTrackerStore(domain, host=f"sqlite:///{tmp_path / 'tracker.db'}", db="meso_tracker")
    await store.save(_conversation(domain, 2))
    statements: list[str] = []
    sa.event.listen(store.engine, "before_cursor_execute",
                    lambda conn, cursor, statement, *args: statements.append(statement.lower()))
    for turn in range(2, 5):
        tracker = await store.retrieve("conversation-1")
        for event in list(_conversation(domain, turn + 1).events)[-5:]:
            tracker.update(event)
        await store.save(tracker)
        await store.save(tracker)  # a second save of the same turn adds nothing
    assert not [s for s in statements if "count(" in s]
    back = await SQLTrackerStore(domain, host=f"sqlite:///{tmp_path / 'tracker.db'}", db="x").retrieve_full_tracker("conversation-1")
    texts = [e.text for e in back.events if isinstance(e, UserUttered)]
    assert texts == [f"question {i}" for i in range(5)]


@pytest.mark.asyncio
async def test_a_new_conversation_is_written_once_without_counting(domain: Domain, tmp_path: Path) -> None:
    import sqlalchemy as sa

    store = MesoTrackerStore(domain, host=f"sqlite:///{tmp_path / 'tracker.db'}", db="meso_tracker")
    statements: list[str] = []
    sa.event.listen(store.engine, "before_cursor_execute",
                    lambda conn, cursor, statement, *args: statements.append(statement.lower()))
    tracker = await store.get_or_create_tracker("new-one")
    assert [e.as_dict()["event"] for e in tracker.events] == ["action"]  # listening, as Rasa's
    assert not [s for s in statements if s.startswith("insert")]  # nothing written yet
    for event in list(_conversation(domain, 2).events):
        tracker.update(event)
    await store.save(tracker)
    assert not [s for s in statements if "count(" in s]
    assert len([s for s in statements if s.startswith("insert")]) >= 1
    back = await store.retrieve_full_tracker("new-one")
    assert [e.as_dict() for e in back.events] == [e.as_dict() for e in tracker.events]


@pytest.mark.asyncio
async def test_the_turns_entry_scores_are_not_stored(domain: Domain, tmp_path: Path) -> None:
    from bot.kb.semantic import SIMILARITIES_KEY

    store = MesoTrackerStore(domain, host=f"sqlite:///{tmp_path / 'tracker.db'}", db="meso_tracker")
    tracker = _conversation(domain, 1)
    scores = {"index": "0123456789abcdef", "texts": {"does it hurt": "AAAA"}}
    parse = {"intent": {"name": "ask_pain", "confidence": 0.8}, "entities": [], "text": "does it hurt",
             SIMILARITIES_KEY: scores}
    tracker.update(UserUttered("does it hurt", parse["intent"], [], parse))
    await store.save(tracker)
    assert tracker.latest_message.parse_data[SIMILARITIES_KEY] == scores  # the turn still has them
    rows = sqlite3.connect(tmp_path / "tracker.db").execute("SELECT data, intent_name FROM events").fetchall()
    assert not [data for data, _ in rows if SIMILARITIES_KEY in data]
    assert ("ask_pain" in [intent for _, intent in rows]) and ("ask_cost" in [intent for _, intent in rows])
    back = await store.retrieve("conversation-1")
    assert back.latest_message.text == "does it hurt"
    assert back.latest_message.intent["name"] == "ask_pain"
    assert SIMILARITIES_KEY not in back.latest_message.parse_data

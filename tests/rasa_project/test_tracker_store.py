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
    ActionExecuted, BotUttered, DefinePrevUserUtteredFeaturization, EntitiesAdded, Event, SessionStarted,
    SlotSet, UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker, EventVerbosity
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
    for key, value in services.process_env(env, "rasa").items():  # Rasa's own environment
        if key.startswith("MESO_ACTION"):
            monkeypatch.setenv(key, value)
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
    assert not [s for s in statements if "count(" in s and "max(events.id)" not in s]  # (the check of what is kept in memory is no count before a write)
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
    assert not [s for s in statements if "count(" in s and "max(events.id)" not in s]  # (the check of what is kept in memory is no count before a write)
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


# --- the latest session of recent conversations, kept in memory (RecentConversations) ---

def _statements(store: MesoTrackerStore) -> list[str]:
    import sqlalchemy as sa

    statements: list[str] = []
    sa.event.listen(store.engine, "before_cursor_execute",
                    lambda conn, cursor, statement, *args: statements.append(statement.lower()))
    return statements


async def _next_turn(store: MesoTrackerStore, domain: Domain, turn: int) -> DialogueStateTracker:
    tracker = await store.retrieve("conversation-1")
    for event in list(_conversation(domain, turn + 1).events)[-5:]:
        tracker.update(event)
    await store.save(tracker)
    return tracker


@pytest.mark.asyncio
async def test_a_kept_conversation_is_read_back_with_one_small_query_as_the_database_has_it(
        domain: Domain, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tracker.db'}"
    store = MesoTrackerStore(domain, host=url, db="meso_tracker")
    await store.save(_conversation(domain, 2))
    await _next_turn(store, domain, 2)  # read from the database, then kept with the turn's rows
    statements = _statements(store)
    mine = await store.retrieve("conversation-1")
    assert len(statements) == 1 and "max(events.id)" in statements[0]  # no event row read
    theirs = await SQLTrackerStore(domain, host=url, db="x").retrieve("conversation-1")
    assert [e.as_dict() for e in mine.events] == [e.as_dict() for e in theirs.events]
    assert [type(e) for e in mine.events] == [type(e) for e in theirs.events]
    assert mine.current_state(EventVerbosity.ALL) == theirs.current_state(EventVerbosity.ALL)
    assert mine.get_slot("last_entry") == "entry-2"


@pytest.mark.asyncio
async def test_a_turn_left_unsaved_never_reaches_the_next(domain: Domain, tmp_path: Path) -> None:
    store = MesoTrackerStore(domain, host=f"sqlite:///{tmp_path / 'tracker.db'}", db="meso_tracker")
    await store.save(_conversation(domain, 2))
    await _next_turn(store, domain, 2)
    first = await store.retrieve("conversation-1")
    first.update(UserUttered("never saved", {"name": "ask_pain", "confidence": 0.9}))
    first.update(SlotSet("last_entry", "unsaved"))
    again = await store.retrieve("conversation-1")
    assert again is not first and again.events is not first.events
    assert [e.text for e in again.events if isinstance(e, UserUttered)] == [f"question {i}" for i in range(3)]
    assert again.get_slot("last_entry") == "entry-2"


def _turn_with_entities(i: int) -> list[Event]:
    """A turn whose events Rasa applies to an earlier one: entities added to the user's
    message, and its featurisation flag set, after it."""
    parse = {"intent": {"name": "ask_cost", "confidence": 0.9}, "entities": [], "text": f"question {i}"}
    return [UserUttered(f"question {i}", parse["intent"], [], parse),
            DefinePrevUserUtteredFeaturization(i % 2 == 0),
            EntitiesAdded([{"entity": "entry", "value": f"entry-{i}"}]),
            ActionExecuted("action_answer_question"),
            BotUttered(f"answer {i}", {"buttons": [{"title": "More", "payload": "/more"}]}),
            SlotSet("last_entry", f"entry-{i}"), ActionExecuted("action_listen")]


def _full_state(tracker: DialogueStateTracker) -> dict[str, Any]:
    latest = tracker.latest_message
    return {"state": tracker.current_state(EventVerbosity.ALL),
            "latest": (latest.entities, latest.use_text_for_featurization, latest.parse_data),
            "each_user_message": [(e.entities, e.use_text_for_featurization, e.parse_data)
                                  for e in tracker.events if isinstance(e, UserUttered)],
            "applied": [e.as_dict() for e in tracker.applied_events()]}


@pytest.mark.asyncio
async def test_events_carried_from_turn_to_turn_give_what_the_database_gives(domain: Domain, tmp_path: Path) -> None:
    """Each turn's tracker is made of the events the turn before was given (none made anew)
    and is, in full, what Rasa's own store reads from the database at that point."""
    url = f"sqlite:///{tmp_path / 'tracker.db'}"
    store = MesoTrackerStore(domain, host=url, db="meso_tracker")
    rasas = SQLTrackerStore(domain, host=url, db="x")
    await store.save(_conversation(domain, 1))
    previous: list[Event] = []
    for i in range(1, 9):
        tracker = await store.retrieve("conversation-1")
        if i > 2:  # read back from what it kept: the events of earlier turns are carried
            assert all(mine is theirs for mine, theirs in zip(tracker.events, previous))
        previous = list(tracker.events)
        for event in _turn_with_entities(i):
            tracker.update(event)
        await store.save(tracker)
        ours = await store.retrieve("conversation-1")
        assert _full_state(ours) == _full_state(await rasas.retrieve("conversation-1"))
        previous = list(ours.events)


def test_events_made_for_the_next_turn_are_bounded_and_made_again_when_let_go() -> None:
    from bot.stores.tracker_store import THAWED_BYTES_PER_MARSHALLED_BYTE, RecentConversations, _freeze

    events = [BotUttered("x" * 500).as_dict()]
    one = len(_freeze({}, events)) * THAWED_BYTES_PER_MARSHALLED_BYTE
    recent = RecentConversations(thawed_max_bytes=3 * one)
    for n in range(5):
        recent.keep(f"c{n}", 1, n + 1, events)
        assert recent.take(f"c{n}", 1, n + 1) is not None
    assert recent.thawed_size == 3 * one  # the two read least recently let go of theirs
    taken = recent.take("c0", 1, 1)  # still kept: its events are made again
    assert taken is not None and [e.text for e in taken[0]] == ["x" * 500]
    assert recent.thawed_size == 3 * one  # c0's made again, c2's let go in turn
    recent.drop("c0")
    assert recent.thawed_size == 2 * one


@pytest.mark.asyncio
async def test_rows_written_by_another_replica_are_read_from_the_database(domain: Domain, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tracker.db'}"
    one, other = (MesoTrackerStore(domain, host=url, db="meso_tracker") for _ in range(2))
    await one.save(_conversation(domain, 2))
    await _next_turn(one, domain, 2)  # `one` keeps the conversation
    await _next_turn(other, domain, 3)  # the next turn went to the other replica
    back = await one.retrieve("conversation-1")
    assert [e.text for e in back.events if isinstance(e, UserUttered)] == [f"question {i}" for i in range(4)]
    await _next_turn(one, domain, 4)
    assert [e.text for e in (await other.retrieve("conversation-1")).events
            if isinstance(e, UserUttered)] == [f"question {i}" for i in range(5)]


@pytest.mark.asyncio
async def test_an_erased_conversation_is_not_given_back_and_leaves_memory(domain: Domain, tmp_path: Path) -> None:
    store = MesoTrackerStore(domain, host=f"sqlite:///{tmp_path / 'tracker.db'}", db="meso_tracker")
    await store.save(_conversation(domain, 2))
    await _next_turn(store, domain, 2)
    assert len(store.recent) == 1
    with sqlite3.connect(tmp_path / "tracker.db") as db:  # as the API's erasure does
        db.execute("DELETE FROM events WHERE sender_id = ?", ("conversation-1",))
    assert await store.retrieve("conversation-1") is None
    assert len(store.recent) == 0 and store.recent.size == 0


@pytest.mark.asyncio
async def test_a_new_session_is_read_from_the_database(domain: Domain, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tracker.db'}"
    store = MesoTrackerStore(domain, host=url, db="meso_tracker")
    await store.save(_conversation(domain, 2))
    tracker = await _next_turn(store, domain, 2)
    for event in (ActionExecuted("action_session_start"), SessionStarted(), SlotSet("last_entry", "kept"),
                  ActionExecuted("action_listen")):
        tracker.update(event)
    await store.save(tracker)
    assert len(store.recent) == 0  # where the latest session starts, the database says
    mine = await store.retrieve("conversation-1")
    theirs = await SQLTrackerStore(domain, host=url, db="x").retrieve("conversation-1")
    assert [e.as_dict() for e in mine.events] == [e.as_dict() for e in theirs.events]
    assert [e.as_dict()["event"] for e in mine.events][0] == "session_started"


@pytest.mark.asyncio
async def test_the_rule_policys_replay_goes_from_one_turns_tracker_to_the_next(domain: Domain, tmp_path: Path) -> None:
    from bot.process_tuning import TAIL_REPLAY

    store = MesoTrackerStore(domain, host=f"sqlite:///{tmp_path / 'tracker.db'}", db="meso_tracker")
    await store.save(_conversation(domain, 2))
    tracker = await store.retrieve("conversation-1")
    replay = object()
    tracker.__dict__[TAIL_REPLAY] = replay
    for event in list(_conversation(domain, 3).events)[-5:]:
        tracker.update(event)
    await store.save(tracker)
    back = await store.retrieve("conversation-1")
    assert back.__dict__.get(TAIL_REPLAY) is replay
    assert TAIL_REPLAY not in (await store.retrieve("conversation-1")).__dict__  # handed over once


def test_kept_conversations_are_bounded_in_bytes_and_idle_time() -> None:
    from bot.stores.tracker_store import RecentConversations, _freeze

    now = [0.0]
    recent = RecentConversations(max_bytes=3000, idle_s=60.0, clock=lambda: now[0])
    events = [BotUttered("x" * 500).as_dict()]
    for n in range(10):
        recent.keep(f"c{n}", 1, n + 1, events)
    assert 0 < recent.size <= 3000 and len(recent) < 10
    assert recent.take("c9", 1, 10) is not None and recent.take("c0", 1, 1) is None  # oldest went first
    assert recent.take("c9", 2, 11) is None and recent.take("c9", 1, 10) is None  # a mismatch lets go
    recent.keep("late", 1, 1, events)
    now[0] = 61.0
    recent.keep("now", 1, 1, events)
    assert recent.take("late", 1, 1) is None and recent.take("now", 1, 1) is not None
    assert recent.size == len(_freeze({}, events))
    recent.keep("odd", 1, 1, [{"event": "user", "text": "no parse data"}])  # Rasa cannot read it back
    assert recent.take("odd", 1, 1) is None

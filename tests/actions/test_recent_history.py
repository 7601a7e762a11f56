"""Actions sent only the recent events (contract.action_history) answer as with them all.

Rasa sends the actions of ``RECENT_HISTORY_ACTIONS`` the events from the user's previous
message on (``bot.process_tuning.recent_action_history``). Each is run here, with the real
knowledge base, on long conversations made by Rasa's own tracker (so the state is built as
Rasa builds it) ending in questions, follow-ups that point back ("the second one", "which
of those"), red flags, requests to decline and other languages: once with every event and
once cut as Rasa cuts it. The replies and events must be the same.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import random
from typing import Any

import pytest
from rasa.shared.core.events import ActionExecuted, BotUttered, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker, EventVerbosity
from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

import actions
from contract.action_history import RECENT_HISTORY_ACTIONS, RECENT_USER_MESSAGES, first_recent

LAST_MESSAGES = [
    ("the second one", "nlu_fallback"),
    ("which of those is cheapest", "ask_cost"),
    ("and the last one?", "nlu_fallback"),
    ("does it hurt", "ask_pain"),
    ("how much is a session in total", "ask_cost"),
    ("can you prescribe me finasteride", "ask_dose"),
    ("my scalp is bleeding and swollen since the injections", "red_flag_same_day"),
    ("hablas español", "other_language"),
    ("what do you think about the weather", "out_of_scope"),
    ("qwzx plmk", "nlu_fallback"),
]


def _actions(runtime: Any) -> dict[str, Action]:
    found: dict[str, Action] = {}
    for module in pkgutil.iter_modules(actions.__path__):
        for _, cls in inspect.getmembers(importlib.import_module(f"actions.{module.name}"), inspect.isclass):
            if issubclass(cls, Action) and not inspect.isabstract(cls) and cls.__module__.startswith("actions."):
                takes_runtime = "runtime" in inspect.signature(cls.__init__).parameters
                action = cls(runtime) if takes_runtime else cls()
                if action.name() in RECENT_HISTORY_ACTIONS:
                    found[action.name()] = action
    return found


def _user(text: str, intent: str) -> UserUttered:
    parse = {"text": text, "intent": {"name": intent, "confidence": 0.9},
             "intent_ranking": [{"name": intent, "confidence": 0.9}, {"name": "ask_cost", "confidence": 0.05}],
             "entities": []}
    return UserUttered(text, parse["intent"], [], parse)


def _conversation(domain: Any, runtime: Any, rng: random.Random, turns: int, last: tuple[str, str]) -> DialogueStateTracker:
    from rasa.shared.core.domain import Domain

    tracker = DialogueStateTracker("recent-history-test", Domain.from_dict(domain).slots)
    entries = sorted(runtime.kb.entries.values(), key=lambda e: e.id)
    tracker.update(ActionExecuted("action_listen"))
    for turn in range(turns):
        asked = rng.choice(entries)
        tracker.update(_user(f"question {turn} about {asked.topic}", f"ask_{asked.topic}"))
        tracker.update(ActionExecuted("action_answer_question"))
        offered = rng.sample(entries, 3)
        tracker.update(BotUttered(f"answer {turn}", {"buttons": [
            {"title": e.id, "payload": f'/ask_{e.topic}{json.dumps({"entry": e.id})}'} for e in offered]}))
        tracker.update(SlotSet("last_entry", asked.id))
        tracker.update(ActionExecuted("action_listen"))
    tracker.update(_user(*last))
    return tracker


def _sdk_tracker(state: dict[str, Any]) -> Tracker:
    return Tracker.from_dict(state)


async def _run(action: Action, tracker: Tracker, domain: dict) -> tuple[list, list]:
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, tracker, domain)
    return dispatcher.messages, events


def test_every_listed_action_exists(runtime: Any) -> None:
    assert set(_actions(runtime)) == set(RECENT_HISTORY_ACTIONS)


def test_the_cut_starts_at_the_users_previous_message() -> None:
    kinds = ["action", "user", "action", "bot", "action", "user", "action", "slot", "bot", "action", "user", "action"]
    start = first_recent(kinds, lambda kind: kind)
    assert start == 5 and kinds[start:].count("user") == RECENT_USER_MESSAGES
    assert first_recent(["action", "user", "action"], lambda kind: kind) == 0
    assert first_recent([], lambda kind: kind) == 0


@pytest.mark.asyncio
async def test_listed_actions_answer_the_same_with_only_the_recent_events(runtime: Any, domain: dict) -> None:
    rng = random.Random(3)
    listed = _actions(runtime)
    compared = 0
    for last in LAST_MESSAGES:
        tracker = _conversation(domain, runtime, rng, rng.randint(8, 30), last)
        state = tracker.current_state(EventVerbosity.ALL)
        cut = dict(state, events=state["events"][first_recent(state["events"], lambda e: e["event"]):])
        assert len(cut["events"]) < len(state["events"]) // 4
        for name, action in sorted(listed.items()):
            whole = await _run(action, _sdk_tracker(state), domain)
            recent = await _run(action, _sdk_tracker(cut), domain)
            assert recent == whole, (name, last)
            compared += 1
    assert compared == len(LAST_MESSAGES) * len(RECENT_HISTORY_ACTIONS)

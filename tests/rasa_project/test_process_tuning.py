"""What the bot processes change about their libraries (bot.process_tuning)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction

from bot import paths
from bot.process_tuning import (
    ACTION_SERVER_UNUSED,
    _validate_action_result,
    cache_action_result_check,
    freeze_after_agent_load,
    freeze_startup_objects,
    skip_unused_frameworks,
)

RASAS_OWN = RemoteAction._validate_action_result

GOOD = {"events": [{"event": "slot", "name": "last_entry", "value": "cost", "timestamp": None}],
        "responses": [{"text": "An answer", "buttons": [{"title": "More", "payload": "/more"}]}]}
BAD = [
    {"events": "not a list", "responses": []},
    {"events": [{"event": "no_such_event"}], "responses": []},
    {"events": [], "responses": ["not an object"]},
    ["not", "an", "object"],
]


def _outcome(check: Any, result: Any) -> str:
    try:
        return "ok" if check(RemoteAction("action_x", None), result) else "false"
    except ValidationError as error:
        return f"refused: {error.message}"


@pytest.mark.parametrize("result", [GOOD, {"events": [], "responses": []}, {}, *BAD])
def test_the_cached_check_decides_and_reports_as_rasas_own(result: Any) -> None:
    assert _outcome(_validate_action_result, result) == _outcome(RASAS_OWN, result)


def test_bad_replies_are_refused_with_rasas_hint() -> None:
    for result in BAD:
        assert "Failed to validate Action server response" in _outcome(_validate_action_result, result)


def test_applying_it_replaces_rasas_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(RemoteAction, "_validate_action_result", RASAS_OWN)
    cache_action_result_check()
    assert RemoteAction._validate_action_result is _validate_action_result


def test_a_framework_already_loaded_is_left_alone() -> None:
    assert "rasa" in sys.modules
    assert skip_unused_frameworks(["rasa"]) == []
    assert sys.modules["rasa"] is not None


def test_the_action_servers_spacy_runs_without_tensorflow_or_jax(built_dir: Path) -> None:
    """In a fresh interpreter, as the action server starts: spaCy and the knowledge
    runtime load and work, and TensorFlow and JAX never load."""
    script = f"""
import sys
from bot.process_tuning import ACTION_SERVER_UNUSED, skip_unused_frameworks
skip_unused_frameworks(ACTION_SERVER_UNUSED)
import spacy
from bot.nlp.pipeline import Normaliser, load_pipeline
normaliser = Normaliser(load_pipeline(__import__("pathlib").Path({str(built_dir / "spacy-pipeline")!r})))
print(sorted(normaliser.terms("how much do the injections cost")) != [])
print(sorted(m for m in ("tensorflow", "jax", "torch") if sys.modules.get(m) is not None))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=paths.REPO_ROOT, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[:2] == ["True", "[]"]
    assert set(ACTION_SERVER_UNUSED) >= {"tensorflow", "jax"}


def _trained_rules() -> dict[str, str]:
    """The rule lookup of the trained model (``make train``), or of a small rule set."""
    import json
    import tarfile

    model = paths.REPO_ROOT / "models" / "meso.tar.gz"
    if model.is_file():
        with tarfile.open(model) as tar:
            member = next(m for m in tar.getmembers() if m.name.endswith("train_RulePolicy0/rule_policy.json"))
            return json.load(tar.extractfile(member))["lookup"]["rules"]
    pytest.fail("no trained model: run `make train`")


def test_rule_matching_stopped_early_finds_the_same_rules() -> None:
    """Every rule's own states, and long histories made of several rules' states one after
    another: the same possible rules as Rasa's full walk."""
    import json
    import random

    from rasa.core.policies.rule_policy import RulePolicy

    from bot.process_tuning import _possible_rule_keys

    lookup = _trained_rules()
    policy = RulePolicy.__new__(RulePolicy)  # the matching reads no trained state of its own
    rasas = RulePolicy._get_possible_keys
    rules = [json.loads(key) for key in lookup]
    rng = random.Random(17)
    histories = rules + [[s for rule in rng.sample(rules, rng.randint(2, 12)) for s in rule] for _ in range(300)]
    intents = sorted({s["user"]["intent"] for r in rules for s in r if (s.get("user") or {}).get("intent")})
    actions = sorted({s["prev_action"]["action_name"] for r in rules for s in r
                      if (s.get("prev_action") or {}).get("action_name")})
    for rule in rules:  # the same histories ending in another intent, another previous action
        last = rule[-1]
        histories.append(rule[:-1] + [{**last, "user": {**(last.get("user") or {}), "intent": rng.choice(intents)}}])
        if last.get("prev_action"):
            histories.append(rule[:-1] + [{**last, "prev_action": {"action_name": rng.choice(actions)}}])
        else:
            histories.append(rule[:-1] + [{**last, "prev_action": {"action_name": "action_listen"}}])
    matched = 0
    for states in histories:
        expected = rasas(policy, lookup, states)
        assert _possible_rule_keys(policy, lookup, states) == expected
        matched += bool(expected)
    assert matched > len(rules)  # the histories do match rules: the comparison is not vacuous


def test_actions_reading_recent_events_are_sent_those_and_the_rest_as_rasa_sends_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import ActionExecuted, BotUttered, SlotSet, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.utils.endpoints import EndpointConfig

    from bot.process_tuning import _RASAS_CALL_FORMAT, recent_action_history
    from contract.action_history import RECENT_HISTORY_ACTIONS

    domain = Domain.load(str(paths.REPO_ROOT / "domain.yml"))
    tracker = DialogueStateTracker("recent-history", domain.slots)
    tracker.update(ActionExecuted("action_listen"))
    for turn in range(12):
        tracker.update(UserUttered(f"question {turn}", {"name": "ask_cost", "confidence": 0.9}))
        tracker.update(ActionExecuted("action_answer_question"))
        tracker.update(BotUttered(f"answer {turn}"))
        tracker.update(SlotSet("last_entry", f"entry-{turn}"))
        tracker.update(ActionExecuted("action_listen"))
    tracker.update(UserUttered("the second one", {"name": "nlu_fallback", "confidence": 0.4}))
    endpoint = EndpointConfig("http://localhost:5055/webhook")
    rasas = _RASAS_CALL_FORMAT[0] if _RASAS_CALL_FORMAT else RemoteAction._action_call_format
    monkeypatch.setattr(RemoteAction, "_action_call_format", RemoteAction._action_call_format)  # restored after
    recent_action_history()
    listed = RemoteAction(sorted(RECENT_HISTORY_ACTIONS)[0], endpoint)
    theirs, ours = rasas(listed, tracker, domain), listed._action_call_format(tracker, domain)
    events = theirs["tracker"].pop("events")
    assert ours["tracker"].pop("events") == events[-6:]  # from the user's previous message on
    assert events[-6]["event"] == "user" and events[-6]["text"] == "question 11"
    assert ours == theirs  # the state in full: slots, latest message, loop, domain
    unlisted = RemoteAction("action_consultation_summary", endpoint)
    assert unlisted.name() not in RECENT_HISTORY_ACTIONS
    assert unlisted._action_call_format(tracker, domain) == rasas(unlisted, tracker, domain)


def test_rasa_freezes_what_is_alive_once_its_agent_is_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio
    import gc

    import rasa.core.run

    loaded = []

    async def load(*args: Any, **kwargs: Any) -> str:
        assert gc.get_freeze_count() == 0  # nothing frozen before the model is there
        loaded.append((args, kwargs))
        return "the agent"

    monkeypatch.setattr(rasa.core.run, "load_agent_on_start", load)
    gc.unfreeze()
    try:
        freeze_after_agent_load()
        freeze_after_agent_load()  # applied twice: still one wrapper
        assert asyncio.run(rasa.core.run.load_agent_on_start("model", None, None, "app", "loop")) \
            == "the agent"
        assert loaded == [(("model", None, None, "app", "loop"), {})]
        assert gc.get_freeze_count() > 10_000  # Rasa's modules, at least
    finally:
        gc.unfreeze()


def test_freezing_collects_first_so_no_garbage_is_kept() -> None:
    import gc
    import weakref

    class Node:
        pass

    cycle = Node()
    cycle.self = cycle  # type: ignore[attr-defined]
    gone = weakref.ref(cycle)
    del cycle
    gc.unfreeze()
    try:
        assert freeze_startup_objects() == gc.get_freeze_count() > 0
        assert gone() is None
    finally:
        gc.unfreeze()

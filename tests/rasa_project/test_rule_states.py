"""The rule policy on the states its rules can reach (bot.process_tuning.tail_rule_states).

Compared with Rasa's own: the trained model's rule policy predicts on long conversations
made of the test stories' conversations one after another (forms, slots, loops), with
reverted messages and actions and restarts mixed in, at every point where Rasa predicts.
The live tracker grows event by event, as in Rasa's processor (so the replay kept between
predictions is used); Rasa's prediction is made on a fresh copy.
"""

from __future__ import annotations

import contextlib
import random
from typing import Any, Iterator

import pytest
from rasa.core.agent import Agent
from rasa.core.policies.rule_policy import RULES, RULES_FOR_LOOP_UNHAPPY_PATH, RulePolicy
from rasa.shared.core.events import ActionExecuted
from rasa.shared.core.trackers import DialogueStateTracker

from bot import paths
from bot.process_tuning import EARLIER_TURNS_ACTION, _rule_window, _tail_prediction_states, tail_states

RASAS_STATES = RulePolicy._prediction_states


@pytest.fixture(scope="module")
def model() -> Any:
    path = paths.REPO_ROOT / "models" / "meso.tar.gz"
    if not path.is_file():
        pytest.fail("no trained model: run `make train`")
    processor = Agent.load(str(path)).processor
    policy = next(node._component for node in processor.graph_runner._instantiated_nodes.values()
                  if isinstance(node._component, RulePolicy))
    return processor.domain, policy


@pytest.fixture(scope="module")
def conversations(model: Any, mix_stories: Any) -> list[list[Any]]:
    """Long event sequences: 1 to 10 test stories one after another, some events reverted."""
    domain, _ = model
    return mix_stories(domain, 5, 40, 10)


@contextlib.contextmanager
def _states(method: Any) -> Iterator[None]:
    saved = RulePolicy._prediction_states
    RulePolicy._prediction_states = method  # type: ignore[method-assign]
    try:
        yield
    finally:
        RulePolicy._prediction_states = saved  # type: ignore[method-assign]


def _rule_keys(policy: Any) -> set:
    return {*policy.lookup[RULES], *policy.lookup.get(RULES_FOR_LOOP_UNHAPPY_PATH, {})}


def test_the_window_is_the_longest_rule(model: Any) -> None:
    _, policy = model
    window = _rule_window(policy)
    assert window == max(len(policy._rule_key_to_state(key)) for key in _rule_keys(policy))
    assert 2 <= window < 20


def test_predictions_are_rasas_at_every_step_of_long_conversations(model: Any, conversations: Any) -> None:
    domain, policy = model
    window, rule_keys = _rule_window(policy), _rule_keys(policy)
    predictions = longest = 0
    for events in conversations:
        live = DialogueStateTracker("rule-states-test", domain.slots)
        for event in events:
            if isinstance(event, ActionExecuted):
                with _states(RASAS_STATES):
                    expected, expected_source = policy._predict(live.copy(), domain)
                with _states(_tail_prediction_states):
                    got, source = policy._predict(live, domain)
                assert got == expected, [e.as_dict() for e in live.events][-8:]
                assert got.hide_rule_turn == expected.hide_rule_turn
                if expected_source in rule_keys:  # a rule predicted: the same rule
                    assert source == expected_source
                else:
                    assert source not in rule_keys
                predictions += 1
                longest = max(longest, len(live.applied_events()))
            live.update(event)
    assert predictions > 1500 and longest > 20 * window  # long conversations were compared


def test_only_the_states_rules_cannot_reach_are_replaced(model: Any, conversations: Any) -> None:
    domain, policy = model
    window = _rule_window(policy)
    for events in conversations[:10]:
        tracker = DialogueStateTracker.from_events("rule-states-test", events, domain.slots)
        full = domain.states_for_tracker_history(tracker)
        tail = tail_states(domain, tracker, window)
        if len(full) <= window + 1:
            assert tail == full
        else:
            assert tail[0] == {"prev_action": {"action_name": EARLIER_TURNS_ACTION}}
            assert tail[1:] == full[-window:]


def test_the_featurizer_may_change_the_states_it_is_given(model: Any, conversations: Any) -> None:
    """The replay kept on the tracker hands out copies: a caller's change stays its own."""
    domain, policy = model
    tracker = DialogueStateTracker.from_events("rule-states-test", conversations[0], domain.slots)
    first = tail_states(domain, tracker, _rule_window(policy))
    first[-1].clear()
    first[0].clear()
    assert tail_states(domain, tracker, _rule_window(policy)) == tail_states(
        domain, DialogueStateTracker.from_events("rule-states-test", conversations[0], domain.slots),
        _rule_window(policy))


def test_a_replay_carried_to_the_next_turns_tracker_continues_only_where_it_still_holds(
        model: Any, conversations: Any) -> None:
    """The tracker store hands one turn's replay to the next turn's tracker, read back from
    the database (equal events, other objects). It continues where the new tracker's applied
    events start with the ones replayed, and starts over where they do not (a revert, a
    restart, a loop run again, or another conversation)."""
    from bot.process_tuning import TAIL_REPLAY

    domain, policy = model
    window = _rule_window(policy)
    rng = random.Random(11)
    carried = restarted = 0
    for events in conversations:
        for _ in range(6):
            cut = rng.randint(1, len(events))
            later = rng.randint(cut, len(events))
            before = DialogueStateTracker.from_events("rule-states-test", events[:cut], domain.slots)
            tail_states(domain, before, window)
            replay = before.__dict__[TAIL_REPLAY]
            source = events[:later] if rng.random() < 0.8 else rng.choice(conversations)[:later]
            read_back = DialogueStateTracker.from_dict("rule-states-test", [e.as_dict() for e in source],
                                                       domain.slots)
            read_back.__dict__[TAIL_REPLAY] = replay
            got = tail_states(domain, read_back, window)
            fresh = DialogueStateTracker.from_dict("rule-states-test", [e.as_dict() for e in source], domain.slots)
            assert got == tail_states(domain, fresh, window)
            if read_back.__dict__[TAIL_REPLAY] is replay:
                carried += 1
            else:
                restarted += 1
    assert carried > 50 and restarted > 10  # both ways were taken

"""A tracker's applied events worked out from where the last call left them
(bot.process_tuning.incremental_applied_events), compared with Rasa's own.

The conversations are the test stories one after another (forms and their loops, slots),
with reverted messages and actions, restarts, session starts and rejected loop runs mixed
in; the live tracker grows event by event as in Rasa's processor, asked after every event,
and Rasa's answer is worked out on the same events from the start.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, ActionExecutionRejected, ActiveLoop, SessionStarted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot import paths
from bot.process_tuning import APPLIED_FOLD, _incremental_applied_events

RASAS: Callable[[DialogueStateTracker], list] = DialogueStateTracker.applied_events


@pytest.fixture(scope="module")
def domain() -> Domain:
    return Domain.load(str(paths.REPO_ROOT / "domain.yml"))


@pytest.fixture(scope="module")
def conversations(domain: Domain, mix_stories: Any) -> list[list[Any]]:
    out = mix_stories(domain, 7, 30, 8, rejected_forms=True, session_starts=True)
    assert any(isinstance(e, ActiveLoop) and e.name for events in out for e in events)
    assert any(isinstance(e, ActionExecutionRejected) for events in out for e in events)
    assert any(isinstance(e, SessionStarted) for events in out for e in events)
    return out


def test_the_same_applied_events_as_rasa_after_every_event(
        domain: Domain, conversations: list[list[Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(DialogueStateTracker, "applied_events", _incremental_applied_events)
    compared = continued = 0
    for events in conversations:
        live = DialogueStateTracker("applied-test", domain.slots)
        for event in events:
            live.update(event)
            fold = live.__dict__.get(APPLIED_FOLD)
            got = live.applied_events()
            expected = RASAS(live)
            assert [id(e) for e in got] == [id(e) for e in expected], [e.as_dict() for e in live.events][-8:]
            continued += fold is not None and live.__dict__[APPLIED_FOLD] is fold
            compared += 1
    assert compared > 2000 and continued > compared * 0.8  # mostly continued, not started over


def test_each_call_returns_a_list_of_its_own(domain: Domain, conversations: list[list[Any]],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(DialogueStateTracker, "applied_events", _incremental_applied_events)
    tracker = DialogueStateTracker.from_events("applied-test", conversations[0], domain.slots)
    first = tracker.applied_events()
    first.clear()
    assert tracker.applied_events() == RASAS(tracker) != []


def test_a_new_loop_starts_the_fold_over(domain: Domain, monkeypatch: pytest.MonkeyPatch) -> None:
    """A loop named for the first time changes how that loop's earlier runs fold."""
    monkeypatch.setattr(DialogueStateTracker, "applied_events", _incremental_applied_events)
    tracker = DialogueStateTracker("applied-test", domain.slots)
    for event in [ActionExecuted("action_listen"), UserUttered("hi"), ActionExecuted("some_form"),
                  ActionExecuted("action_listen"), UserUttered("more"), ActionExecuted("some_form")]:
        tracker.update(event)
    before = tracker.applied_events()
    assert before == RASAS(tracker)
    fold = tracker.__dict__[APPLIED_FOLD]
    tracker.update(ActiveLoop("some_form"))
    after = tracker.applied_events()
    assert tracker.__dict__[APPLIED_FOLD] is not fold
    assert after == RASAS(tracker)
    assert len(after) < len(before) + 1  # the loop's second run took the first one's turn back


def test_replaced_events_start_the_fold_over(domain: Domain, conversations: list[list[Any]],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(DialogueStateTracker, "applied_events", _incremental_applied_events)
    tracker = DialogueStateTracker.from_events("applied-test", conversations[1], domain.slots)
    tracker.applied_events()
    tracker._reset()  # Rasa replaces the deque
    for event in conversations[2]:
        tracker.update(event)
    assert tracker.applied_events() == RASAS(tracker)

"""A tracker copied from its state (bot.process_tuning.copy_trackers_by_state) is the tracker
Rasa's copy makes by replaying every event, and as independent of the original.

The conversations are the test stories one after another (forms, loops, slots) with
reverted messages and actions, restarts, session starts, rejected loop runs, bot messages,
follow-up actions, pauses, slot resets, loop interruptions and added entities mixed in.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import pytest
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted, ActionExecutionRejected, AllSlotsReset, BotUttered, ConversationPaused,
    ConversationResumed, EntitiesAdded, FollowupAction, LoopInterrupted, SlotSet, UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker, EventVerbosity

from bot import paths
from bot.process_tuning import _copy_by_state



def RASAS(tracker: DialogueStateTracker) -> DialogueStateTracker:  # noqa: N802
    """Rasa's copy: a new tracker given every event again (``DialogueStateTracker.copy``)."""
    return tracker.travel_back_in_time(float("inf"))


@pytest.fixture(scope="module")
def domain() -> Domain:
    return Domain.load(str(paths.REPO_ROOT / "domain.yml"))


def _extras(rng: random.Random, domain: Domain, event: Any) -> list[Any]:
    """Events that the test stories lack, mixed in after ``event`` now and then."""
    slot = rng.choice(domain.slots).name
    if isinstance(event, UserUttered) and rng.random() < 0.2:
        return [EntitiesAdded([{"entity": "area", "value": f"crown {rng.randint(1, 9)}"}])]
    if not isinstance(event, ActionExecuted) or rng.random() > 0.25:
        return []
    return [rng.choice([
        BotUttered(f"answer {rng.randint(1, 99)}", {"buttons": [{"title": "yes", "payload": "/affirm"}]}),
        FollowupAction("action_listen"),
        ConversationPaused(),
        ConversationResumed(),
        AllSlotsReset(),
        LoopInterrupted(rng.random() < 0.5),
        SlotSet(slot, ["a", "list"]),
        SlotSet(slot, None),
    ])]


@pytest.fixture(scope="module")
def conversations(domain: Domain, mix_stories: Any) -> list[list[Any]]:
    rng = random.Random(17)
    out = []
    for events in mix_stories(domain, 11, 8, 8, rejected_forms=True, session_starts=True):
        mixed: list[Any] = []
        for event in events:
            mixed.append(event)
            mixed.extend(_extras(rng, domain, event))
        out.append(mixed)
    kinds = {type(e) for events in out for e in events}
    assert {LoopInterrupted, ConversationPaused, AllSlotsReset, EntitiesAdded, BotUttered,
            ActionExecutionRejected} <= kinds
    return out


def state(tracker: DialogueStateTracker) -> dict[str, Any]:
    """Everything a tracker holds, events and the latest messages by identity."""
    return {
        "current_state": tracker.current_state(EventVerbosity.ALL),
        "events": [id(e) for e in tracker.events],
        "maxlen": tracker.events.maxlen,
        "slots": {name: (type(slot), dict(vars(slot))) for name, slot in tracker.slots.items()},
        "slots_type": type(tracker.slots),
        "paused": tracker._paused,
        "followup_action": tracker.followup_action,
        "latest_action": tracker.latest_action,
        "latest_message": id(tracker.latest_message) if tracker.latest_message.text else tracker.latest_message,
        "latest_bot_utterance": (id(tracker.latest_bot_utterance) if tracker.latest_bot_utterance.text
                                 else tracker.latest_bot_utterance),
        "active_loop": None if tracker.active_loop is None else dataclasses.asdict(tracker.active_loop),
        "ids": (tracker.sender_id, tracker.sender_source, tracker.model_id, tracker.assistant_id),
        "rule": tracker.is_rule_tracker,
        "attributes": sorted(k for k in vars(tracker) if not k.startswith("_meso")),
    }


def differences(one: DialogueStateTracker, other: DialogueStateTracker) -> dict[str, Any]:
    """What differs between two trackers' :func:`state`, by part."""
    a, b = state(one), state(other)
    return {key: (a[key], b[key]) for key in a if a[key] != b[key]}


def _independent(original: DialogueStateTracker, copied: DialogueStateTracker, domain: Domain) -> None:
    """Changing the copy (as Rasa's processor changes its temporary tracker) leaves the original."""
    before = state(original)
    slot = domain.slots[0].name
    for event in [ActionExecutionRejected(copied.active_loop_name or "some_form"), LoopInterrupted(True),
                  SlotSet(slot, "changed"), EntitiesAdded([{"entity": "x", "value": "y"}]),
                  FollowupAction("utter_goodbye"), ConversationPaused()]:
        copied.update(event)
    if copied.active_loop is not None:
        copied.active_loop.rejected = not copied.active_loop.rejected
    if copied.latest_action is not None:
        copied.latest_action["action_name"] = "changed"
    assert state(original) == before


def test_the_same_copy_as_rasas_after_every_event(domain: Domain, conversations: list[list[Any]]) -> None:
    compared = 0
    for events in conversations:
        live = DialogueStateTracker("copy-test", domain.slots)
        live.model_id, live.assistant_id, live.sender_source = "model", "assistant", "source"
        for event in events:
            live.update(event)
            ours, rasas = _copy_by_state(live), RASAS(live)
            assert ours is not live and ours.events is not live.events
            assert not differences(ours, rasas), [e.as_dict() for e in live.events][-4:]
            _independent(live, ours, domain)
            compared += 1
    assert compared > 500


def test_a_copy_goes_on_as_rasas_does(domain: Domain, conversations: list[list[Any]]) -> None:
    """The copy and Rasa's, each given the rest of the conversation, stay the same."""
    for events in conversations:
        cut = len(events) // 2
        live = DialogueStateTracker.from_events("copy-test", events[:cut], domain.slots)
        ours, rasas = _copy_by_state(live), RASAS(live)
        for event in events[cut:]:
            ours.update(event)
            rasas.update(event)
            assert not differences(ours, rasas)


def test_a_capped_history_is_copied_by_replay(domain: Domain) -> None:
    """Events dropped from a capped history can leave state no replay gives back: Rasa's copy."""
    slot = domain.slots[0].name
    live = DialogueStateTracker("copy-test", domain.slots, max_event_history=20)
    live.update(SlotSet(slot, "set early"))
    for turn in range(12):
        live.update(ActionExecuted("action_listen"))
        live.update(UserUttered(f"message {turn}", {"name": "greet", "confidence": 1.0}))
    assert len(live.events) == 20 and live.get_slot(slot) == "set early"
    ours, rasas = _copy_by_state(live), RASAS(live)
    assert not differences(ours, rasas)
    assert ours.get_slot(slot) != "set early"  # the replay's state, not the original's


def test_slots_made_on_demand_are_copied_by_replay(conversations: list[list[Any]]) -> None:
    live = DialogueStateTracker("copy-test", None)
    live.update(SlotSet("anything", "value"))
    for event in conversations[1][:30]:
        live.update(event)
    assert not differences(_copy_by_state(live), RASAS(live))

"""Build rasa_sdk trackers the way Rasa would send them to the action server."""

from __future__ import annotations

from typing import Any

import pytest
from rasa_sdk import Tracker


def _user_event(text: str, intent: str, confidence: float) -> dict[str, Any]:
    return {"event": "user", "text": text,
            "parse_data": {"intent": {"name": intent, "confidence": confidence}}}


def make_tracker(
    text: str,
    intent: str,
    confidence: float = 0.9,
    ranking: list[tuple[str, float]] | None = None,
    entities: list[dict[str, Any]] | None = None,
    previous: str | None = None,
    slots: dict[str, Any] | None = None,
) -> Tracker:
    ranking = ranking or [(intent, confidence)]
    latest = {
        "text": text,
        "intent": {"name": intent, "confidence": confidence},
        "intent_ranking": [{"name": n, "confidence": c} for n, c in ranking],
        "entities": entities or [],
    }
    events: list[dict[str, Any]] = [{"event": "action", "name": "action_listen"}]
    if previous:
        events += [_user_event(previous, "ask", 0.9), {"event": "action", "name": "action_answer_question"},
                   {"event": "action", "name": "action_listen"}]
    events.append(_user_event(text, intent, confidence))
    return Tracker("test-conversation", slots or {}, latest, events, False, None, {}, "action_listen")


@pytest.fixture
def tracker_factory():
    return make_tracker

"""Long conversations for comparing the process tuning with Rasa's own behaviour."""

from __future__ import annotations

import random
from typing import Any, Callable

import pytest

MixStories = Callable[..., list[list[Any]]]


@pytest.fixture(scope="session")
def mix_stories() -> MixStories:
    """``mix(domain, seed, count, most)``: ``count`` conversations, each 1 to ``most`` test
    stories one after another (forms, slots, loops), with reverted messages (5% of them) and
    actions (3%) and restarts mixed in; optionally rejected form runs (20%) and session starts."""
    from rasa.core.training import load_data
    from rasa.shared.core.events import (
        ActionExecuted, ActionExecutionRejected, ActionReverted, Restarted, SessionStarted, UserUttered,
        UserUtteranceReverted,
    )

    from bot import paths

    def mix(domain: Any, seed: int, count: int, most: int, *, rejected_forms: bool = False,
            session_starts: bool = False) -> list[list[Any]]:
        stories = [list(t.events) for t in load_data(str(paths.REPO_ROOT / "tests" / "stories"), domain,
                                                       augmentation_factor=0)]
        rng = random.Random(seed)
        out = []
        for _ in range(count):
            events: list[Any] = []
            for story in rng.sample(stories, rng.randint(1, most)):
                for event in story:
                    events.append(event)
                    roll = rng.random()
                    if isinstance(event, UserUttered) and roll < 0.05:
                        events.append(UserUtteranceReverted())
                    elif isinstance(event, ActionExecuted) and roll < 0.03:
                        events.append(ActionReverted())
                    elif rejected_forms and isinstance(event, ActionExecuted) and \
                            (event.action_name or "").endswith("_form") and roll < 0.2:
                        events.append(ActionExecutionRejected(event.action_name))
                    elif roll < 0.003:
                        events.append(Restarted())
                    elif session_starts and roll < 0.007:
                        events.append(SessionStarted())
            out.append(events)
        return out

    return mix

"""The retriever's reading of short follow-ups, on the real built knowledge base."""

from __future__ import annotations

from typing import Any

import pytest

from bot.kb.retriever import Retriever

FOUR_TERMS = {"hair": 1.0, "fall": 1.0, "more": 1.0, "permanent": 1.0}


@pytest.mark.parametrize("text, follows", [
    ("the one where your hair falls out more, is that permanent?", True),
    ("the gun one, is it quicker?", True),
    ("which of those hurts least", True),
    ("and is the hair loss permanent", True),
    ("hair falling out more, is it permanent", False),
    ("the results of the hair study were small", False),
])
def test_a_message_that_opens_by_pointing_at_a_list_is_a_follow_up(text: str, follows: bool) -> None:
    assert Retriever.is_follow_up(text, FOUR_TERMS) is follows


def test_a_pointing_follow_up_is_resolved_within_the_previous_answer(runtime: Any) -> None:
    result = runtime.retriever.search(
        "what if its flaring right now", intent_ranking=[("out_of_scope", 0.52), ("ask_side_effects", 0.21)],
        previous_text="can i have it if i have psoriasis on my scalp", previous_entry="candidacy-scalp-flare")
    assert result.resolved and result.best.entry.topic == "candidacy"


@pytest.mark.parametrize("text, previous_entry", [
    ("is it raining there today", "candidacy-scalp-flare"),
    ("how much is one session", "candidacy-scalp-flare"),  # a new question, not pointing back
])
def test_a_message_that_does_not_point_back_is_not_resolved(runtime: Any, text: str, previous_entry: str) -> None:
    result = runtime.retriever.search(text, intent_ranking=[("out_of_scope", 0.6)],
                                      previous_text="can i have it if i have psoriasis on my scalp",
                                      previous_entry=previous_entry)
    assert not result.resolved

"""Options none of the five sources cover (hair transplants, wigs, camouflage): the
knowledge says so plainly, names who can explain them, and the retriever finds it."""

from __future__ import annotations

from typing import Any

import pytest

ENTRY = "alternatives-not-covered"


def test_the_entry_says_the_sources_do_not_cover_them_and_who_can_explain(runtime: Any) -> None:
    entry = runtime.kb.entries[ENTRY]
    answer = entry.answer.lower()
    for words in ("not covered by any of our five sources", "hair transplant", "wigs", "hairpieces",
                  "hair fibres", "micropigmentation", "how long they last", "what can go wrong",
                  "gp", "dermatologist", "hair-restoration surgeon", "advanced"):
        assert words in answer, words
    assert entry.certainty == "very-low" and entry.figures == ()
    assert "candidacy-advanced-hair-loss" in entry.related


def test_the_overview_of_alternatives_and_advanced_hair_loss_lead_to_it(runtime: Any) -> None:
    kb = runtime.kb
    assert "hair transplants" in kb.entries["alternatives-overview"].answer
    assert ENTRY in kb.entries["alternatives-overview"].related
    # shown as one of the three related questions of the advanced hair loss answer
    assert ENTRY in kb.entries["candidacy-advanced-hair-loss"].related[:3]


@pytest.mark.parametrize("text", [
    "Would a hair transplant be better?",
    "what about a hair transplant",
    "fue vs meso",
    "is a transplant permanent",
    "is a hair transplant better than mesotherapy for a receding hairline",
    "should i just get a wig instead",
    "what about a wig or a hairpiece instead",
    "could scalp micropigmentation hide it instead of injections",
])
def test_transplant_and_camouflage_questions_find_the_entry(runtime: Any, text: str) -> None:
    result = runtime.retriever.search(text, [("ask_alternatives", 0.9)])
    assert result.confident and result.best.entry.id == ENTRY, (result.best.entry.id, result.confidence)


@pytest.mark.parametrize("text, entry", [
    ("what about minoxidil", "alternatives-minoxidil"),
    ("what if i do nothing", "alternatives-doing-nothing"),
    ("is prp better", "alternatives-prp"),
])
def test_other_alternatives_questions_keep_their_entries(runtime: Any, text: str, entry: str) -> None:
    result = runtime.retriever.search(text, [("ask_alternatives", 0.9)])
    assert result.best.entry.id == entry


def test_a_transplant_follow_up_after_prp_finds_the_entry(runtime: Any) -> None:
    result = runtime.retriever.search("and a hair transplant?", [("ask_alternatives", 0.85)],
                                      previous_text="is prp better than meso", previous_entry="alternatives-prp")
    assert result.confident and result.best.entry.id == ENTRY

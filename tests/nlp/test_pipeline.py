"""The rule-based spaCy pipeline: lemmas, kept question words, and canonical entity names."""

from __future__ import annotations

import pytest

from bot.nlp.pipeline import Normaliser, build_pipeline


@pytest.fixture(scope="module")
def normaliser() -> Normaliser:
    return Normaliser(build_pipeline())


def test_lemmas_and_topic_words_survive(normaliser: Normaliser) -> None:
    terms = normaliser.analyse("How many sessions would I need?").terms
    assert "session" in terms and "many" in terms
    assert "would" not in terms and "i" not in terms


@pytest.mark.parametrize("text, label, canonical", [
    ("is rogaine better", "DRUG", "minoxidil"),
    ("im on warfarin", "DRUG", "anticoagulant"),
    ("can i have it if im pregnant", "CONDITION", "pregnancy"),
    ("what about mesotherpy", "TREATMENT", "mesotherapy"),
    ("I have seb derm", "CONDITION", "dermatitis"),
])
def test_brand_names_lay_words_and_typos_map_to_one_name(normaliser: Normaliser, text: str, label: str, canonical: str) -> None:
    assert (label, canonical) in normaliser.analyse(text).entities


def test_a_saved_pipeline_loads_the_same(tmp_path, normaliser: Normaliser) -> None:
    from bot.nlp.pipeline import load_pipeline

    nlp = build_pipeline()
    nlp.to_disk(tmp_path / "p")
    loaded = Normaliser(load_pipeline(tmp_path / "p"))
    text = "Does finasteride cause shedding after sessions?"
    assert loaded.analyse(text) == normaliser.analyse(text)

"""Sentence similarity to the entries' question forms: built once, loaded, used in ranking."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bot.kb.semantic import IDS_FILE, SemanticIndex, scaled
from bot.nlp.encoder import shared_encoder


@pytest.fixture(scope="module")
def index(built_dir: Path) -> SemanticIndex:
    return SemanticIndex.load(built_dir)


def _top(index: SemanticIndex, text: str) -> str:
    similarities = index.similarities(text, shared_encoder())
    return max(similarities, key=similarities.__getitem__)


def test_every_question_form_has_a_unit_vector(index: SemanticIndex, runtime: Any) -> None:
    expected = sum(len(e.questions) for e in runtime.kb.entries.values())
    assert len(index.entry_ids) == expected == len(index.vectors)
    assert set(index.entry_ids) == set(runtime.kb.entries)
    assert np.allclose(np.linalg.norm(index.vectors, axis=1), 1.0, atol=1e-4)


@pytest.mark.parametrize("text, entry", [
    ("will they use an anaesthetic so i dont feel it", "pain-numbing-and-sensitivity"),
    ("has any regulator approved it", "regulation-approval"),
    ("would a hair transplant be better than this", "alternatives-not-covered"),
    ("what about fue instead", "alternatives-not-covered"),
])
def test_a_paraphrase_is_closest_to_its_entry(index: SemanticIndex, text: str, entry: str) -> None:
    assert _top(index, text) == entry


def test_unrelated_text_scores_near_zero_and_empty_text_scores_nothing(index: SemanticIndex) -> None:
    similarities = index.similarities("whats the weather in paris", shared_encoder())
    assert max(similarities.values()) < 0.2
    assert index.similarities("   ", shared_encoder()) == {}


def test_scaled_maps_cosines_onto_zero_to_one() -> None:
    assert scaled(-0.3) == 0.0
    assert scaled(0.99) == 1.0
    assert 0.0 < scaled(0.5) < 1.0


def test_load_rejects_vectors_that_do_not_match_their_ids(built_dir: Path, tmp_path: Path) -> None:
    index = SemanticIndex.load(built_dir)
    index.save(tmp_path)
    ids = json.loads((tmp_path / IDS_FILE).read_text())
    (tmp_path / IDS_FILE).write_text(json.dumps(ids[:-1]))
    with pytest.raises(ValueError, match="make kb"):
        SemanticIndex.load(tmp_path)


def test_the_retriever_answers_a_paraphrase_the_intents_split_on(runtime: Any) -> None:
    result = runtime.retriever.search("will they use an anaesthetic so i dont feel it",
                                      [("ask_pain", 0.5), ("ask_procedure", 0.4)])
    assert result.confident
    assert result.best.entry.id == "pain-numbing-and-sensitivity"


class _NoEncoder:
    def encode(self, texts: list[str]) -> np.ndarray:
        raise AssertionError(f"encoded {texts!r}: the scores were given")


def test_packed_scores_unpack_to_the_same_similarities(index: SemanticIndex) -> None:
    texts = ["does it hurt", "how much per session, roughly?"]
    packed = index.pack(texts, shared_encoder().encode(texts))
    assert all(len(v) < 400 for v in packed["texts"].values())  # small enough for every parse
    unpacked = index.unpack(packed)
    for text in texts:
        expected = index.similarities(text, shared_encoder())
        assert unpacked[text].keys() == expected.keys()
        assert max(abs(unpacked[text][k] - expected[k]) for k in expected) < 2e-5


def test_scores_packed_for_another_index_or_malformed_are_not_used(index: SemanticIndex) -> None:
    texts = ["does it hurt"]
    packed = index.pack(texts, shared_encoder().encode(texts))
    other = SemanticIndex(index.entry_ids[:-1], index.vectors[:-1])
    assert other.digest != index.digest and other.unpack(packed) == {}
    assert index.unpack({**packed, "texts": {"does it hurt": "not base64!"}}) == {}
    assert index.unpack({**packed, "texts": {"does it hurt": "AAAA"}}) == {}  # wrong length
    assert index.unpack(None) == {} and index.unpack("x") == {}


def test_the_retriever_searches_given_scores_without_encoding(runtime: Any, built_dir: Path) -> None:
    from bot.kb.retriever import Retriever

    text = "will my scalp go numb first?"
    expected = runtime.retriever.search(text)
    index = SemanticIndex.load(built_dir)
    retriever = Retriever(runtime.kb, runtime.retriever._index, runtime.normaliser, index, _NoEncoder())
    assert retriever.take_scores(index.pack([text], shared_encoder().encode([text]))) == 1
    retriever.prepare([text])  # nothing left to encode
    found = retriever.search(text)
    assert found.best.entry.id == expected.best.entry.id
    assert found.best.score == pytest.approx(expected.best.score, abs=1e-4)
    assert found.confident == expected.confident
    with pytest.raises(AssertionError, match="encoded"):
        retriever.search("a text nobody scored")

"""The intent classifier encodes each message once, and hands the entry scores on.

A small classifier is trained here on a handful of examples (the real model is exercised
through the whole stack in the integration tests); what matters is the prediction path:
one encoding per message, the same intent probabilities as the full feature matrix gives,
and the message's entry scores in its parse data, equal to what the action server would
compute itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

EXAMPLES = {
    "ask_cost": ["how much is it", "what does a session cost", "price per visit", "is it expensive"],
    "ask_pain": ["does it hurt", "is it painful", "will i feel the needles", "how sore is it after"],
    "greet": ["hi", "hello there", "good morning", "hey"],
}


class CountingEncoder:
    """The real encoder, counting the batches it is asked to encode."""

    def __init__(self) -> None:
        from bot.nlp.encoder import shared_encoder

        self.real = shared_encoder()
        self.calls: list[list[str]] = []

    def encode(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return self.real.encode(texts)


def _train(folder: Path) -> tuple[Any, Any, Any, Any]:
    from rasa.engine.graph import ExecutionContext, GraphSchema
    from rasa.engine.storage.local_model_storage import LocalModelStorage
    from rasa.engine.storage.resource import Resource
    from rasa.shared.nlu.training_data.message import Message
    from rasa.shared.nlu.training_data.training_data import TrainingData

    from bot.nlu.intent_classifier import MiniLMIntentClassifier

    storage, resource = LocalModelStorage(folder), Resource("intent_classifier")
    context = ExecutionContext(GraphSchema({}), "test")
    config = {**MiniLMIntentClassifier.get_default_config(), "max_iter": 500}
    data = TrainingData([Message(data={"text": t, "intent": i}) for i, ts in EXAMPLES.items() for t in ts])
    MiniLMIntentClassifier.create(config, storage, resource, context).train(data)
    return MiniLMIntentClassifier, config, (storage, resource, context), Message


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any, Any, Any]:
    return _train(tmp_path_factory.mktemp("model"))


def _load(trained: tuple[Any, Any, Any, Any], build: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    cls, config, (storage, resource, context), _ = trained
    monkeypatch.setenv("MESO_BUILD_DIR", str(build))
    return cls.load(config, storage, resource, context)


def _parse(classifier: Any, message_cls: Any, text: str) -> Any:
    message = message_cls(data={"text": text})
    classifier.process([message])
    return message


COMPOUND = "how much does it cost? and does it hurt a lot?"


def test_a_message_and_its_pieces_are_encoded_in_one_batch(
        trained: Any, built_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import bot.nlu.intent_classifier as module

    classifier = _load(trained, built_dir, monkeypatch)
    counting = CountingEncoder()
    monkeypatch.setattr(module, "shared_encoder", lambda: counting)
    message = _parse(classifier, trained[3], COMPOUND)
    pieces = [p["text"] for p in message.get(module.READING_KEY)["pieces"]]
    assert len(pieces) == 2
    assert counting.calls == [[COMPOUND, *pieces]]


def test_the_split_weights_give_the_full_feature_matrix_probabilities(
        trained: Any, built_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.nlp.encoder import shared_encoder

    classifier = _load(trained, built_dir, monkeypatch)
    texts = ["how much is one visit", "does the scalp get sore", "hello!", COMPOUND]
    full = np.asarray(classifier._features(texts) @ classifier._coef.T.astype(np.float64) + classifier._intercept)
    full = np.exp(full - full.max(axis=1, keepdims=True))
    full /= full.sum(axis=1, keepdims=True)
    assert np.allclose(classifier._probabilities(texts, shared_encoder().encode(texts)), full, atol=1e-6)


def test_the_entry_scores_travel_in_the_parse_data(
        trained: Any, built_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.kb.semantic import SIMILARITIES_KEY, SemanticIndex
    from bot.nlp.encoder import shared_encoder

    classifier = _load(trained, built_dir, monkeypatch)
    message = _parse(classifier, trained[3], COMPOUND)
    assert SIMILARITIES_KEY in message.as_dict(only_output_properties=True)
    index = SemanticIndex.load(built_dir)
    scored = index.unpack(message.get(SIMILARITIES_KEY))
    pieces = [p["text"] for p in message.get("reading")["pieces"]]
    assert set(scored) == {COMPOUND, *pieces}
    for text, scores in scored.items():
        expected = index.similarities(text, shared_encoder())
        assert scores.keys() == expected.keys()
        assert max(abs(scores[k] - expected[k]) for k in expected) < 1e-4


def test_without_a_knowledge_build_it_still_classifies_and_sends_no_scores(
        trained: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.kb.semantic import SIMILARITIES_KEY

    classifier = _load(trained, tmp_path, monkeypatch)
    message = _parse(classifier, trained[3], "how much is it per session")
    assert message.get("intent")["name"] == "ask_cost"
    assert message.get(SIMILARITIES_KEY) is None


def test_a_command_gets_no_scores(trained: Any, built_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.kb.semantic import SIMILARITIES_KEY

    classifier = _load(trained, built_dir, monkeypatch)
    assert _parse(classifier, trained[3], "/greet").get(SIMILARITIES_KEY) is None

"""The gibberish filter: trained on the vocabulary, saved, loaded, and applied after the classifier."""

from __future__ import annotations

from pathlib import Path

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.gibberish import FALLBACK_INTENT, GibberishFilter

TRAINING = ["how much is meso", "what is mesotherapy", "does it hurt tho", "lol ok", "whats prp", "bye"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> GibberishFilter:
    storage = LocalModelStorage(tmp_path_factory.mktemp("model"))
    resource = Resource("gibberish")
    context = ExecutionContext(GraphSchema({}), "test")
    component = GibberishFilter.create({}, storage, resource, context)
    component.train(TrainingData([Message(data={TEXT: t, INTENT: "x"}) for t in TRAINING]))
    return GibberishFilter.load({}, storage, resource, context)


def _classified(text: str, intent: str = "goodbye") -> Message:
    ranking = [{"name": intent, "confidence": 0.6}, {"name": "greet", "confidence": 0.3}]
    return Message(data={TEXT: text, INTENT: ranking[0], INTENT_RANKING_KEY: ranking})


@pytest.mark.parametrize("text", ["xcvbn mmm ,,", "jjjjjjjj", "ghj 7732 kkp;", "aaaaaaaaaaa"])
def test_keyboard_mash_becomes_fallback_and_keeps_the_ranking(trained: GibberishFilter, text: str) -> None:
    [message] = trained.process([_classified(text)])
    assert message.get(INTENT)["name"] == FALLBACK_INTENT
    assert [r["name"] for r in message.get(INTENT_RANKING_KEY)] == [FALLBACK_INTENT, "goodbye", "greet"]


@pytest.mark.parametrize("text", [
    "bye", "lol ok", "whats prp",            # words of the training data
    "is it safe for women",                  # English words the training data lacks
    "mesotherapyy??", "finasterid or meso",  # a typo of a training word
    "how much is meso in £",
])
def test_messages_with_a_real_word_keep_their_intent(trained: GibberishFilter, text: str) -> None:
    [message] = trained.process([_classified(text, "ask_cost")])
    assert message.get(INTENT)["name"] == "ask_cost"


def test_untrained_filter_changes_nothing(tmp_path: Path) -> None:
    storage = LocalModelStorage(tmp_path)
    context = ExecutionContext(GraphSchema({}), "test")
    empty = GibberishFilter.load({}, storage, Resource("missing"), context)
    [message] = empty.process([_classified("xcvbn")])
    assert message.get(INTENT)["name"] == "goodbye"

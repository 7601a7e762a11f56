"""Mark keyboard mash ("xcvbn mmm", "jjjjjjjj") as ``nlu_fallback``.

A classifier always picks some intent, and for a string of no words at all it may pick
"goodbye" with middling confidence. This component runs after the intent classifier: when
not one word of the message is English (spaCy's English lemma tables), a word of the
training data, or a typo of one, the intent becomes ``nlu_fallback``, whatever the
classifier said. The ranking is kept, so the answer action can still read it.

Persisted: the training vocabulary, as JSON.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from contract.safety.edits import edit_distance, typo_limit

logger = logging.getLogger(__name__)

FALLBACK_INTENT = "nlu_fallback"
_WORD = re.compile(r"[a-z]+")
_VOCABULARY_FILE = "vocabulary.json"


@lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    """Every word form in spaCy's English lemma lookup table (about 67,000)."""
    import spacy_lookups_data

    path = Path(spacy_lookups_data.__file__).parent / "data" / "en_lemma_lookup.json.gz"
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        table = json.load(handle)
    return frozenset(w.lower() for w in (*table.keys(), *table.values()))


def words_of(text: str) -> list[str]:
    return _WORD.findall(text.lower())


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True)
class GibberishFilter(GraphComponent):
    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {}

    def __init__(self, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
                 vocabulary: frozenset[str] = frozenset()) -> None:
        self._config = {**self.get_default_config(), **config}
        self._storage = model_storage
        self._resource = resource
        self._vocabulary = vocabulary
        self._by_initial: dict[str, list[str]] = {}
        for word in sorted(vocabulary):
            self._by_initial.setdefault(word[0], []).append(word)

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "GibberishFilter":
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        vocabulary = sorted({w for m in training_data.training_examples for w in words_of(m.get(TEXT) or "")})
        with self._storage.write_to(self._resource) as folder:
            (Path(folder) / _VOCABULARY_FILE).write_text(json.dumps(vocabulary), encoding="utf-8")
        return self._resource

    @classmethod
    def load(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> "GibberishFilter":
        try:
            with model_storage.read_from(resource) as folder:
                vocabulary = json.loads((Path(folder) / _VOCABULARY_FILE).read_text(encoding="utf-8"))
        except (ValueError, FileNotFoundError):
            logger.warning("GibberishFilter: no trained vocabulary found; it will not filter")
            return cls(config, model_storage, resource)
        english_words()  # read the table now, not on the first message
        return cls(config, model_storage, resource, frozenset(vocabulary))

    # -- the check ------------------------------------------------------------------
    def _known(self, word: str) -> bool:
        if word in self._vocabulary or word in english_words():
            return True
        if len(word) < 4:
            return False
        limit = typo_limit(word)
        return any(
            abs(len(known) - len(word)) <= limit and edit_distance(word, known, limit) <= limit
            for known in self._by_initial.get(word[0], ())
        )

    def is_gibberish(self, text: str) -> bool:
        """True when the text has letters but no word this assistant could know."""
        words = words_of(text)
        return bool(words) and not any(self._known(w) for w in words)

    def process(self, messages: List[Message]) -> List[Message]:
        if not self._vocabulary:
            return messages
        for message in messages:
            text = message.get(TEXT)
            if not text or text.startswith("/") or not self.is_gibberish(text):
                continue
            ranking = [r for r in message.get(INTENT_RANKING_KEY) or [] if r.get("name") != FALLBACK_INTENT]
            fallback = {"name": FALLBACK_INTENT, "confidence": 1.0}
            message.set(INTENT, fallback, add_to_output=True)
            message.set(INTENT_RANKING_KEY, [fallback, *ranking], add_to_output=True)
        return messages

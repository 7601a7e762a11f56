"""An intent classifier on sentence embeddings plus word and character n-grams.

Rasa's sparse n-gram features alone confuse paraphrases ("who shouldn't get it" is not
a history question); MiniLM sentence embeddings (bot.nlp.encoder) carry meaning, and
character n-grams keep typos close. A multinomial logistic regression over both gives
calibrated probabilities for the whole intent ranking, which the knowledge action uses.

Persisted as plain arrays and JSON (no pickles): vocabularies, idf weights, coefficients.

Each message is encoded once. When the knowledge base is built (``make kb``: the entries'
question vectors, bot.kb.semantic), the same vectors also score the message and its pieces
against every entry, and the scores go on in the parse data (``SIMILARITIES_KEY``): the
action server's retriever reads them instead of encoding the message again.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Text

import numpy as np
import scipy.sparse as sp
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from bot import paths
from bot.kb.semantic import SIMILARITIES_KEY, SemanticIndex
from bot.nlp.encoder import shared_encoder
from bot.nlp.segments import read

# The parse-data key holding the message read in pieces (bot.nlp.segments): each piece's
# text, whether it asks something, and its own intent ranking. The safety gate checks every
# piece; action_answer_question answers each question.
READING_KEY = "reading"
# A message with a story or a statement besides its questions ("no fever, nothing like that,
# just want to know how much it is") leans on its questions (this share) over the whole.
QUESTION_WEIGHT = 0.6
PIECE_RANKING_LENGTH = 5

logger = logging.getLogger(__name__)

_VECTORIZERS = {
    "words": {"analyzer": "word", "ngram_range": (1, 2), "sublinear_tf": True, "min_df": 1},
    "chars": {"analyzer": "char_wb", "ngram_range": (2, 5), "sublinear_tf": True, "min_df": 1},
}


def _vectorizer(name: str, vocabulary: dict[str, int] | None = None) -> TfidfVectorizer:
    options = dict(_VECTORIZERS[name])
    options["ngram_range"] = tuple(options["ngram_range"])
    return TfidfVectorizer(lowercase=True, vocabulary=vocabulary, **options)


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True)
class MiniLMIntentClassifier(GraphComponent, IntentClassifier):
    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            "C": 50.0,  # inverse regularisation strength of the logistic regression
            "embedding_weight": 2.0,  # scale of the embedding block against the n-grams
            "max_iter": 3000,
            "random_state": 42,
            "ranking_length": 10,
        }

    def __init__(self, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
                 vectorizers: Optional[Dict[str, TfidfVectorizer]] = None,
                 coef: Optional[np.ndarray] = None, intercept: Optional[np.ndarray] = None,
                 classes: Optional[List[str]] = None, semantic: Optional[SemanticIndex] = None) -> None:
        self._config = {**self.get_default_config(), **config}
        self._storage = model_storage
        self._resource = resource
        self._vectorizers = vectorizers or {}
        self._coef = coef
        self._intercept = intercept
        self._classes = classes or []
        self._semantic = semantic
        self._sparse_weights: Optional[np.ndarray] = None
        self._dense_weights: Optional[np.ndarray] = None
        if coef is not None:
            self._split_weights()

    def _split_weights(self) -> None:
        """The coefficients as two contiguous (features x intents) blocks: the n-gram part
        multiplies the sparse n-gram features, the last 384 columns the sentence vector."""
        assert self._coef is not None
        ngrams = sum(len(getattr(v, "vocabulary_", None) or v.vocabulary) for v in self._vectorizers.values())
        coef = self._coef.astype(np.float64)
        self._sparse_weights = np.ascontiguousarray(coef[:, :ngrams].T)
        self._dense_weights = np.ascontiguousarray(coef[:, ngrams:].T * self._config["embedding_weight"])

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "MiniLMIntentClassifier":
        return cls(config, model_storage, resource)

    # -- features -------------------------------------------------------------------
    def _ngrams(self, texts: List[str]) -> sp.csr_matrix:
        return sp.hstack([self._vectorizers[name].transform(texts) for name in _VECTORIZERS]).tocsr()

    def _features(self, texts: List[str]) -> sp.csr_matrix:
        embeddings = shared_encoder().encode(texts) * self._config["embedding_weight"]
        return sp.hstack([self._ngrams(texts), sp.csr_matrix(embeddings)]).tocsr()

    # -- training -------------------------------------------------------------------
    def train(self, training_data: TrainingData) -> Resource:
        examples = [m for m in training_data.intent_examples if m.get(TEXT) and m.get(INTENT)]
        texts = [m.get(TEXT) for m in examples]
        labels = [m.get(INTENT) for m in examples]
        if len(set(labels)) < 2:
            logger.warning("MiniLMIntentClassifier needs at least two intents; not trained")
            return self._resource
        self._vectorizers = {name: _vectorizer(name) for name in _VECTORIZERS}
        for vectorizer in self._vectorizers.values():
            vectorizer.fit(texts)
        model = LogisticRegression(C=self._config["C"], max_iter=self._config["max_iter"],
                                   random_state=self._config["random_state"])
        model.fit(self._features(texts), labels)
        self._coef = model.coef_.astype(np.float32)
        self._intercept = model.intercept_.astype(np.float32)
        self._classes = [str(c) for c in model.classes_]
        self._split_weights()
        self._persist()
        return self._resource

    def _persist(self) -> None:
        with self._storage.write_to(self._resource) as folder:
            folder = Path(folder)
            meta = {"classes": self._classes, "vocabularies": {}}
            for name, vectorizer in self._vectorizers.items():
                meta["vocabularies"][name] = {k: int(v) for k, v in vectorizer.vocabulary_.items()}
                np.save(folder / f"idf_{name}.npy", vectorizer.idf_.astype(np.float64))
            (folder / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
            np.save(folder / "coef.npy", self._coef)
            np.save(folder / "intercept.npy", self._intercept)

    @classmethod
    def load(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> "MiniLMIntentClassifier":
        try:
            with model_storage.read_from(resource) as folder:
                folder = Path(folder)
                meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
                vectorizers = {}
                for name, vocabulary in meta["vocabularies"].items():
                    vectorizer = _vectorizer(name, vocabulary)
                    vectorizer.idf_ = np.load(folder / f"idf_{name}.npy")
                    vectorizers[name] = vectorizer
                coef = np.load(folder / "coef.npy")
                intercept = np.load(folder / "intercept.npy")
        except (ValueError, FileNotFoundError):
            logger.warning("MiniLMIntentClassifier: no trained model found; it will not classify")
            return cls(config, model_storage, resource)
        shared_encoder()  # load the weights now, not on the first message
        return cls(config, model_storage, resource, vectorizers, coef, intercept, meta["classes"],
                   semantic=_built_semantic_index())

    # -- prediction -----------------------------------------------------------------
    def _probabilities(self, texts: List[str], vectors: np.ndarray) -> np.ndarray:
        """One row of intent probabilities per text; ``vectors`` are the texts' sentence vectors."""
        assert self._sparse_weights is not None and self._dense_weights is not None
        scores = np.asarray(self._ngrams(texts) @ self._sparse_weights)
        scores += vectors.astype(np.float64) @ self._dense_weights + self._intercept
        scores = scores - scores.max(axis=1, keepdims=True)
        probs = np.exp(scores)
        return probs / probs.sum(axis=1, keepdims=True)

    def _ranking(self, probs: np.ndarray, length: int) -> List[Dict[str, Any]]:
        order = np.argsort(-probs)
        return [{"name": self._classes[i], "confidence": float(probs[i])} for i in order[:length]]

    def process(self, messages: List[Message]) -> List[Message]:
        if self._coef is None:
            return messages
        for message in messages:
            text = message.get(TEXT)
            if not text:
                continue
            reading = read(text) if not text.startswith("/") else None
            pieces = list(reading.pieces) if reading and reading.needs_pieces else []
            texts = [text] + [p.text for p in pieces]
            vectors = shared_encoder().encode(texts)  # the one encoding of this message
            probs = self._probabilities(texts, vectors)
            if self._semantic is not None and reading is not None:
                message.set(SIMILARITIES_KEY, self._semantic.pack(texts, vectors), add_to_output=True)
            whole = probs[0]
            questions = [probs[i + 1] for i, p in enumerate(pieces) if p.question]
            if questions and len(questions) < len(pieces):
                # A story or a statement with a question: the question says what is asked,
                # the rest only colours it.
                whole = (1 - QUESTION_WEIGHT) * whole + QUESTION_WEIGHT * np.mean(questions, axis=0)
            ranking = self._ranking(whole, self._config["ranking_length"])
            message.set(INTENT, ranking[0], add_to_output=True)
            message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
            if pieces and reading:
                message.set(READING_KEY, {
                    "long": reading.long,
                    "compound": reading.compound,
                    "pieces": [
                        {"text": p.text, "question": p.question,
                         "intent_ranking": self._ranking(probs[i + 1], PIECE_RANKING_LENGTH)}
                        for i, p in enumerate(pieces)
                    ],
                }, add_to_output=True)
        return messages


def _built_semantic_index() -> Optional[SemanticIndex]:
    """The entries' question vectors from the knowledge build, if it is there."""
    try:
        return SemanticIndex.load(paths.build_dir())
    except (OSError, ValueError) as exc:
        logger.warning("MiniLMIntentClassifier: no knowledge build (%s); the action server "
                       "will encode each message itself", exc)
        return None

"""Build, save and load the text-normalisation pipeline.

No pretrained model is needed (none can be downloaded here): the pipeline is
``spacy.blank("en")`` plus a lookup lemmatizer (tables from ``spacy-lookups-data``) and
an entity ruler for drug, condition and treatment names (``patterns.yml``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import spacy
import yaml
from spacy.language import Language
from spacy.lang.en.stop_words import STOP_WORDS

PATTERNS_FILE = Path(__file__).with_name("patterns.yml")

# Stop words that still tell topics apart ("how many" sessions, "how long" results,
# "how much" cost, "after" care), so they are kept.
_KEEP = {
    "many", "much", "long", "often", "last", "after", "before", "first", "again", "back",
    "stop", "not", "no", "never", "without", "well", "who", "where", "when", "why", "full",
    "whole", "per", "each", "once", "hurt", "work", "safe", "over", "next", "top", "front",
    "side", "made", "done", "give", "put", "call", "move", "become", "same", "always", "only",
}
STOP: frozenset[str] = frozenset(w for w in STOP_WORDS if w not in _KEEP) | {
    "'s", "’s", "u", "ur", "pls", "plz", "please", "hi", "hey", "thanks", "thank", "ok", "okay",
    "im", "i'm", "ive", "dont", "doesnt", "wanna", "gonna", "like", "know", "want", "tell", "lot",
    "really", "actually", "guess", "get", "got", "thing", "things", "stuff", "mesotherapy",
}
_WORD = re.compile(r"[a-z0-9]")


def _load_patterns(path: Path = PATTERNS_FILE) -> list[dict]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    patterns: list[dict] = []
    for label, terms in data.items():
        for canonical, phrases in terms.items():
            for phrase in phrases:
                tokens = [{"LOWER": t} for t in str(phrase).lower().split()]
                patterns.append({"label": label, "pattern": tokens, "id": canonical})
    return patterns


def build_pipeline() -> Language:
    """Return a fresh, initialised pipeline (not yet saved)."""
    nlp = spacy.blank("en")
    nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    ruler = nlp.add_pipe("entity_ruler", config={"phrase_matcher_attr": "LOWER"})
    nlp.initialize()
    ruler.add_patterns(_load_patterns())
    return nlp


def load_pipeline(path: Path) -> Language:
    """Load a pipeline saved with ``nlp.to_disk``."""
    return spacy.load(path)


@dataclass(frozen=True)
class Analysis:
    """What the normaliser found in a text: content lemmas and canonical entity ids."""

    terms: tuple[str, ...]
    entities: tuple[tuple[str, str], ...]  # (label, canonical id)


class Normaliser:
    """Turns free text into lower-cased content lemmas plus recognised entities."""

    def __init__(self, nlp: Language) -> None:
        self._nlp = nlp

    def analyse(self, text: str) -> Analysis:
        doc = self._nlp(text.lower())
        terms: list[str] = []
        for token in doc:
            if not _WORD.search(token.text):
                continue
            lemma = (token.lemma_ or token.text).lower().strip("'’")
            if not lemma or lemma in STOP or token.text in STOP:
                continue
            terms.append(lemma)
        entities = tuple(
            (ent.label_, ent.ent_id_ or ent.text) for ent in doc.ents
        )
        return Analysis(terms=tuple(terms), entities=entities)

    def terms(self, text: str) -> list[str]:
        return list(self.analyse(text).terms)

    def batch_terms(self, texts: Iterable[str]) -> list[list[str]]:
        return [self.terms(t) for t in texts]

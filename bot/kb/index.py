"""A small BM25 index over knowledge entries: build, save, load, score.

Each entry is one document made of its question forms and title (counted twice), its
keywords and its answer, all normalised by the project's spaCy pipeline, plus the
canonical names of the entities found in them.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Mapping

from bot.kb.model import Entry
from bot.nlp.pipeline import Normaliser

K1 = 1.2
B = 0.75
_ANSWER_WEIGHT = 1
_QUESTION_WEIGHT = 2


def entry_terms(entry: Entry, normaliser: Normaliser) -> list[str]:
    """The terms that represent ``entry`` in the index."""
    terms: list[str] = []
    for text in (entry.title, *entry.questions, " ".join(entry.keywords)):
        analysis = normaliser.analyse(text)
        terms.extend(analysis.terms * _QUESTION_WEIGHT)
        terms.extend(cid for _, cid in analysis.entities for _ in range(_QUESTION_WEIGHT))
    analysis = normaliser.analyse(entry.answer)
    terms.extend(analysis.terms * _ANSWER_WEIGHT)
    terms.extend(cid for _, cid in analysis.entities)
    return terms


@dataclass
class BM25Index:
    """Term frequencies per document and the statistics BM25 needs."""

    doc_ids: list[str]
    term_freqs: list[dict[str, int]]
    doc_lengths: list[int]
    idf: dict[str, float]

    @classmethod
    def build(cls, docs: Mapping[str, Iterable[str]]) -> "BM25Index":
        doc_ids = list(docs)
        term_freqs = [dict(Counter(docs[d])) for d in doc_ids]
        n = len(doc_ids)
        df: Counter[str] = Counter()
        for tf in term_freqs:
            df.update(tf.keys())
        idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}
        return cls(doc_ids, term_freqs, [sum(tf.values()) for tf in term_freqs], idf)

    @property
    def avg_length(self) -> float:
        return sum(self.doc_lengths) / max(len(self.doc_lengths), 1)

    @property
    def vocabulary(self) -> frozenset[str]:
        return frozenset(self.idf)

    def scores(self, query: Mapping[str, float]) -> dict[str, float]:
        """BM25 score of every document for weighted query terms."""
        avg = self.avg_length or 1.0
        out: dict[str, float] = {}
        for doc_id, tf, length in zip(self.doc_ids, self.term_freqs, self.doc_lengths):
            score = 0.0
            norm = K1 * (1 - B + B * length / avg)
            for term, weight in query.items():
                f = tf.get(term)
                if f:
                    score += weight * self.idf[term] * f * (K1 + 1) / (f + norm)
            out[doc_id] = score
        return out

    def to_dict(self) -> dict:
        return {
            "doc_ids": self.doc_ids, "term_freqs": self.term_freqs,
            "doc_lengths": self.doc_lengths, "idf": self.idf,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "BM25Index":
        return cls(data["doc_ids"], data["term_freqs"], data["doc_lengths"], data["idf"])

"""Sentence similarity between a message and each entry's question forms.

BM25 (bot.kb.index) needs shared words; a patient's "will my scalp go numb first?" shares
few with "Do you use numbing cream?". MiniLM sentence embeddings (bot.nlp.encoder) of every
entry's question forms are computed once, at build time, and stored next to
``kb.json``; at run time only the message is encoded.

Build, save and load are separate steps, as for the BM25 index:

    index = SemanticIndex.build(entries, encoder)
    index.save(build_dir)
    index = SemanticIndex.load(build_dir)
    index.similarities(text, encoder)   # {entry_id: 0..1}

Rasa's intent classifier encodes every message already. Where it has the index too, it
scores the message against every entry there and hands the scores on in the message's
parse data (:meth:`SemanticIndex.pack`, under :data:`SIMILARITIES_KEY`), so the action
server reads them (:meth:`SemanticIndex.unpack`) instead of encoding the message a second
time. The packed form names the index it was scored against; scores for another index
(a knowledge base rebuilt since) are not used.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Protocol

import numpy as np

from bot.kb.model import Entry

VECTORS_FILE = "question-vectors.npy"
IDS_FILE = "question-vectors.json"

# Cosine similarities of MiniLM embeddings rarely fall below ~0.2 for any two English
# questions and reach ~0.8 for close paraphrases; this range is stretched to 0..1.
UNRELATED_COSINE = 0.25
PARAPHRASE_COSINE = 0.8


SIMILARITIES_KEY = "similarities"
"""The parse-data key of a message's packed entry scores (:meth:`SemanticIndex.pack`):
``{"index": <digest>, "texts": {text: <scores>}}``, for the message and each of its pieces."""

_SCALE = 65535  # scores travel as unsigned 16-bit integers: 0..1 in steps of 1.5e-5


class Encoder(Protocol):
    def encode(self, texts: list[str]) -> np.ndarray: ...


def scaled(cosine: float) -> float:
    """Map a cosine similarity onto 0..1 (0 = unrelated, 1 = a paraphrase)."""
    value = (cosine - UNRELATED_COSINE) / (PARAPHRASE_COSINE - UNRELATED_COSINE)
    return min(1.0, max(0.0, value))


@dataclass
class SemanticIndex:
    """One unit vector per question form (titles are left out: a bare word such as
    "injections" sits too close to a short title); ``entry_ids[i]`` owns ``vectors[i]``."""

    entry_ids: list[str]
    vectors: np.ndarray
    entries: list[str] = field(init=False, repr=False)
    """Each entry once, in order of its first question form: the columns of :meth:`scores`."""
    digest: str = field(init=False, repr=False)
    """Names this index (its forms' entry ids and vectors) in packed scores."""
    _order: np.ndarray = field(init=False, repr=False)
    _starts: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.vectors = np.asarray(self.vectors, dtype=np.float32)
        self.entries = list(dict.fromkeys(self.entry_ids))
        column = {entry_id: i for i, entry_id in enumerate(self.entries)}
        columns = np.array([column[e] for e in self.entry_ids], dtype=np.int64)
        # Forms grouped by entry, so each entry's best form is one reduction.
        self._order = np.argsort(columns, kind="stable")
        self._starts = np.searchsorted(columns[self._order], np.arange(len(self.entries)))
        digest = hashlib.sha256(json.dumps(self.entry_ids).encode("utf-8"))
        digest.update(self.vectors.tobytes())
        self.digest = digest.hexdigest()[:16]

    @classmethod
    def build(cls, entries: Iterable[Entry], encoder: Encoder) -> "SemanticIndex":
        ids: list[str] = []
        texts: list[str] = []
        for entry in entries:
            for text in entry.questions:
                ids.append(entry.id)
                texts.append(text)
        return cls(ids, np.asarray(encoder.encode(texts), dtype=np.float32))

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        np.save(directory / VECTORS_FILE, self.vectors)
        (directory / IDS_FILE).write_text(json.dumps(self.entry_ids), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> "SemanticIndex":
        ids = json.loads((directory / IDS_FILE).read_text(encoding="utf-8"))
        vectors = np.load(directory / VECTORS_FILE)
        if len(ids) != len(vectors):
            raise ValueError(f"{directory}: {len(ids)} ids for {len(vectors)} vectors; run `make kb`")
        return cls(ids, vectors)

    @staticmethod
    def exists(directory: Path) -> bool:
        return (directory / VECTORS_FILE).is_file() and (directory / IDS_FILE).is_file()

    def scores(self, vectors: np.ndarray) -> np.ndarray:
        """One row per sentence vector: per entry (:attr:`entries`), the scaled similarity
        of the sentence to the entry's closest question form."""
        vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        if not self.entry_ids:
            return np.zeros((len(vectors), 0), dtype=np.float32)
        cosines = vectors @ self.vectors.T
        values = np.clip((cosines - UNRELATED_COSINE) / (PARAPHRASE_COSINE - UNRELATED_COSINE), 0.0, 1.0)
        return np.maximum.reduceat(values[:, self._order], self._starts, axis=1)

    def similarities(self, text: str, encoder: Encoder) -> dict[str, float]:
        """Per entry, the scaled similarity of ``text`` to its closest question form."""
        if not self.entry_ids or not text.strip():
            return {}
        return dict(zip(self.entries, self.scores(encoder.encode([text]))[0].tolist()))

    def pack(self, texts: list[str], vectors: np.ndarray) -> dict[str, object]:
        """The scores of ``texts`` (their sentence vectors in ``vectors``), small enough
        for a message's parse data (a few hundred characters a text)."""
        rows = np.rint(self.scores(vectors) * _SCALE).astype("<u2")
        return {"index": self.digest,
                "texts": {t: base64.b64encode(r.tobytes()).decode("ascii") for t, r in zip(texts, rows)}}

    def unpack(self, packed: object) -> dict[str, dict[str, float]]:
        """Per text, the scores :meth:`pack` packed against this same index; empty for
        scores packed against another index, or anything malformed."""
        if not isinstance(packed, dict) or packed.get("index") != self.digest:
            return {}
        texts = packed.get("texts")
        out: dict[str, dict[str, float]] = {}
        for text, data in (texts.items() if isinstance(texts, dict) else ()):
            try:
                row = np.frombuffer(base64.b64decode(data, validate=True), dtype="<u2")
            except (TypeError, ValueError):
                continue
            if isinstance(text, str) and len(row) == len(self.entries):
                out[text] = dict(zip(self.entries, (row / _SCALE).tolist()))
        return out

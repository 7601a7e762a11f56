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
"""

from __future__ import annotations

import json
from dataclasses import dataclass
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

    def similarities(self, text: str, encoder: Encoder) -> dict[str, float]:
        """Per entry, the scaled similarity of ``text`` to its closest question form."""
        if not self.entry_ids or not text.strip():
            return {}
        cosines = self.vectors @ encoder.encode([text])[0]
        out: dict[str, float] = {}
        for entry_id, cosine in zip(self.entry_ids, cosines.tolist()):
            value = scaled(cosine)
            if value > out.get(entry_id, -1.0):
                out[entry_id] = value
        return out

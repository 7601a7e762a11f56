"""Load the built knowledge base once per process and hand out the pieces."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from bot import paths
from bot.kb.index import BM25Index
from bot.kb.loader import load_clinic
from bot.kb.model import KnowledgeBase
from bot.kb.retriever import Retriever
from bot.kb.semantic import SemanticIndex
from bot.nlp.pipeline import Normaliser, load_pipeline


class KnowledgeNotBuilt(RuntimeError):
    """``make kb`` has not been run (or its output is missing)."""


@dataclass(frozen=True)
class Runtime:
    kb: KnowledgeBase
    retriever: Retriever
    normaliser: Normaliser


def load_runtime(build_dir: Path, clinic_file: Path) -> Runtime:
    """Load what ``make kb`` built, and the sentence encoder (about 90 MB)."""
    kb_path = build_dir / "kb.json"
    spacy_path = build_dir / "spacy-pipeline"
    if not kb_path.is_file() or not spacy_path.is_dir() or not SemanticIndex.exists(build_dir):
        raise KnowledgeNotBuilt(f"no built knowledge base in {build_dir}: run `make kb`")
    data = json.loads(kb_path.read_text(encoding="utf-8"))
    kb = KnowledgeBase.from_dict(data["knowledge"])
    # The clinic file is read at start, so a clinic's change needs a restart, not a build.
    kb.clinic = load_clinic(clinic_file)
    normaliser = Normaliser(load_pipeline(spacy_path))
    index = BM25Index.from_dict(data["index"])
    from bot.nlp.encoder import RecentEncodings, shared_encoder

    retriever = Retriever(kb, index, normaliser, SemanticIndex.load(build_dir), RecentEncodings(shared_encoder()))
    return Runtime(kb=kb, retriever=retriever, normaliser=normaliser)


@lru_cache(maxsize=1)
def get_runtime() -> Runtime:
    """The process-wide runtime, loaded on first use from the configured paths."""
    return load_runtime(paths.build_dir(), paths.clinic_file())

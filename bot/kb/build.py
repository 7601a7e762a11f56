"""Validate the knowledge files and build ``build/kb.json``, the spaCy pipeline and the
question vectors (bot.kb.semantic)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import yaml

from bot.kb.index import BM25Index, entry_terms
from bot.kb.loader import load_knowledge
from bot.kb.model import KnowledgeBase
from bot.kb.semantic import SemanticIndex
from bot.nlp.pipeline import Normaliser, build_pipeline

ANSWER_ACTION = "action_answer_question"
# Rasa's own intent for "no intent was clear", and a guided step's choice typed outside a
# step ("the second one": the last reply's list): answered from the knowledge base too, but
# not topics.
_NOT_A_TOPIC = {"nlu_fallback", "choose"}


def claimed_intents(rules_dir: Path) -> list[str]:
    """Intents the dialogue answers from the knowledge base.

    These are the intents of every rule in ``rules_dir`` whose reply is
    ``action_answer_question``: the topics the assistant claims to cover.
    """
    names: list[str] = []
    for path in sorted(rules_dir.rglob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for rule in data.get("rules") or []:
            steps = rule.get("steps") or []
            for step, following in zip(steps, steps[1:]):
                intent = step.get("intent")
                if intent and following.get("action") == ANSWER_ACTION and intent not in _NOT_A_TOPIC:
                    names.append(intent)
    return names


def _fingerprint(knowledge_dir: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(knowledge_dir.rglob("*.yml")):
        digest.update(path.relative_to(knowledge_dir).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def validate(knowledge_dir: Path, clinic_file: Path, rules_dir: Path | None) -> KnowledgeBase:
    intents = claimed_intents(rules_dir) if rules_dir else []
    return load_knowledge(knowledge_dir, clinic_file, intents)


def build(knowledge_dir: Path, clinic_file: Path, rules_dir: Path | None, out_dir: Path) -> KnowledgeBase:
    """Validate, then write the spaCy pipeline, the question vectors and ``kb.json``.

    ``kb.json`` is written last (atomically): it is the build's completion mark.
    """
    from bot.nlp.encoder import shared_encoder  # loads ~90 MB of weights: only when building

    kb = validate(knowledge_dir, clinic_file, rules_dir)
    kb.built_from = {"knowledge_sha256": _fingerprint(knowledge_dir)}
    nlp = build_pipeline()
    normaliser = Normaliser(nlp)
    index = BM25Index.build({e.id: entry_terms(e, normaliser) for e in kb.entries.values()})
    out_dir.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(out_dir / "spacy-pipeline")
    SemanticIndex.build(kb.entries.values(), shared_encoder()).save(out_dir)
    payload = {"knowledge": kb.to_dict(), "index": index.to_dict()}
    tmp = out_dir / "kb.json.tmp"
    tmp.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
    tmp.replace(out_dir / "kb.json")
    return kb

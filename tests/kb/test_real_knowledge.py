"""The shipped knowledge base: valid, sourced, balanced, and in the project's own words."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from bot import paths
from bot.kb.build import validate
from bot.kb.model import KnowledgeBase

SEEDS = paths.REPO_ROOT.parent / "shared" / "seeds"
CHECKER = paths.REPO_ROOT.parent / "shared" / "tools" / "verbatim_check.py"


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return validate(paths.knowledge_dir(), paths.clinic_file(), paths.rules_dir())


def test_every_topic_has_entries(kb: KnowledgeBase) -> None:
    for topic in kb.topics.values():
        assert kb.entries_of(topic.id), topic.id


def test_every_source_file_exists_and_one_source_sells_the_treatment(kb: KnowledgeBase) -> None:
    for source in kb.sources.values():
        assert (SEEDS / source.file).is_file(), source.file
    assert any(s.sells_treatment for s in kb.sources.values())


def test_every_figure_in_an_answer_is_listed_with_its_source(kb: KnowledgeBase) -> None:
    missing = []
    for entry in kb.entries.values():
        listed = " ".join(f.value for f in entry.figures)
        for number in re.findall(r"\d+(?:\.\d+)?", entry.answer):
            if number not in listed:
                missing.append(f"{entry.id}: {number}")
    assert not missing, missing


def test_harms_and_weak_evidence_are_covered(kb: KnowledgeBase) -> None:
    assert len(kb.entries_of("side_effects")) >= 3
    assert any(e.certainty in ("low", "very-low") for e in kb.entries_of("evidence"))
    alternatives = " ".join((e.title + " " + e.answer).lower() for e in kb.entries_of("alternatives"))
    for option in ("minoxidil", "finasteride", "prp", "doing nothing"):
        assert option in alternatives, option


def test_no_sentence_is_copied_from_the_sources() -> None:
    assert CHECKER.is_file(), f"the copy checker should be at {CHECKER} (shared/ beside the checkout)"
    result = subprocess.run(
        [sys.executable, str(CHECKER), str(paths.REPO_ROOT)], capture_output=True, text=True
    )
    copied = [line for line in result.stdout.splitlines() if line.startswith("knowledge/")]
    assert not copied, "\n".join(copied)

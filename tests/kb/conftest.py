"""A minimal valid knowledge folder that each validation test breaks in one way."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

TOPICS = {"topics": [
    {"id": "cost", "intent": "ask_cost", "title": "What it costs"},
    {"id": "pain", "intent": "ask_pain", "title": "Does it hurt"},
]}
SOURCES = {"sources": [
    {"id": "guide", "file": "a.txt", "title": "A guide", "publisher": "A website",
     "kind": "article", "sells_treatment": False, "stance": "neutral", "url": None},
    {"id": "clinic", "file": "b.txt", "title": "Our clinic", "publisher": "A clinic",
     "kind": "marketing", "sells_treatment": True, "stance": "promotional", "url": None},
]}


def _entry(eid: str, **over: Any) -> dict[str, Any]:
    entry = {
        "id": eid, "title": f"Title of {eid}",
        "questions": ["how much is it", "price per session", "what does one visit cost"],
        "answer": "One guide gives a price of 100 to 200 dollars (guide).",
        "figures": [{"value": "100 to 200 dollars", "source": "guide"}],
        "sources": ["guide"], "certainty": "low",
        "reviewed": "2026-11-22", "review_due": "2027-11-22", "related": [],
    }
    entry.update(over)
    return entry


def entries_files() -> dict[str, dict[str, Any]]:
    return {
        "cost.yml": {"topic": "cost", "entries": [_entry("cost-session", related=["pain-level"])]},
        "pain.yml": {"topic": "pain", "entries": [_entry(
            "pain-level", questions=["does it hurt", "is it painful", "pain level"],
            answer="The clinic says it is painless (clinic).", figures=[], sources=["clinic"])]},
    }


CLINIC = {"name": "Test Clinic", "phone": "+44 1", "currency": "GBP", "price_per_session": 120}


@pytest.fixture
def make_knowledge(tmp_path: Path) -> Callable[..., tuple[Path, Path, Path]]:
    """Write a knowledge folder, clinic file and rules folder; ``mutate`` edits them first."""

    def _make(mutate: Callable[[dict[str, Any]], None] | None = None) -> tuple[Path, Path, Path]:
        files: dict[str, Any] = {
            "topics.yml": yaml.safe_load(yaml.safe_dump(TOPICS)),
            "sources.yml": yaml.safe_load(yaml.safe_dump(SOURCES)),
            "entries": entries_files(),
            "clinic.yml": dict(CLINIC),
            "rules": {"rules": [
                {"rule": "cost", "steps": [{"intent": "ask_cost"}, {"action": "action_answer_question"}]},
                {"rule": "pain", "steps": [{"intent": "ask_pain"}, {"action": "action_answer_question"}]},
            ]},
        }
        if mutate:
            mutate(files)
        knowledge = tmp_path / "knowledge"
        (knowledge / "entries").mkdir(parents=True)
        (knowledge / "topics.yml").write_text(yaml.safe_dump(files["topics.yml"]))
        (knowledge / "sources.yml").write_text(yaml.safe_dump(files["sources.yml"]))
        for name, content in files["entries"].items():
            text = content if isinstance(content, str) else yaml.safe_dump(content)
            (knowledge / "entries" / name).write_text(text)
        clinic = tmp_path / "clinic.yml"
        clinic.write_text(yaml.safe_dump(files["clinic.yml"]))
        rules = tmp_path / "rules"
        rules.mkdir()
        (rules / "rules.yml").write_text(yaml.safe_dump(files["rules"]))
        return knowledge, clinic, rules

    return _make

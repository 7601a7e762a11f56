"""Drafts of conversation tests from real replies: for ``--record`` and the staff console.

A draft asserts what came back (intent, red flag, topic, entry, sources, buttons, summary
link, a phrase of the text) for a tester to edit: keep what matters, loosen what does not.
It is plain data shaped as :mod:`convtest.spec` reads it, and :func:`dump` writes it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from convtest.spec import NONE

PHRASE_WORDS = 6


@dataclass
class DraftTurn:
    """One step of a conversation as it happened."""

    kind: str
    """``user`` (typed) or ``press`` (a button, by title)."""
    text: str
    messages: list[dict[str, Any]] = field(default_factory=list)
    """The assistant's reply in the public ``Message`` shape."""
    intent: str | None = None
    confidence: float | None = None


def _phrase(messages: Sequence[dict[str, Any]]) -> str | None:
    """The first few words of the reply's first text, cut at a sentence end."""
    for message in messages:
        text = " ".join((message.get("text") or "").split())
        if text:
            sentence = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0]
            words = sentence.split()[:PHRASE_WORDS]
            return " ".join(words).rstrip(",;:.!?")
    return None


def _first(messages: Sequence[dict[str, Any]], key: str) -> Any:
    return next((m[key] for m in messages if m.get(key)), None)


def assertions(turn: DraftTurn) -> list[dict[str, Any]]:
    """What the reply to ``turn`` showed, as assertions."""
    messages = turn.messages
    drafted: list[dict[str, Any]] = []
    if turn.intent:
        drafted.append({"intent": turn.intent})
        if isinstance(turn.confidence, (int, float)) and turn.confidence >= 0.2:
            # A margin under what was seen, so a retrained model does not fail the draft.
            drafted.append({"min_confidence": round(max(0.0, math.floor(turn.confidence * 10) / 10 - 0.1), 1)})
    drafted.append({"red_flag": _first(messages, "red_flag") or NONE})
    topic, entry = _first(messages, "topic"), _first(messages, "entry")
    if topic:
        drafted.append({"topic": topic})
    if entry:
        drafted.append({"entry": entry})
    sources = list(dict.fromkeys(s["id"] for m in messages for s in m.get("sources") or [] if s.get("id")))
    if sources:
        drafted.append({"sources": sources})
    titles = [b["title"] for m in messages for b in m.get("buttons") or [] if b.get("title")]
    drafted.append({"buttons": titles} if titles else {"no_buttons": True})
    if _first(messages, "summary_url"):
        drafted.append({"summary_link": True})
    phrase = _phrase(messages)
    if phrase:
        drafted.append({"text_contains": [phrase]})
    return drafted


def test_case(name: str, turns: Sequence[DraftTurn], *, description: str = "",
              tags: Sequence[str] = (), fixtures: Sequence[str] = ()) -> dict[str, Any]:
    """One test case whose steps replay ``turns`` and assert what came back."""
    case: dict[str, Any] = {"test_case": name}
    if description:
        case["description"] = description
    case["tags"] = list(tags) or ["draft"]
    if fixtures:
        case["fixtures"] = list(fixtures)
    case["steps"] = [{turn.kind: turn.text, "assertions": assertions(turn)} for turn in turns]
    return case


def document(cases: Sequence[dict[str, Any]], fixtures: dict[str, dict[str, Any]] | None = None,
             metadata: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """A whole test file: fixtures and metadata (Rasa Pro's list of one-key items), test cases."""
    doc: dict[str, Any] = {}
    if fixtures:
        doc["fixtures"] = [{name: body} for name, body in fixtures.items()]
    if metadata:
        doc["metadata"] = [{name: body} for name, body in metadata.items()]
    doc["test_cases"] = list(cases)
    return doc


class _Dumper(yaml.SafeDumper):
    """Mappings in block style, lists of plain values on one line, lists indented under
    their key (as the suite is written), keys in the order written, no line folding."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _mapping(dumper: _Dumper, value: dict[str, Any]) -> yaml.MappingNode:
    return dumper.represent_mapping("tag:yaml.org,2002:map", value.items(), flow_style=False)


def _sequence(dumper: _Dumper, value: list[Any]) -> yaml.SequenceNode:
    flat = all(not isinstance(item, (dict, list)) for item in value)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flat)


_Dumper.add_representer(dict, _mapping)
_Dumper.add_representer(list, _sequence)


def dump(doc: dict[str, Any], header: str = "") -> str:
    """``doc`` as YAML, with ``header`` as comment lines on top."""
    lines = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    body = yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=10_000)
    return lines + body

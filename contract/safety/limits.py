"""Requests the assistant declines, by rule: a diagnosis, a dose, stopping a medicine, DIY injections.

The rules live in ``contract/safety/limits.json`` (the folder's README explains the format). General questions stay answerable: "what is in
the injection" or "does it work for alopecia" are not requests to decline; "do I have
alopecia?", "how many mg of minoxidil should I take", "should I stop my warfarin before the
session" and "can I buy a meso kit and do it at home" are.

Usage::

    from contract.safety.limits import detect_limit
    detect_limit("should i stop my warfarin before the session").kind   # "stop_medicine"
    detect_limit("whats in the injection")                               # None

Nothing is read at import; ``load_limits()`` reads and compiles the file once (cached).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from contract.safety.red_flags import load_rules, normalise_words

LIMITS_FILE: Path = Path(__file__).resolve().parent / "limits.json"
KINDS: tuple[str, ...] = ("diagnosis", "dose", "stop_medicine", "self_injection",
                          "other_use", "other_procedure", "writing", "other_person", "records")
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


@dataclass(frozen=True)
class LimitRule:
    kind: str
    patterns: tuple[re.Pattern[str], ...]
    exceptions: tuple[re.Pattern[str], ...]


@dataclass(frozen=True)
class Limits:
    """The compiled rules, in the order they are tried."""

    rules: tuple[LimitRule, ...]


@dataclass(frozen=True)
class LimitRequest:
    kind: str  # one of KINDS
    matched: str  # the words that matched, normalised


def _expand(pattern: str, lexicons: Mapping[str, list[Any]]) -> str:
    def alternation(match: re.Match[str]) -> str:
        words = sorted((str(w) for w in lexicons[match.group(1)]), key=len, reverse=True)
        return "(?:" + "|".join(words) + ")"

    return _PLACEHOLDER.sub(alternation, pattern)


def _compile(data: Mapping[str, Any]) -> Limits:
    lexicons = data.get("lexicons", {})
    rules = []
    for kind, spec in data["kinds"].items():
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}")
        rules.append(LimitRule(
            kind=kind,
            patterns=tuple(re.compile(_expand(p, lexicons)) for p in spec["patterns"]),
            exceptions=tuple(re.compile(_expand(p, lexicons)) for p in spec.get("except", ())),
        ))
    return Limits(tuple(rules))


@lru_cache(maxsize=4)
def _load(path: Path) -> Limits:
    return _compile(json.loads(path.read_text(encoding="utf-8")))


def load_limits(path: Path | None = None) -> Limits:
    """The compiled rules of ``path`` (default: contract/safety/limits.json), read once."""
    return _load(Path(path or LIMITS_FILE).resolve())


def normalise(text: str) -> str:
    """Lower-case words separated by single spaces, "%" spelled "percent", shorthand expanded."""
    aliases = load_rules().aliases
    words = normalise_words(text.replace("%", " percent "))
    return " ".join(piece for word in words for piece in aliases.get(word, (word,)))


def detect_limit(text: str, limits: Limits | None = None) -> LimitRequest | None:
    """The kind of request to decline in ``text``, or None for anything else."""
    if not text or text.lstrip().startswith("/"):
        return None
    limits = limits or load_limits()
    normalised = normalise(text)
    for rule in limits.rules:
        if any(e.search(normalised) for e in rule.exceptions):
            continue
        for pattern in rule.patterns:
            match = pattern.search(normalised)
            if match:
                return LimitRequest(rule.kind, match.group(0))
    return None

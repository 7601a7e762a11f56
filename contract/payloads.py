"""Every block the bot puts in a message's ``custom``, and how each is checked.

A bot message is ``{"text", "buttons", "custom"}``; ``custom`` is a JSON object whose keys are
the blocks below. The bot builds the blocks the API acts on with the constructors here and
checks each message before it leaves (``bot/channels/meso.py``); the API checks again what
it receives (``api/rasa_client.py``). :func:`check_custom` never raises: a block outside its
description is reported with its name and the kinds of error (never the values, which may be
a phone number), so the receiver can drop it and keep the rest of the reply.

Blocks the API acts on:

* provenance of an answer: ``sources`` ([{id, title, url}]), ``topic``, ``entry_id``,
  ``score`` (0-1), ``certainty``, ``reviewed`` and ``review_due`` (ISO dates);
* ``red_flag``: {level, flags}: this turn's patient message described a red flag;
* ``record``: {key: JSON}: data the patient consented to keep (a null value deletes a key);
* ``callback``: a callback request (``contract.callback``);
* ``summary``: a consultation summary {title, generated_at, sections, footer};
* ``field_check``: an anonymous field-test result {phase, knowledge, sure} and nothing else
  (no conversation id, no answer, no text): the API keeps it apart from the conversation;
* ``figures``: the numbers a message quotes, each {value, source} or, for a share of people,
  {per_100 (0-100), label, alt, text?, value?, source?, id?}: the widget and the summary page
  draw 100 marks with ``per_100`` filled, ``alt`` being their text alternative and ``label``
  a short caption. A summary item may carry such shares in its own ``figures``.

Blocks for the widget and for analysis, passed through unread: ``decision``,
``cost_estimate``, ``unanswered``, ``declined``, ``language``.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from contract import callback as _callback
from contract.levels import RedFlagLevel, is_level

MAX_FLAGS = 20
MAX_FLAG_CHARS = 64
MAX_RECORD_KEY_CHARS = 64
MAX_RECORD_BYTES = 64 * 1024
"""The largest record (one block, or the merged whole) kept, as compact JSON."""
MAX_SOURCES = 50
MAX_FIGURES = 50
MAX_ITEM_FIGURES = 10
FIELD_CHECK_PHASES: tuple[str, ...] = ("before", "after")
FIELD_CHECK_KNOWLEDGE_MAX = 5
"""How many knowledge questions the field check asks (its score is 0 to this)."""
FIELD_CHECK_SURE_MAX = 4
"""The SURE questions (the count of yeses is 0 to this)."""
FIELD_CHECK_KEYS: frozenset[str] = frozenset({"phase", "knowledge", "sure"})
"""Exactly the keys of a ``field_check`` block: one more (an id, a text) and it is refused."""


@dataclass(frozen=True)
class Problem:
    """A block outside its description: its name and the kinds of error."""

    block: str
    kinds: tuple[str, ...]


def json_size(value: Any) -> int:
    """Bytes of ``value`` as compact UTF-8 JSON."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def _text(value: Any, low: int, high: int) -> bool:
    return isinstance(value, str) and low <= len(value) <= high


def _iso_date(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


# --- constructors (the bot's side) ------------------------------------------------------
@dataclass(frozen=True)
class RedFlagBlock:
    level: RedFlagLevel
    flags: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"level": self.level, "flags": list(self.flags)}


def red_flag(level: str, flags: tuple[str, ...] | list[str] = ()) -> dict[str, Any]:
    """The ``custom`` of a red-flag reply."""
    if not is_level(level):
        raise ValueError("unknown red-flag level")
    return {"red_flag": RedFlagBlock(level, tuple(flags)).to_dict()}  # type: ignore[arg-type]


def field_check(phase: str, knowledge: int, sure: int) -> dict[str, Any]:
    """The ``custom`` of a finished field check: the phase and two counts, nothing else."""
    block = {"phase": phase, "knowledge": knowledge, "sure": sure}
    if _check_field_check(block):
        raise ValueError("not a field-check result")
    return {"field_check": block}


# --- checks (both sides) ----------------------------------------------------------------
Check = Callable[[Any], list[str]]


def normalise_level(value: Any) -> Any:
    """``Same-Day`` or `` EMERGENCY `` still count: a missed red flag is the worst failure."""
    if isinstance(value, str):
        return value.strip().lower().replace("-", "_").replace(" ", "_")
    return value


def flag_names(value: Any) -> list[str]:
    """Malformed names never cost the level: keep the strings, cut to size, drop the rest."""
    if not isinstance(value, list):
        return []
    names = [item.strip()[:MAX_FLAG_CHARS] for item in value if isinstance(item, str)]
    return [name for name in names if name][:MAX_FLAGS]


def _check_red_flag(value: Any) -> list[str]:
    if not isinstance(value, Mapping):
        return ["not_an_object"]
    return [] if is_level(normalise_level(value.get("level"))) else ["level"]


def _check_record(value: Any) -> list[str]:
    if not isinstance(value, Mapping):
        return ["not_an_object"]
    if not all(isinstance(k, str) and 1 <= len(k) <= MAX_RECORD_KEY_CHARS for k in value):
        return ["key_length"]
    return ["too_large"] if json_size(value) > MAX_RECORD_BYTES else []


def _count(value: Any, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= high


def _check_field_check(value: Any) -> list[str]:
    if not isinstance(value, Mapping):
        return ["not_an_object"]
    kinds: list[str] = []
    if set(value) - FIELD_CHECK_KEYS:
        kinds.append("extra_keys")
    if value.get("phase") not in FIELD_CHECK_PHASES:
        kinds.append("phase")
    if not _count(value.get("knowledge"), FIELD_CHECK_KNOWLEDGE_MAX):
        kinds.append("knowledge")
    if not _count(value.get("sure"), FIELD_CHECK_SURE_MAX):
        kinds.append("sure")
    return kinds


def _check_callback(value: Any) -> list[str]:
    return _callback.check(value)[1]


def _check_sources(value: Any) -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_SOURCES:
        return ["not_a_list"]
    for item in value:
        if not isinstance(item, Mapping) or not _text(item.get("id"), 1, 200) \
                or not _text(item.get("title"), 1, 500) \
                or not (item.get("url") is None or _text(item.get("url"), 1, 2000)):
            return ["source"]
    return []


def is_share(item: Any) -> bool:
    """A ``figures`` item that is a share of people (it has ``per_100``): an icon array."""
    return isinstance(item, Mapping) and item.get("per_100") is not None


def _figure_kinds(item: Any) -> list[str]:
    if not isinstance(item, Mapping):
        return ["figure"]
    kinds: list[str] = []
    for key, high in (("value", 500), ("source", 200), ("id", 200)):
        if item.get(key) is not None and not _text(item.get(key), 1, high):
            kinds.append("figure")
    if not is_share(item):
        return kinds or ([] if _text(item.get("value"), 1, 500) else ["figure"])
    per_100 = item.get("per_100")
    if isinstance(per_100, bool) or not isinstance(per_100, int) or not 0 <= per_100 <= 100:
        kinds.append("per_100")
    if not _text(item.get("label"), 1, 300) or not _text(item.get("alt"), 1, 1000) \
            or not (item.get("text") is None or _text(item.get("text"), 1, 2000)):
        kinds.append("share")
    return kinds


def check_figures(value: Any, limit: int = MAX_FIGURES) -> list[str]:
    """The kinds of error of a ``figures`` list (empty when valid)."""
    if not isinstance(value, list) or len(value) > limit:
        return ["not_a_list"]
    return sorted({kind for item in value for kind in _figure_kinds(item)})


def _check_summary(value: Any) -> list[str]:
    if not isinstance(value, Mapping):
        return ["not_an_object"]
    kinds: list[str] = []
    if not _text(value.get("title"), 1, 200):
        kinds.append("title")
    try:
        generated = dt.datetime.fromisoformat(str(value.get("generated_at")).replace("Z", "+00:00"))
    except ValueError:
        generated = None
    if generated is None:
        kinds.append("generated_at")
    sections = value.get("sections")
    if not isinstance(sections, list) or len(sections) > 50:
        kinds.append("sections")
    else:
        for section in sections:
            if not isinstance(section, Mapping) or not _text(section.get("heading"), 1, 200) \
                    or not (section.get("intro") is None or _text(section.get("intro"), 0, 4000)):
                kinds.append("section")
                break
            items = section.get("items", [])
            if not isinstance(items, list) or len(items) > 100 or not all(
                isinstance(i, Mapping) and _text(i.get("text"), 1, 4000)
                and isinstance(i.get("sources", []), list) and len(i.get("sources", [])) <= 20
                and all(_text(s, 1, 200) for s in i.get("sources", []))
                and not check_figures(i.get("figures", []), MAX_ITEM_FIGURES)
                and all(is_share(f) for f in i.get("figures", []))
                for i in items
            ):
                kinds.append("item")
                break
    if not (value.get("footer") is None or _text(value.get("footer"), 0, 4000)):
        kinds.append("footer")
    return kinds


def _of_type(kind: type) -> Check:
    def check(value: Any) -> list[str]:
        if value is None:
            return []
        if kind is bool:
            return [] if isinstance(value, bool) else ["type"]
        return [] if isinstance(value, kind) and not isinstance(value, bool) else ["type"]
    return check


def _score(value: Any) -> list[str]:
    if value is None:
        return []
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 <= value <= 1.0
    return [] if ok else ["range"]


def _date(value: Any) -> list[str]:
    return [] if value is None or _iso_date(value) else ["date"]


BLOCKS: Mapping[str, Check] = {
    "sources": _check_sources,
    "topic": _of_type(str),
    "entry_id": _of_type(str),
    "score": _score,
    "certainty": _of_type(str),
    "reviewed": _date,
    "review_due": _date,
    "red_flag": _check_red_flag,
    "record": _check_record,
    "callback": _check_callback,
    "summary": _check_summary,
    "field_check": _check_field_check,
    "figures": check_figures,
    "decision": _of_type(dict),
    "cost_estimate": _of_type(dict),
    "unanswered": _of_type(bool),
    "declined": _of_type(str),
    "language": _of_type(str),
}
"""Every block the bot may send, and its check (a list of error kinds; empty when valid)."""

ACTED_ON: frozenset[str] = frozenset({"sources", "topic", "entry_id", "score", "certainty", "reviewed",
                                      "red_flag", "record", "callback", "summary",
                                      "field_check", "figures"})
"""The blocks the API reads; the rest are passed through."""


def check_custom(custom: Any) -> tuple[dict[str, Any], list[Problem]]:
    """The blocks of ``custom`` that meet their description, and a :class:`Problem` for each
    that does not (an unknown block is one, of kind ``unknown``)."""
    if custom is None:
        return {}, []
    if not isinstance(custom, Mapping):
        return {}, [Problem("custom", ("not_an_object",))]
    kept: dict[str, Any] = {}
    problems: list[Problem] = []
    for name, value in custom.items():
        check = BLOCKS.get(name)
        if check is None:
            problems.append(Problem(str(name)[:40], ("unknown",)))
            continue
        kinds = check(value)
        if kinds:
            problems.append(Problem(name, tuple(sorted(set(kinds)))))
        else:
            kept[name] = value
    return kept, problems

"""The guided decision support: options side by side, values, candidacy checklist, costs.

The knowledge lives in ``knowledge/decision/`` (four YAML files, see ``knowledge/README.md``):

* ``options.yml``   the five options (mesotherapy, minoxidil, finasteride, PRP, doing
  nothing), each with one cell per dimension. A cell's ``text`` is ``null`` where the
  sources are silent: the assistant then says "our sources don't say".
* ``values.yml``    the six things a person can say matter most, each reflecting one
  option dimension, with the words a person may type to mean it.
* ``checklist.yml`` the candidacy checklist: each situation, why it matters per the
  sources, a question to ask the clinician, and the knowledge entry with the facts; and
  ``questions``: more questions to take to the consultation, for everyone or for a person
  who said a value matters most to them (the consultation summary lists them).
* ``costs.yml``     published prices and session counts as numbers, each with its source,
  and the short names the cost estimate gives the sources.

Everything is validated when the knowledge base is built; each problem names the file and
the item. This module does not import :mod:`bot.kb.model` or :mod:`bot.kb.loader` (the
model imports it), so it only needs the known source and entry ids.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Collection

import yaml

from bot.kb.frequencies import Frequency, check_cell
from bot.kb.values import folded_text as _text
from bot.kb.values import parse_date

OPTION_DIMENSIONS: tuple[str, ...] = ("involves", "benefits", "harms", "time_to_effect", "cost", "evidence")
VALUE_ONLY_DIMENSIONS: tuple[str, ...] = ("needles_pain", "time_commitment")
ALL_DIMENSIONS: tuple[str, ...] = OPTION_DIMENSIONS + VALUE_ONLY_DIMENSIONS

OPTION_IDS: tuple[str, ...] = ("mesotherapy", "minoxidil", "finasteride", "prp", "nothing")
# Each value the person can choose, and the option dimension it reflects.
VALUE_DIMENSIONS: dict[str, str] = {
    "cost": "cost",
    "needles_pain": "needles_pain",
    "time_commitment": "time_commitment",
    "evidence": "evidence",
    "speed": "time_to_effect",
    "side_effects": "harms",
}
CHECKLIST_IDS: tuple[str, ...] = (
    "pregnancy", "blood_thinners", "bleeding", "diabetes", "organ_disease", "allergies",
    "scalp_infection", "scalp_flare", "shingles", "advanced_baldness", "age",
)
DECISION_FILES: tuple[str, ...] = ("options.yml", "values.yml", "checklist.yml", "costs.yml")


@dataclass(frozen=True)
class Cell:
    """One option on one dimension. ``text`` is ``None`` when the sources say nothing."""

    text: str | None
    sources: tuple[str, ...]
    # Shares of people (knowledge/frequencies.yml), benefits and harms cells only.
    frequencies: tuple[Frequency, ...] = ()


@dataclass(frozen=True)
class Option:
    id: str
    title: str
    entry: str | None  # knowledge entry with more detail
    cells: dict[str, Cell]  # one per dimension in ALL_DIMENSIONS


@dataclass(frozen=True)
class Value:
    id: str
    title: str  # button label
    dimension: str  # the option dimension this value reflects
    # Words and phrases (lower case) a person may type to mean this value, e.g. "money".
    words: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChecklistItem:
    id: str
    title: str
    entry: str  # knowledge entry with the general facts for this situation
    why: str
    ask: str
    sources: tuple[str, ...]


@dataclass(frozen=True)
class Question:
    """A question to take to the consultation: for everyone, or when ``value`` matters most."""

    id: str
    text: str
    value: str | None  # a value id, or None for a question everyone may ask
    sources: tuple[str, ...]


@dataclass(frozen=True)
class PriceRange:
    source: str
    currency: str
    low: float
    high: float
    note: str | None = None


@dataclass(frozen=True)
class CountRange:
    source: str
    low: float
    high: float
    note: str | None = None


@dataclass(frozen=True)
class Costs:
    per_session: tuple[PriceRange, ...]
    first_course_sessions: tuple[CountRange, ...]
    maintenance_sessions_per_year: tuple[CountRange, ...]
    # Short names of the sources, as the cost estimate names them in a sentence
    # ("hair-loss guide"); a source without one is named by its title.
    source_names: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DecisionAid:
    options: tuple[Option, ...]
    values: tuple[Value, ...]
    checklist: tuple[ChecklistItem, ...]
    costs: Costs
    reviewed: str  # the oldest 'reviewed' date of the four files (ISO)
    review_due: str  # the earliest 'review_due' date of the four files (ISO)
    questions: tuple[Question, ...] = ()  # checklist.yml's 'questions', in file order
    # options.yml's 'not_covered' text: options that exist but none of the sources cover,
    # and who can explain them. The options view ends with it.
    not_covered: str | None = None

    def general_questions(self) -> tuple[Question, ...]:
        """The questions for everyone (no value)."""
        return tuple(q for q in self.questions if q.value is None)

    def value_questions(self, value_id: str) -> tuple[Question, ...]:
        """The questions for a person to whom ``value_id`` matters most."""
        return tuple(q for q in self.questions if q.value == value_id)

    def option(self, option_id: str) -> Option:
        for option in self.options:
            if option.id == option_id:
                return option
        raise KeyError(option_id)

    def value(self, value_id: str) -> Value:
        for value in self.values:
            if value.id == value_id:
                return value
        raise KeyError(value_id)

    def item(self, item_id: str) -> ChecklistItem:
        for item in self.checklist:
            if item.id == item_id:
                return item
        raise KeyError(item_id)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DecisionAid":
        costs = data["costs"]
        return cls(
            options=tuple(
                Option(
                    id=o["id"], title=o["title"], entry=o["entry"],
                    cells={k: Cell(text=c["text"], sources=tuple(c["sources"]),
                                   frequencies=tuple(Frequency.from_dict(f) for f in c.get("frequencies") or ()))
                           for k, c in o["cells"].items()},
                )
                for o in data["options"]
            ),
            values=tuple(Value(**{**v, "words": tuple(v.get("words") or ())}) for v in data["values"]),
            checklist=tuple(
                ChecklistItem(**{**i, "sources": tuple(i["sources"])}) for i in data["checklist"]
            ),
            costs=Costs(
                per_session=tuple(PriceRange(**p) for p in costs["per_session"]),
                first_course_sessions=tuple(CountRange(**c) for c in costs["first_course_sessions"]),
                maintenance_sessions_per_year=tuple(
                    CountRange(**c) for c in costs["maintenance_sessions_per_year"]
                ),
                source_names=dict(costs.get("source_names") or {}),
            ),
            reviewed=data["reviewed"],
            review_due=data["review_due"],
            questions=tuple(
                Question(**{**q, "sources": tuple(q["sources"])}) for q in data.get("questions") or ()
            ),
            not_covered=data.get("not_covered"),
        )


# --- loading and validation -------------------------------------------------------------

def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) and value >= 0 else None


class _File:
    """One decision file being read: collects problems prefixed with its path."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        self.data: dict[str, Any] | None = None
        self.reviewed: dt.date | None = None
        self.review_due: dt.date | None = None
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            self.fail("file not found")
            return
        except yaml.YAMLError as exc:
            self.fail(f"not valid YAML: {exc}")
            return
        if not isinstance(data, dict):
            self.fail("must be a mapping")
            return
        self.data = data
        self.reviewed = parse_date(data.get("reviewed"))
        self.review_due = parse_date(data.get("review_due"))
        if self.reviewed is None:
            self.fail("missing review date ('reviewed: YYYY-MM-DD')")
        if self.review_due is None:
            self.fail("missing next review date ('review_due: YYYY-MM-DD')")
        elif self.reviewed is not None and self.review_due <= self.reviewed:
            self.fail("'review_due' must come after 'reviewed'")

    def fail(self, message: str, where: str | None = None) -> None:
        self.problems.append(f"{self.path}: {where + ': ' if where else ''}{message}")

    def items(self, key: str) -> list[Any]:
        if self.data is None:
            return []
        items = self.data.get(key)
        if not isinstance(items, list) or not items:
            self.fail(f"needs a non-empty '{key}' list")
            return []
        return items

    def check_ids(self, found: list[str], expected: Collection[str], kind: str, ordered: bool) -> None:
        """Exactly the expected ids, each once (and in order when ``ordered``)."""
        dupes = sorted({i for i in found if found.count(i) > 1})
        for i in dupes:
            self.fail(f"duplicate {kind} id '{i}'")
        missing = [i for i in expected if i not in found]
        extra = [i for i in found if i not in expected]
        if missing:
            self.fail(f"missing {kind}(s): {', '.join(missing)}")
        if extra:
            self.fail(f"unknown {kind} id(s): {', '.join(extra)}; expected: {', '.join(expected)}")
        if ordered and not missing and not extra and not dupes and tuple(found) != tuple(expected):
            self.fail(f"{kind}s must be in this order: {', '.join(expected)}")

    def sources(self, raw: Any, where: str, source_ids: Collection[str]) -> tuple[str, ...] | None:
        if raw is None:
            raw = []
        if not isinstance(raw, list) or not all(isinstance(s, str) and s.strip() for s in raw):
            self.fail("'sources' must be a list of source ids", where)
            return None
        ok = True
        for sid in raw:
            if sid not in source_ids:
                self.fail(f"unknown source id '{sid}'", where)
                ok = False
        return tuple(raw) if ok else None

    def unknown_keys(self, raw: dict[str, Any], allowed: Collection[str], where: str) -> bool:
        extra = sorted(str(k) for k in raw if k not in allowed)
        if extra:
            self.fail(f"unknown field(s) {', '.join(extra)}; known: {', '.join(allowed)}", where)
        return not extra


def _load_options(f: _File, source_ids: Collection[str], entry_ids: Collection[str],
                  frequencies: dict[str, Frequency] | None = None) -> tuple[Option, ...]:
    options: list[Option] = []
    found: list[str] = []
    for n, raw in enumerate(f.items("options")):
        oid = raw.get("id") if isinstance(raw, dict) else None
        where = f"option '{oid or '#' + str(n + 1)}'"
        if not isinstance(raw, dict) or not isinstance(oid, str):
            f.fail("needs an 'id'", where)
            continue
        found.append(oid)
        start = len(f.problems)
        f.unknown_keys(raw, ("id", "title", "entry", "cells"), where)
        title = _text(raw.get("title"))
        if title is None:
            f.fail("missing 'title'", where)
        entry = raw.get("entry")
        if entry is not None and (not isinstance(entry, str) or entry not in entry_ids):
            f.fail(f"unknown entry id '{entry}'", where)
        raw_cells = raw.get("cells")
        cells: dict[str, Cell] = {}
        if not isinstance(raw_cells, dict):
            f.fail(f"needs 'cells' with: {', '.join(ALL_DIMENSIONS)}", where)
            raw_cells = {}
        missing = [d for d in ALL_DIMENSIONS if d not in raw_cells]
        extra = sorted(str(d) for d in raw_cells if d not in ALL_DIMENSIONS)
        if missing:
            f.fail(f"missing dimension(s): {', '.join(missing)}", where)
        if extra:
            f.fail(f"unknown dimension(s): {', '.join(extra)}; known: {', '.join(ALL_DIMENSIONS)}", where)
        for dim in ALL_DIMENSIONS:
            if dim not in raw_cells:
                continue
            cell = raw_cells[dim]
            at = f"{where}: cell '{dim}'"
            if not isinstance(cell, dict) or "text" not in cell:
                f.fail("needs 'text' (null when the sources are silent) and 'sources'", at)
                continue
            f.unknown_keys(cell, ("text", "sources", "frequencies"), at)
            if cell["text"] is not None and _text(cell["text"]) is None:
                f.fail("'text' must be words or null", at)
                continue
            text = _text(cell["text"])
            sources = f.sources(cell.get("sources"), at, source_ids)
            if sources is None:
                continue
            if text is None and sources:
                f.fail("'text' is null but 'sources' are given: a source that says nothing cannot be cited", at)
            elif text is not None and not sources:
                f.fail("has text but no source; list the source ids it comes from", at)
            counted, wrong = check_cell(cell.get("frequencies"), dim, text, sources, frequencies or {})
            for problem in wrong:
                f.fail(problem, at)
            cells[dim] = Cell(text=text, sources=sources, frequencies=counted)
        if len(f.problems) == start:
            options.append(Option(id=oid, title=title, entry=entry, cells=cells))
    if f.data is not None and found:
        f.check_ids(found, OPTION_IDS, "option", ordered=False)
    return tuple(options)


def _load_not_covered(f: _File) -> str | None:
    """options.yml's ``not_covered``: a mapping with one ``text`` (the options view's last line)."""
    if f.data is None:
        return None
    raw = f.data.get("not_covered")
    if not isinstance(raw, dict) or _text(raw.get("text")) is None:
        f.fail("needs 'not_covered' with a 'text': the options none of the sources cover, "
               "and who can explain them", "not_covered")
        return None
    f.unknown_keys(raw, ("text",), "not_covered")
    return _text(raw["text"])


def _load_values(f: _File) -> tuple[Value, ...]:
    values: list[Value] = []
    found: list[str] = []
    for n, raw in enumerate(f.items("values")):
        vid = raw.get("id") if isinstance(raw, dict) else None
        where = f"value '{vid or '#' + str(n + 1)}'"
        if not isinstance(raw, dict) or not isinstance(vid, str):
            f.fail("needs an 'id'", where)
            continue
        found.append(vid)
        start = len(f.problems)
        f.unknown_keys(raw, ("id", "title", "dimension", "words"), where)
        title = _text(raw.get("title"))
        if title is None:
            f.fail("missing 'title'", where)
        dimension = raw.get("dimension")
        if dimension not in ALL_DIMENSIONS:
            f.fail(f"'dimension' must be one of {', '.join(ALL_DIMENSIONS)}, not '{dimension}'", where)
        elif vid in VALUE_DIMENSIONS and dimension != VALUE_DIMENSIONS[vid]:
            f.fail(f"'dimension' must be '{VALUE_DIMENSIONS[vid]}', not '{dimension}'", where)
        raw_words = raw.get("words") or []
        words: tuple[str, ...] = ()
        if not isinstance(raw_words, list) or not all(_text(w) for w in raw_words):
            f.fail("'words' must be a list of words or phrases", where)
        else:
            words = tuple(" ".join(w.lower().split()) for w in raw_words)
        if len(f.problems) == start:
            values.append(Value(id=vid, title=title, dimension=dimension, words=words))
    if f.data is not None and found:
        f.check_ids(found, tuple(VALUE_DIMENSIONS), "value", ordered=False)
    owners: dict[str, str] = {}
    for value in values:
        for word in value.words:
            if word in owners and owners[word] != value.id:
                f.fail(f"word '{word}' is also a word of value '{owners[word]}'", f"value '{value.id}'")
            owners[word] = value.id
    return tuple(values)


def _load_checklist(f: _File, source_ids: Collection[str], entry_ids: Collection[str]) -> tuple[ChecklistItem, ...]:
    items: list[ChecklistItem] = []
    found: list[str] = []
    for n, raw in enumerate(f.items("checklist")):
        iid = raw.get("id") if isinstance(raw, dict) else None
        where = f"item '{iid or '#' + str(n + 1)}'"
        if not isinstance(raw, dict) or not isinstance(iid, str):
            f.fail("needs an 'id'", where)
            continue
        found.append(iid)
        start = len(f.problems)
        f.unknown_keys(raw, ("id", "title", "entry", "why", "ask", "sources"), where)
        texts = {k: _text(raw.get(k)) for k in ("title", "why", "ask")}
        for key, value in texts.items():
            if value is None:
                f.fail(f"missing '{key}'", where)
        entry = raw.get("entry")
        if not isinstance(entry, str) or entry not in entry_ids:
            f.fail(f"unknown entry id '{entry}'", where)
        sources = f.sources(raw.get("sources"), where, source_ids)
        if sources is not None and not sources:
            f.fail("has no source; list the source ids 'why' comes from", where)
        if len(f.problems) == start:
            items.append(ChecklistItem(id=iid, title=texts["title"], entry=entry, why=texts["why"],
                                       ask=texts["ask"], sources=sources))
    if f.data is not None and found:
        f.check_ids(found, CHECKLIST_IDS, "checklist item", ordered=True)
    return tuple(items)


def _load_questions(f: _File, source_ids: Collection[str]) -> tuple[Question, ...]:
    """checklist.yml's optional ``questions`` list: id, text, sources and an optional value."""
    if f.data is None or "questions" not in f.data:
        return ()
    raw_list = f.data.get("questions")
    if not isinstance(raw_list, list) or not raw_list:
        f.fail("'questions' must be a non-empty list (or left out)")
        return ()
    questions: list[Question] = []
    found: list[str] = []
    for n, raw in enumerate(raw_list):
        qid = raw.get("id") if isinstance(raw, dict) else None
        where = f"question '{qid or '#' + str(n + 1)}'"
        if not isinstance(raw, dict) or not isinstance(qid, str):
            f.fail("needs an 'id'", where)
            continue
        if qid in found:
            f.fail(f"duplicate question id '{qid}'")
        found.append(qid)
        start = len(f.problems)
        f.unknown_keys(raw, ("id", "text", "value", "sources"), where)
        text = _text(raw.get("text"))
        if text is None:
            f.fail("missing 'text'", where)
        value = raw.get("value")
        if value is not None and value not in VALUE_DIMENSIONS:
            f.fail(f"'value' must be one of {', '.join(VALUE_DIMENSIONS)} or left out, not '{value}'", where)
        sources = f.sources(raw.get("sources"), where, source_ids)
        if sources is not None and not sources:
            f.fail("has no source; list the source ids the question comes from", where)
        if len(f.problems) == start:
            questions.append(Question(id=qid, text=text, value=value, sources=sources))
    return tuple(questions)


def _load_ranges(f: _File, key: str, source_ids: Collection[str], priced: bool) -> tuple[Any, ...]:
    ranges: list[Any] = []
    raw_list = f.data.get(key) if f.data is not None else None
    if f.data is not None and (not isinstance(raw_list, list) or not raw_list):
        f.fail(f"needs a non-empty '{key}' list")
        return ()
    allowed = ("source", "currency", "low", "high", "note") if priced else ("source", "low", "high", "note")
    for n, raw in enumerate(raw_list or []):
        sid = raw.get("source") if isinstance(raw, dict) else None
        where = f"{key} #{n + 1} ({sid or 'no source'})"
        if not isinstance(raw, dict):
            f.fail("must be a mapping", where)
            continue
        start = len(f.problems)
        f.unknown_keys(raw, allowed, where)
        if not isinstance(sid, str) or sid not in source_ids:
            f.fail(f"unknown source id '{sid}'", where)
        low, high = _number(raw.get("low")), _number(raw.get("high"))
        if low is None or high is None:
            f.fail("'low' and 'high' must be numbers (0 or more)", where)
        elif low > high:
            f.fail(f"'low' ({low:g}) is more than 'high' ({high:g})", where)
        note = raw.get("note")
        if note is not None and _text(note) is None:
            f.fail("'note' must be words or left out", where)
        currency = raw.get("currency")
        if priced and (not isinstance(currency, str) or len(currency) != 3 or not currency.isupper()):
            f.fail("'currency' must be a 3-letter code such as USD", where)
        if len(f.problems) > start:
            continue
        if priced:
            ranges.append(PriceRange(source=sid, currency=currency, low=low, high=high, note=_text(note)))
        else:
            ranges.append(CountRange(source=sid, low=low, high=high, note=_text(note)))
    return tuple(ranges)


def _load_source_names(f: _File, source_ids: Collection[str]) -> dict[str, str]:
    """The optional ``source_names`` mapping of costs.yml: source id -> short name."""
    raw = f.data.get("source_names") if f.data is not None else None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        f.fail("'source_names' must map source ids to short names", "source_names")
        return {}
    names: dict[str, str] = {}
    for sid, name in raw.items():
        if sid not in source_ids:
            f.fail(f"unknown source id '{sid}'", "source_names")
        elif _text(name) is None:
            f.fail(f"the name of '{sid}' must be words", "source_names")
        else:
            names[sid] = _text(name)
    return names


def load_decision_aid(folder: Path, source_ids: Collection[str], entry_ids: Collection[str],
                      problems: list[str], frequencies: dict[str, Frequency] | None = None) -> DecisionAid | None:
    """Read and validate ``folder``'s four files; append each problem to ``problems``.

    Returns ``None`` when anything is wrong.
    """
    start = len(problems)
    files = {name: _File(folder / name, problems) for name in DECISION_FILES}
    options = _load_options(files["options.yml"], source_ids, entry_ids, frequencies)
    not_covered = _load_not_covered(files["options.yml"])
    values = _load_values(files["values.yml"])
    checklist = _load_checklist(files["checklist.yml"], source_ids, entry_ids)
    questions = _load_questions(files["checklist.yml"], source_ids)
    cost_file = files["costs.yml"]
    if cost_file.data is not None:
        cost_file.unknown_keys(cost_file.data, (
            "reviewed", "review_due", "per_session", "first_course_sessions",
            "maintenance_sessions_per_year", "source_names"), "top level")
    costs = Costs(
        per_session=_load_ranges(cost_file, "per_session", source_ids, priced=True),
        first_course_sessions=_load_ranges(cost_file, "first_course_sessions", source_ids, priced=False),
        maintenance_sessions_per_year=_load_ranges(cost_file, "maintenance_sessions_per_year", source_ids, priced=False),
        source_names=_load_source_names(cost_file, source_ids),
    )
    if len(problems) > start:
        return None
    reviewed = min(f.reviewed for f in files.values() if f.reviewed)
    review_due = min(f.review_due for f in files.values() if f.review_due)
    order = {oid: i for i, oid in enumerate(OPTION_IDS)}
    value_order = {vid: i for i, vid in enumerate(VALUE_DIMENSIONS)}
    return DecisionAid(
        options=tuple(sorted(options, key=lambda o: order[o.id])),
        values=tuple(sorted(values, key=lambda v: value_order[v.id])),
        checklist=checklist, costs=costs,
        reviewed=reviewed.isoformat(), review_due=review_due.isoformat(),
        questions=questions, not_covered=not_covered,
    )

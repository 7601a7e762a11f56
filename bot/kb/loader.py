"""Read and validate the knowledge files.

Every problem is reported as a :class:`KnowledgeError` naming the file and, where there
is one, the entry, so a person editing YAML knows exactly what to fix. All problems are
collected before raising, not just the first.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any, Iterable

import yaml

from bot.kb.decision import load_decision_aid, parse_date
from bot.kb.field_check import FILE_NAME as FIELD_CHECK_FILE, load_field_check
from bot.kb.frequencies import Frequency, load_frequencies, prose_problems
from bot.kb.model import (
    CERTAINTY_LEVELS,
    CLINIC_FIELDS,
    REVIEWER_FIELDS,
    Clinic,
    Entry,
    Figure,
    KnowledgeBase,
    Reviewer,
    Source,
    Topic,
)

_ID = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")
_MIN_QUESTIONS = 3


class KnowledgeError(ValueError):
    """The knowledge files are invalid. ``problems`` lists each one on its own."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid knowledge base:\n" + "\n".join(f"  - {p}" for p in problems))


def _read_yaml(path: Path, problems: list[str]) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        problems.append(f"{path}: file not found")
    except yaml.YAMLError as exc:
        problems.append(f"{path}: not valid YAML: {exc}")
    return None


def _strings(value: Any) -> list[str] | None:
    if value is None:
        return []
    if isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value):
        return [v.strip() for v in value]
    return None


def _load_topics(path: Path, problems: list[str]) -> dict[str, Topic]:
    data = _read_yaml(path, problems)
    topics: dict[str, Topic] = {}
    if data is None:
        return topics
    items = data.get("topics") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        problems.append(f"{path}: needs a non-empty 'topics' list")
        return topics
    for i, raw in enumerate(items):
        where = f"{path}: topic #{i + 1}"
        if not isinstance(raw, dict) or not all(isinstance(raw.get(k), str) for k in ("id", "intent", "title")):
            problems.append(f"{where}: needs 'id', 'intent' and 'title'")
            continue
        if raw["id"] in topics:
            problems.append(f"{where}: duplicate topic id '{raw['id']}'")
            continue
        topics[raw["id"]] = Topic(id=raw["id"], intent=raw["intent"], title=raw["title"])
    return topics


def _load_sources(path: Path, problems: list[str]) -> dict[str, Source]:
    data = _read_yaml(path, problems)
    sources: dict[str, Source] = {}
    if data is None:
        return sources
    items = data.get("sources") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        problems.append(f"{path}: needs a non-empty 'sources' list")
        return sources
    required = ("id", "file", "title", "publisher", "kind", "stance")
    for i, raw in enumerate(items):
        sid = raw.get("id") if isinstance(raw, dict) else None
        where = f"{path}: source '{sid or '#' + str(i + 1)}'"
        if not isinstance(raw, dict):
            problems.append(f"{where}: must be a mapping")
            continue
        missing = [k for k in required if not isinstance(raw.get(k), str) or not raw.get(k).strip()]
        if missing:
            problems.append(f"{where}: missing {', '.join(missing)}")
            continue
        if not isinstance(raw.get("sells_treatment"), bool):
            problems.append(f"{where}: 'sells_treatment' must be true or false")
            continue
        if sid in sources:
            problems.append(f"{where}: duplicate source id")
            continue
        sources[sid] = Source(
            id=sid, file=raw["file"], title=raw["title"], publisher=raw["publisher"],
            kind=raw["kind"], sells_treatment=raw["sells_treatment"], stance=raw["stance"],
            url=raw.get("url"),
        )
    return sources


def load_clinic(path: Path) -> Clinic:
    """Read the clinic file; raise :class:`KnowledgeError` when it is invalid."""
    problems: list[str] = []
    data = _read_yaml(path, problems)
    if problems:
        raise KnowledgeError(problems)
    if not isinstance(data, dict) or not isinstance(data.get("name"), str) or not data["name"].strip():
        raise KnowledgeError([f"{path}: needs a 'name'"])
    unknown = sorted(set(data) - set(CLINIC_FIELDS))
    if unknown:
        problems.append(f"{path}: unknown field(s) {', '.join(unknown)}; known: {', '.join(CLINIC_FIELDS)}")
    values: dict[str, Any] = {}
    for key in CLINIC_FIELDS:
        value = data.get(key)
        if value is None or value == "":
            continue
        if key == "reviewer":
            reviewer = _reviewer(path, value, problems)
            if reviewer is not None:
                values[key] = reviewer
            continue
        if key == "field_check":
            if not isinstance(value, bool):
                problems.append(f"{path}: 'field_check' must be true or false")
                continue
            values[key] = value
            continue
        if key in ("price_per_session", "price_course"):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                problems.append(f"{path}: '{key}' must be a positive number or empty")
                continue
            value = float(value)
        elif key == "sessions_in_course":
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                problems.append(f"{path}: '{key}' must be a whole number or empty")
                continue
        else:
            value = str(value).strip()
        values[key] = value
    if problems:
        raise KnowledgeError(problems)
    return Clinic(**values)


def _reviewer(path: Path, raw: Any, problems: list[str]) -> Reviewer | None:
    """clinic.yml's ``reviewer``: all empty (not yet reviewed by a clinician) or a real
    clinician's name, role and review date, with credentials if the clinic gives them."""
    where = f"{path}: 'reviewer'"
    if raw is None:
        return None
    if not isinstance(raw, dict):
        problems.append(f"{where} must have the fields {', '.join(REVIEWER_FIELDS)} (empty until a clinician has reviewed the information)")
        return None
    unknown = sorted(str(k) for k in raw if k not in REVIEWER_FIELDS)
    if unknown:
        problems.append(f"{where}: unknown field(s) {', '.join(unknown)}; known: {', '.join(REVIEWER_FIELDS)}")
        return None
    if all(raw.get(k) in (None, "") for k in REVIEWER_FIELDS):
        return None
    start = len(problems)
    texts = {}
    for key in ("name", "role", "credentials"):
        value = raw.get(key)
        if value in (None, ""):
            texts[key] = None
        elif isinstance(value, str) and value.strip():
            texts[key] = " ".join(value.split())
        else:
            problems.append(f"{where}: '{key}' must be text or empty")
    missing = [k for k in ("name", "role") if k in texts and texts[k] is None]
    if missing:
        problems.append(f"{where}: a reviewer needs a {' and a '.join(missing)} (or leave every field empty)")
    reviewed_on = parse_date(raw.get("reviewed_on"))
    if reviewed_on is None:
        problems.append(f"{where}: 'reviewed_on' must be the date of the review (YYYY-MM-DD)")
    elif reviewed_on > dt.date.today():
        problems.append(f"{where}: 'reviewed_on' ({reviewed_on.isoformat()}) is in the future")
    if len(problems) > start:
        return None
    return Reviewer(name=texts["name"], role=texts["role"], credentials=texts["credentials"],
                    reviewed_on=reviewed_on.isoformat())


def _entry(raw: Any, topic: str, position: int, path: Path, sources: dict[str, Source],
           problems: list[str], frequencies: dict[str, Frequency] | None = None) -> Entry | None:
    eid = raw.get("id") if isinstance(raw, dict) else None
    where = f"{path}: entry '{eid or '#' + str(position + 1)}'"
    if not isinstance(raw, dict):
        problems.append(f"{where}: must be a mapping")
        return None
    start = len(problems)
    if not isinstance(eid, str) or not _ID.match(eid):
        problems.append(f"{where}: needs an 'id' of lowercase words joined by '-'")
    for key in ("title", "answer"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            problems.append(f"{where}: missing '{key}'")
    if isinstance(raw.get("answer"), str):
        problems.extend(f"{where}: 'answer' {p}" for p in prose_problems(" ".join(raw["answer"].split())))
    questions = _strings(raw.get("questions"))
    if questions is None or len(questions) < _MIN_QUESTIONS:
        problems.append(f"{where}: needs at least {_MIN_QUESTIONS} 'questions'")
    entry_sources = _strings(raw.get("sources"))
    if not entry_sources:
        problems.append(f"{where}: has no source; list at least one id from sources.yml in 'sources'")
    else:
        for sid in entry_sources:
            if sid not in sources:
                problems.append(f"{where}: unknown source id '{sid}'")
    figures: list[Figure] = []
    raw_figures = raw.get("figures") or []
    if not isinstance(raw_figures, list):
        problems.append(f"{where}: 'figures' must be a list")
        raw_figures = []
    for f in raw_figures:
        if isinstance(f, dict) and "frequency" in f:
            # A share of people: one fact of frequencies.yml, named by its id.
            frequency = (frequencies or {}).get(f["frequency"]) if isinstance(f["frequency"], str) else None
            if frequency is None or set(f) != {"frequency"}:
                problems.append(f"{where}: figure {{frequency: {f['frequency']}}} must name only an id "
                                f"from frequencies.yml")
                continue
            if entry_sources and frequency.source not in entry_sources:
                problems.append(f"{where}: frequency '{frequency.id}' cites '{frequency.source}', which is "
                                f"not in the entry's 'sources'")
            figures.append(Figure(value=frequency.source_form, source=frequency.source, frequency=frequency))
            continue
        if not isinstance(f, dict) or not isinstance(f.get("value"), str) or not isinstance(f.get("source"), str):
            problems.append(f"{where}: each figure needs a 'value' and a 'source'")
            continue
        if f["source"] not in sources:
            problems.append(f"{where}: figure '{f['value']}' cites unknown source id '{f['source']}'")
        elif entry_sources and f["source"] not in entry_sources:
            problems.append(f"{where}: figure '{f['value']}' cites '{f['source']}', which is not in the entry's 'sources'")
        ctx = f.get("context")
        figures.append(Figure(value=f["value"], source=f["source"], context=str(ctx) if ctx else None))
    certainty = raw.get("certainty")
    if certainty not in CERTAINTY_LEVELS:
        problems.append(f"{where}: 'certainty' must be one of {', '.join(CERTAINTY_LEVELS)}")
    reviewed = parse_date(raw.get("reviewed"))
    if reviewed is None:
        problems.append(f"{where}: missing review date ('reviewed: YYYY-MM-DD')")
    review_due = parse_date(raw.get("review_due"))
    if review_due is None:
        problems.append(f"{where}: missing next review date ('review_due: YYYY-MM-DD')")
    elif reviewed is not None and review_due <= reviewed:
        problems.append(f"{where}: 'review_due' must come after 'reviewed'")
    clinic_facts = _strings(raw.get("clinic_facts"))
    if clinic_facts is None or any(c not in CLINIC_FIELDS for c in clinic_facts):
        problems.append(f"{where}: 'clinic_facts' may only name clinic.yml fields: {', '.join(CLINIC_FIELDS)}")
    related = _strings(raw.get("related"))
    raw_keywords = raw.get("keywords")
    if isinstance(raw_keywords, list):  # YAML reads 2023 or 92.9 as numbers; they are words here
        raw_keywords = [str(k) if isinstance(k, (int, float)) and not isinstance(k, bool) else k for k in raw_keywords]
    keywords = _strings(raw_keywords)
    if related is None:
        problems.append(f"{where}: 'related' must be a list of entry ids")
    if keywords is None:
        problems.append(f"{where}: 'keywords' must be a list of words")
    if len(problems) > start:
        return None
    return Entry(
        id=eid, topic=topic, title=raw["title"].strip(), questions=tuple(questions),
        answer=" ".join(raw["answer"].split()), figures=tuple(figures),
        sources=tuple(entry_sources), certainty=certainty, reviewed=reviewed.isoformat(),
        review_due=review_due.isoformat(), related=tuple(related), clinic_facts=tuple(clinic_facts),
        keywords=tuple(keywords), certainty_note=raw.get("certainty_note"), file=path.name,
        position=position,
    )


def _load_entries(folder: Path, topics: dict[str, Topic], sources: dict[str, Source],
                  problems: list[str], frequencies: dict[str, Frequency] | None = None) -> dict[str, Entry]:
    entries: dict[str, Entry] = {}
    files = sorted(folder.glob("*.yml")) if folder.is_dir() else []
    if not files:
        problems.append(f"{folder}: no entry files (*.yml)")
    for path in files:
        data = _read_yaml(path, problems)
        if data is None:
            continue
        topic = data.get("topic") if isinstance(data, dict) else None
        if topic not in topics:
            problems.append(f"{path}: 'topic' must be one of the ids in topics.yml, not '{topic}'")
            continue
        items = data.get("entries")
        if not isinstance(items, list) or not items:
            problems.append(f"{path}: needs a non-empty 'entries' list")
            continue
        for position, raw in enumerate(items):
            entry = _entry(raw, topic, position, path, sources, problems, frequencies)
            if entry is None:
                continue
            if entry.id in entries:
                problems.append(f"{path}: entry '{entry.id}': duplicate id (also in {entries[entry.id].file})")
                continue
            entries[entry.id] = entry
    for entry in entries.values():
        for rid in entry.related:
            if rid not in entries:
                problems.append(f"{entry.file}: entry '{entry.id}': 'related' names unknown entry '{rid}'")
    for topic in topics.values():
        if not any(e.topic == topic.id for e in entries.values()):
            problems.append(f"topics.yml: topic '{topic.id}' is claimed but has no entry in {folder}")
    return entries


def load_knowledge(knowledge_dir: Path, clinic_path: Path,
                   claimed_intents: Iterable[str] = ()) -> KnowledgeBase:
    """Load and validate everything; raise :class:`KnowledgeError` listing every problem.

    ``claimed_intents`` are the intents the dialogue answers from the knowledge base (see
    :func:`bot.kb.build.claimed_intents`): each must belong to a topic with entries.
    """
    problems: list[str] = []
    topics = _load_topics(knowledge_dir / "topics.yml", problems)
    sources = _load_sources(knowledge_dir / "sources.yml", problems)
    frequencies = load_frequencies(knowledge_dir / "frequencies.yml", set(sources), problems)
    entries = _load_entries(knowledge_dir / "entries", topics, sources, problems, frequencies)
    # The decision support is optional (a knowledge folder without decision/ has none);
    # when the folder exists, all four of its files must be valid.
    decision = None
    if (knowledge_dir / "decision").is_dir():
        decision = load_decision_aid(knowledge_dir / "decision", set(sources), set(entries), problems,
                                     frequencies=frequencies)
    # The field-test check is optional too: knowledge/decision/field_check.yml, if present.
    field_check = None
    if (knowledge_dir / "decision" / FIELD_CHECK_FILE).is_file():
        field_check = load_field_check(knowledge_dir / "decision" / FIELD_CHECK_FILE,
                                       {e.id: e.sources for e in entries.values()}, problems)
    known_intents = {t.intent for t in topics.values()}
    for intent in claimed_intents:
        if intent not in known_intents:
            problems.append(f"data/rules: intent '{intent}' is answered from the knowledge base but no topic in topics.yml claims it")
    try:
        clinic = load_clinic(clinic_path)
    except KnowledgeError as exc:
        problems.extend(exc.problems)
        clinic = None
    if problems:
        raise KnowledgeError(problems)
    assert clinic is not None
    return KnowledgeBase(topics=topics, sources=sources, entries=entries, clinic=clinic,
                         decision=decision, frequencies=frequencies, field_check=field_check)

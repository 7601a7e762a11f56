"""The knowledge base's data: topics, sources, entries and the clinic's own facts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from bot.kb.decision import DecisionAid
from bot.kb.field_check import FieldCheck
from bot.kb.frequencies import Frequency

CERTAINTY_LEVELS: tuple[str, ...] = ("high", "moderate", "low", "very-low")

# The clinic.yml fields an entry may show beside its answer.
CLINIC_FIELDS: tuple[str, ...] = (
    "name", "phone", "email", "booking", "hours", "emergency_number", "currency",
    "price_per_session", "price_course", "sessions_in_course", "callback_time", "crisis_line",
    "reviewer", "field_check",
)
# clinic.yml's ``reviewer``: the clinician who reviewed the knowledge for the clinic.
REVIEWER_FIELDS: tuple[str, ...] = ("name", "role", "credentials", "reviewed_on")


@dataclass(frozen=True)
class Topic:
    id: str
    intent: str
    title: str


@dataclass(frozen=True)
class Source:
    id: str
    file: str
    title: str
    publisher: str
    kind: str
    sells_treatment: bool
    stance: str
    url: str | None = None


@dataclass(frozen=True)
class Figure:
    value: str
    source: str
    context: str | None = None
    # A share of people (knowledge/frequencies.yml): shown as "N out of 100" with who, how
    # many and over what time, and drawn as an icon array. ``value`` is then its source form.
    frequency: Frequency | None = None


@dataclass(frozen=True)
class Entry:
    id: str
    topic: str
    title: str
    questions: tuple[str, ...]
    answer: str
    figures: tuple[Figure, ...]
    sources: tuple[str, ...]
    certainty: str
    reviewed: str
    review_due: str
    related: tuple[str, ...] = ()
    clinic_facts: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    certainty_note: str | None = None
    file: str = ""
    position: int = 0  # order within its topic file; 0 is the topic's overview


@dataclass(frozen=True)
class Reviewer:
    """A real clinician who checked the knowledge. ``credentials`` may be ``None``."""

    name: str
    role: str
    reviewed_on: str  # ISO date
    credentials: str | None = None


@dataclass(frozen=True)
class Clinic:
    """The clinic's facts. ``None`` means the clinic has not set that fact."""

    name: str
    phone: str | None = None
    email: str | None = None
    booking: str | None = None
    hours: str | None = None
    emergency_number: str | None = None
    currency: str | None = None
    price_per_session: float | None = None
    price_course: float | None = None
    sessions_in_course: int | None = None
    callback_time: str | None = None
    crisis_line: str | None = None
    # None until a clinician has reviewed the knowledge: the assistant then says so.
    reviewer: Reviewer | None = None
    # True while the clinic runs a field test (docs/field-test/protocol.md): the guided steps
    # then offer the short anonymous check at their start and end. Not a fact for patients.
    field_check: bool = False

    def get(self, name: str) -> Any:
        return getattr(self, name)


@dataclass
class KnowledgeBase:
    topics: dict[str, Topic]
    sources: dict[str, Source]
    entries: dict[str, Entry]
    clinic: Clinic
    built_from: dict[str, str] = field(default_factory=dict)
    # The guided decision support (knowledge/decision/); None when that folder is absent.
    decision: DecisionAid | None = None
    # knowledge/frequencies.yml: every share of people quoted, by id.
    frequencies: dict[str, Frequency] = field(default_factory=dict)
    # The field-test check (knowledge/decision/field_check.yml); None when that file is absent.
    field_check: FieldCheck | None = None

    def topic_for_intent(self, intent: str | None) -> Topic | None:
        for topic in self.topics.values():
            if topic.intent == intent:
                return topic
        return None

    def entries_of(self, topic_id: str) -> list[Entry]:
        return sorted(
            (e for e in self.entries.values() if e.topic == topic_id), key=lambda e: e.position
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "topics": [asdict(t) for t in self.topics.values()],
            "sources": [asdict(s) for s in self.sources.values()],
            "entries": [asdict(e) for e in self.entries.values()],
            "clinic": asdict(self.clinic),
            "built_from": self.built_from,
            "decision": self.decision.to_dict() if self.decision else None,
            "frequencies": [f.to_dict() for f in self.frequencies.values()],
            "field_check": self.field_check.to_dict() if self.field_check else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "KnowledgeBase":
        entries = {}
        for raw in data["entries"]:
            raw = dict(raw)
            raw["figures"] = tuple(
                Figure(**{**f, "frequency": Frequency.from_dict(f["frequency"]) if f.get("frequency") else None})
                for f in raw["figures"]
            )
            for key in ("questions", "sources", "related", "clinic_facts", "keywords"):
                raw[key] = tuple(raw[key])
            entries[raw["id"]] = Entry(**raw)
        return cls(
            topics={t["id"]: Topic(**t) for t in data["topics"]},
            sources={s["id"]: Source(**s) for s in data["sources"]},
            entries=entries,
            clinic=Clinic(**{**data["clinic"], "reviewer": Reviewer(**data["clinic"]["reviewer"])
                             if data["clinic"].get("reviewer") else None}),
            built_from=data.get("built_from", {}),
            decision=DecisionAid.from_dict(data["decision"]) if data.get("decision") else None,
            frequencies={f["id"]: Frequency.from_dict(f) for f in data.get("frequencies") or ()},
            field_check=FieldCheck.from_dict(data["field_check"]) if data.get("field_check") else None,
        )

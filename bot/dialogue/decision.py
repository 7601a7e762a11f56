"""Build the messages of the guided decision support (actions/decision.py, options.py,
values.py, readiness.py, cost.py).

Facts come from ``runtime.kb.decision`` (knowledge/decision/*.yml) and the clinic file;
every sentence around them is a response template in domain.yml. Nothing here
ranks the options or picks one: every option is shown the same way, in the same order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Iterable, Mapping, Sequence

from bot.dialogue import figures as shares
from bot.dialogue.replies import Reply, command, readable_date, template
from bot.kb.decision import Cell, CountRange, DecisionAid, Option, PriceRange, Value
from bot.kb.frequencies import CELL_KINDS
from bot.kb.model import Clinic, KnowledgeBase



# --- sources, labels, cells --------------------------------------------------------------


def source_list(kb: KnowledgeBase, source_ids: Iterable[str]) -> list[dict[str, Any]]:
    """The ``sources`` payload (as ``replies.sources_payload``) for ``source_ids``, no repeats."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for sid in source_ids:
        if sid in seen or sid not in kb.sources:
            continue
        seen.add(sid)
        source = kb.sources[sid]
        out.append({
            "id": source.id, "title": source.title, "url": source.url,
            "publisher": source.publisher, "sells_treatment": source.sells_treatment,
        })
    return out


def dimension_label(domain: Mapping[str, Any], dimension: str) -> str:
    """The heading of one dimension, e.g. ``Harms and side effects``."""
    return template(domain, f"utter_dimension_{dimension}")


def cell_text(domain: Mapping[str, Any], cell: Cell | None) -> str:
    """What the sources say, or the plain statement that they say nothing."""
    if cell is None or cell.text is None:
        return template(domain, "utter_options_silent")
    return cell.text


def cell_line(domain: Mapping[str, Any], label: str, cell: Cell | None) -> str:
    return template(domain, "utter_options_cell", label=label, text=cell_text(domain, cell))


def cell_numbers(domain: Mapping[str, Any], kb: KnowledgeBase, dimension: str, cell: Cell | None) -> str | None:
    """A benefits or harms cell's shares of people out of 100 in words (with how sure), or
    the plain statement that no source counts it; None for other cells and silent ones."""
    if cell is None or cell.text is None or dimension not in CELL_KINDS:
        return None
    if cell.frequencies:
        return shares.lines(domain, kb, cell.frequencies)
    return template(domain, "utter_frequency_none")


def cell_reply(domain: Mapping[str, Any], kb: KnowledgeBase, aid: DecisionAid, option: Option,
               dimension: str, label: str) -> Reply:
    """One option on one dimension, as its own message with its own sources.

    A benefits or harms cell gives its shares of people out of 100 (each with who, how many,
    over what time and how sure, and in ``figures`` for the icon arrays), or says that no
    source counts it.
    """
    cell = option.cells.get(dimension)
    text = cell_line(domain, label, cell)
    counted = cell.frequencies if cell else ()
    numbers = cell_numbers(domain, kb, dimension, cell)
    if numbers:
        text += "\n\n" + numbers
    return Reply(
        text=text,
        custom={
            **({"figures": shares.payloads(domain, kb, counted)} if counted else {}),
            "sources": source_list(kb, cell.sources if cell else ()),
            "decision": {"option": option.id, "dimension": dimension,
                         "silent": cell is None or cell.text is None},
            "reviewed": aid.reviewed,
            "review_due": aid.review_due,
        },
    )


def response_buttons(domain: Mapping[str, Any], name: str) -> list[dict[str, str]]:
    """The buttons of response ``name``'s first variant in the domain (may be none)."""
    variants = (domain.get("responses") or {}).get(name) or []
    if not variants:
        raise KeyError(f"domain.yml has no response '{name}'")
    return [{"title": str(b["title"]), "payload": str(b["payload"])} for b in variants[0].get("buttons") or []]


def button(domain: Mapping[str, Any], title_response: str, intent: str,
           entities: Mapping[str, str] | None = None) -> dict[str, str]:
    """A button whose title is a response template and whose payload is an intent command."""
    return {"title": template(domain, title_response), "payload": command(intent, entities)}


# --- values: what a person typed -> value ids ---------------------------------------------

# Phrases that say a thing does NOT matter ("I don't care about cost"): the value after
# them is skipped. "No needles" and "I hate needles" still count: they say it matters.
_NEGATION = r"(?:not|never|less|do ?n[o']?t|does ?n[o']?t|is ?n[o']?t|are ?n[o']?t|least)"
_CARE = r"(?:care|caring|bothered|worried|fussed|mind|minded|matter|matters|important|concerned|an issue|a big deal)"
_FILLER = r"(?:\s+(?:about|for|of|on|the|that|with|whether|if|it|is|so|much|really|too|at|all|by|me|to))*"
# "I don't care about the ..." just before the value's word, or "... isn't important" after it.
_DISMISSIVE_BEFORE = re.compile(r"\b" + _NEGATION + r"\s+(?:really\s+|much\s+|too\s+|that\s+)?" + _CARE + _FILLER + r"\s*$")
_DISMISSIVE_AFTER = re.compile(r"^\s*(?:is|are|'s)?\s*" + _NEGATION + r"\s+(?:really\s+|that\s+|so\s+|too\s+)?"
                               + r"(?:matter|matters|important|bother|bothered|worry|an issue|a big deal)\b")
_ORDINALS = {
    "first": 0, "1": 0, "1st": 0, "one": 0, "a": 0,
    "second": 1, "2": 1, "2nd": 1, "two": 1, "b": 1,
    "third": 2, "3": 2, "3rd": 2, "three": 2, "c": 2,
    "fourth": 3, "4": 3, "4th": 3, "four": 3, "d": 3,
    "fifth": 4, "5": 4, "5th": 4, "five": 4, "e": 4,
    "sixth": 5, "6": 5, "6th": 5, "six": 5, "f": 5,
}
_ORDINAL = re.compile(r"\b(?:the\s+|number\s+|option\s+|no\.?\s*)?(first|second|third|fourth|fifth|sixth|1st|2nd|3rd|"
                      r"4th|5th|6th|[1-6]|[a-f])\b(?:\s+(?:one|option|choice|button))?")


def _normal(text: str) -> str:
    text = text.lower().replace("’", "'")
    return " ".join(re.sub(r"[^a-z0-9' -]+", " ", text).split())


def match_values(text: str, values: Sequence[Value]) -> list[str]:
    """The value ids whose words appear in ``text``, in the order the person wrote them.

    Words match whole (a trailing "s" allowed); a value the person says does not matter
    to them ("I don't care about the cost") is left out.
    """
    plain = _normal(text)
    found: list[tuple[int, str]] = []
    for value in values:
        first: int | None = None
        for word in (value.id.replace("_", " "), *value.words):
            for m in re.finditer(r"\b" + re.escape(word) + r"s?\b", plain):
                if _DISMISSIVE_BEFORE.search(plain[:m.start()]) or _DISMISSIVE_AFTER.match(plain[m.end():]):
                    continue
                first = m.start() if first is None else min(first, m.start())
                break
        if first is not None:
            found.append((first, value.id))
    return [vid for _, vid in sorted(found)]


def match_ordinal(text: str, shown: Sequence[str]) -> str | None:
    """``shown[i]`` when the whole message is an ordinal such as "the second one" or "3"."""
    plain = _normal(text)
    m = _ORDINAL.fullmatch(plain)
    if not m:
        return None
    index = _ORDINALS.get(m.group(1))
    return shown[index] if index is not None and index < len(shown) else None


# --- costs ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Span:
    """A low-high range of numbers (counts or money)."""

    low: Decimal
    high: Decimal

    @classmethod
    def of(cls, low: float, high: float) -> "Span":
        return cls(Decimal(str(low)), Decimal(str(high)))

    def times(self, other: "Span") -> "Span":
        return Span(self.low * other.low, self.high * other.high)

    def plus(self, other: "Span") -> "Span":
        return Span(self.low + other.low, self.high + other.high)


def widest(ranges: Iterable[PriceRange | CountRange]) -> Span:
    """From the lowest low to the highest high of ``ranges``."""
    items = list(ranges)
    return Span(min(Decimal(str(r.low)) for r in items), max(Decimal(str(r.high)) for r in items))


def whole(amount: Decimal) -> Decimal:
    return amount.quantize(Decimal(1), rounding=ROUND_HALF_UP)


def count_text(value: Decimal) -> str:
    return f"{value.normalize():f}" if value != value.to_integral() else f"{int(value):,}"


def money_text(currency: str | None, amount: Decimal) -> str:
    """``GBP 1,250`` (whole units) or ``GBP 167.50`` when cents matter."""
    if amount == amount.to_integral():
        number = f"{int(amount):,}"
    else:
        number = f"{amount.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,}"
    return f"{currency} {number}" if currency else number


def span_text(span: Span, currency: str | None = None, money: bool = False) -> str:
    """``8 to 12``, ``12``, ``USD 250 to 400``."""
    fmt = (lambda v: money_text(None, v)) if money else count_text
    body = fmt(span.low) if span.low == span.high else f"{fmt(span.low)} to {fmt(span.high)}"
    return f"{currency} {body}" if currency else body


def rounded(span: Span) -> Span:
    return Span(whole(span.low), whole(span.high))


@dataclass(frozen=True)
class PublishedSum:
    """Sessions times the published price per session, for one currency."""

    currency: str
    price: Span
    course_sessions: Span
    upkeep_sessions: Span
    course: Span
    upkeep: Span
    year: Span
    price_sources: tuple[str, ...]


def published_sums(costs: Any) -> list[PublishedSum]:
    """One sum per currency of the published prices (the sources' own figures only)."""
    course_sessions = widest(costs.first_course_sessions)
    upkeep_sessions = widest(costs.maintenance_sessions_per_year)
    sums: list[PublishedSum] = []
    currencies = list(dict.fromkeys(p.currency for p in costs.per_session))
    for currency in currencies:
        ranges = [p for p in costs.per_session if p.currency == currency]
        price = widest(ranges)
        course = course_sessions.times(price)
        upkeep = upkeep_sessions.times(price)
        sums.append(PublishedSum(
            currency=currency, price=price, course_sessions=course_sessions,
            upkeep_sessions=upkeep_sessions, course=course, upkeep=upkeep,
            year=course.plus(upkeep),
            price_sources=tuple(dict.fromkeys(p.source for p in ranges)),
        ))
    return sums


@dataclass(frozen=True)
class ClinicSum:
    """The clinic's own figures. ``None`` parts could not be worked out (price not set)."""

    currency: str | None
    course: Span | None
    course_how: str | None  # "course_price", "sessions_times_price", "published_sessions_times_price"
    course_sessions: Span | None
    upkeep: Span | None
    upkeep_sessions: Span
    year: Span | None


def clinic_sum(clinic: Clinic, costs: Any) -> ClinicSum | None:
    """The first course and a year of top-ups at the clinic's prices; None when it set none."""
    if clinic.price_per_session is None and clinic.price_course is None:
        return None
    per_session = Span.of(clinic.price_per_session, clinic.price_per_session) \
        if clinic.price_per_session is not None else None
    upkeep_sessions = widest(costs.maintenance_sessions_per_year)
    course: Span | None = None
    course_how: str | None = None
    course_sessions: Span | None = None
    if clinic.sessions_in_course:
        course_sessions = Span.of(clinic.sessions_in_course, clinic.sessions_in_course)
    if clinic.price_course is not None:
        course = Span.of(clinic.price_course, clinic.price_course)
        course_how = "course_price"
    elif per_session is not None and course_sessions is not None:
        course = course_sessions.times(per_session)
        course_how = "sessions_times_price"
    elif per_session is not None:
        course_sessions = widest(costs.first_course_sessions)
        course = course_sessions.times(per_session)
        course_how = "published_sessions_times_price"
    upkeep = upkeep_sessions.times(per_session) if per_session is not None else None
    year = course.plus(upkeep) if course is not None and upkeep is not None else None
    return ClinicSum(currency=clinic.currency, course=course, course_how=course_how,
                     course_sessions=course_sessions, upkeep=upkeep,
                     upkeep_sessions=upkeep_sessions, year=year)


def source_name(kb: KnowledgeBase, aid: DecisionAid, source_id: str) -> str:
    """The short name of a source in a sentence ("hair-loss guide"), else its title."""
    if source_id in aid.costs.source_names:
        return aid.costs.source_names[source_id]
    source = kb.sources.get(source_id)
    return source.title if source else source_id


def range_list(kb: KnowledgeBase, aid: DecisionAid, ranges: Iterable[PriceRange | CountRange]) -> str:
    """``8 to 12 (hair-loss guide); 5 to 15 (InLiber)``: each published figure with its source."""
    parts = []
    for r in ranges:
        currency = r.currency if isinstance(r, PriceRange) else None
        parts.append(f"{span_text(Span.of(r.low, r.high), currency, money=currency is not None)} "
                     f"({source_name(kb, aid, r.source)})")
    return "; ".join(parts)

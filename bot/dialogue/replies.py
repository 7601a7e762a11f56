"""Build the messages the actions send.

Wording comes from two places only: facts from the knowledge base, glue from the
response templates in domain.yml (passed to every action as ``domain``). This module
fills the templates; it holds no patient-facing sentences of its own.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Mapping

from bot.dialogue import figures as shares
from bot.kb.model import Clinic, Entry, KnowledgeBase
from contract.commands import command
from contract.urgent import response_text

CERTAINTY_WORDS = {"high": "high", "moderate": "moderate", "low": "low", "very-low": "very low"}


def template(domain: Mapping[str, Any], name: str, **values: Any) -> str:
    """The text of response ``name`` in the domain, filled with ``values`` (``{unknown}``
    placeholders stay as they are): the same filler as the urgent replies and the API's."""
    return response_text(domain.get("responses") or {}, name, **values)




@dataclass(frozen=True)
class Reply:
    """One chat message: text, buttons and the custom payload the API reads."""

    text: str
    buttons: list[dict[str, str]] = field(default_factory=list)
    custom: dict[str, Any] | None = None


def entry_button(kb: KnowledgeBase, entry: Entry) -> dict[str, str]:
    intent = kb.topics[entry.topic].intent
    return {"title": entry.title, "payload": command(intent, {"entry": entry.id})}


def topic_buttons(kb: KnowledgeBase) -> list[dict[str, str]]:
    return [{"title": t.title, "payload": command(t.intent)} for t in kb.topics.values()]


def guide_buttons(domain: Mapping[str, Any]) -> list[dict[str, str]]:
    """The guided decision support and the disclosure, offered beside the topics."""
    return [
        {"title": template(domain, "utter_button_decide"), "payload": command("decision_help")},
        {"title": template(domain, "utter_button_disclosure"), "payload": command("ask_disclosure")},
    ]


def contact_button(domain: Mapping[str, Any]) -> dict[str, str]:
    return {"title": template(domain, "utter_button_contact"), "payload": command("contact_clinic")}


def _money(clinic: Clinic, amount: float) -> str:
    value = f"{amount:,.0f}" if float(amount).is_integer() else f"{amount:,.2f}"
    return f"{clinic.currency} {value}" if clinic.currency else value


def readable_date(iso: str) -> str:
    """A review date as replies show it, e.g. ``22 November 2026``."""
    day = dt.date.fromisoformat(iso)
    return f"{day.day} {day.strftime('%B %Y')}"


def clinic_fact_lines(domain: Mapping[str, Any], clinic: Clinic, facts: tuple[str, ...]) -> list[str]:
    """Lines giving the clinic's own figures beside a published answer."""
    lines: list[str] = []
    if "price_per_session" in facts:
        if clinic.price_per_session is not None:
            lines.append(template(domain, "utter_clinic_price_session", clinic=clinic.name,
                                  price=_money(clinic, clinic.price_per_session)))
        else:
            lines.append(template(domain, "utter_clinic_price_session_unset", clinic=clinic.name))
    if "price_course" in facts or "sessions_in_course" in facts:
        if clinic.price_course is not None:
            sessions = f" ({clinic.sessions_in_course} sessions)" if clinic.sessions_in_course else ""
            lines.append(template(domain, "utter_clinic_price_course", clinic=clinic.name,
                                  price=_money(clinic, clinic.price_course), sessions=sessions))
        else:
            lines.append(template(domain, "utter_clinic_price_course_unset", clinic=clinic.name))
    if {"phone", "email", "booking", "name"} & set(facts):
        lines.append(contact_line(domain, clinic))
    if "hours" in facts and clinic.hours:
        lines.append(template(domain, "utter_clinic_hours", hours=clinic.hours))
    if "reviewer" in facts:
        lines.append(reviewer_line(domain, clinic))
    return lines


def reviewer_line(domain: Mapping[str, Any], clinic: Clinic) -> str:
    """Which clinician reviewed the information and when (clinic.yml ``reviewer``), or the
    plain statement that no clinician has reviewed it yet."""
    reviewer = clinic.reviewer
    if reviewer is None:
        return template(domain, "utter_clinician_not_reviewed")
    who = f"{reviewer.name}, {reviewer.role}" + (f" ({reviewer.credentials})" if reviewer.credentials else "")
    return template(domain, "utter_clinician_reviewed", reviewer=who,
                    reviewed_on=readable_date(reviewer.reviewed_on))


def contact_line(domain: Mapping[str, Any], clinic: Clinic) -> str:
    ways = [w for w in (clinic.phone, clinic.email) if w]
    how = (" on " + " or ".join(ways)) if ways else ""
    return template(domain, "utter_clinic_contact", clinic=clinic.name, how=how,
                    booking=clinic.booking or "").strip()


def sources_payload(kb: KnowledgeBase, entry: Entry) -> list[dict[str, Any]]:
    out = []
    for sid in entry.sources:
        source = kb.sources[sid]
        out.append({
            "id": source.id, "title": source.title, "url": source.url,
            "publisher": source.publisher, "sells_treatment": source.sells_treatment,
        })
    return out


def answer_reply(domain: Mapping[str, Any], kb: KnowledgeBase, entry: Entry,
                 score: float | None = None, max_related: int = 3) -> Reply:
    """The message answering with ``entry``: text, its shares of people out of 100, how sure
    (with the entry's note), clinic facts, related questions, sources."""
    counted = [f.frequency for f in entry.figures if f.frequency is not None]
    answer = entry.answer
    if counted:
        answer += "\n\n" + shares.lines(domain, kb, counted, known_note=entry.certainty_note)
    note = " " + entry.certainty_note.strip() if entry.certainty_note else ""
    if note and note[-1] not in ".!?":
        note += "."
    text = template(domain, "utter_kb_answer", answer=answer,
                    certainty=CERTAINTY_WORDS[entry.certainty], certainty_note=note,
                    reviewed=readable_date(entry.reviewed))
    extra = clinic_fact_lines(domain, kb.clinic, entry.clinic_facts)
    if extra:
        text = text + "\n\n" + " ".join(extra)
    related = [kb.entries[r] for r in entry.related if r in kb.entries][:max_related]
    custom = {
        "sources": sources_payload(kb, entry),
        "topic": entry.topic,
        "entry_id": entry.id,
        "certainty": entry.certainty,
        "reviewed": entry.reviewed,
        "review_due": entry.review_due,
        "figures": [shares.payload(domain, kb, f.frequency) if f.frequency is not None
                    else {"value": f.value, "source": f.source} for f in entry.figures],
    }
    if score is not None:
        custom["score"] = round(score, 4)
    return Reply(text=text, buttons=[entry_button(kb, r) for r in related], custom=custom)

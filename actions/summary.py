"""action_consultation_summary: notes to take to the consultation, in the chat and as a page.

The custom ``summary`` block (``{title, generated_at, sections: [{heading, intro, items:
[{text, sources}]}], footer}``, see api/schemas.py ``Summary``) becomes a printable page
under the API; the message text is the same summary in plain text. Sections, each left
out when there is nothing to say:

* first what a clinician needs (bot/dialogue/summary_parts.py): red flags and the checklist
  items answered yes or not sure; where the hair loss is, how long, treatments tried; the
  options looked at and the one the person leans to; the other checklist answers;
* what matters most to them (``important_values``);
* their SURE result (``sure_*``, ``sure_result``);
* what they asked: the knowledge entries answered in this conversation;
* questions to ask the clinician: from the checklist items answered yes or not sure, from
  what matters to them and general ones (knowledge/decision/checklist.yml).

The stored document (the ``summary`` block: the printable page, and staff's copy) holds the
answers only when the person agreed to keep them (``checklist_consent``, as the ``record``
block). The chat's plain text (``build(..., for_chat=True)``) also shows the answers not
kept, marked so: they stay in this chat only.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterable, Mapping

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.dialogue import checklist as cl
from bot.dialogue import figures as shares
from bot.dialogue import summary_parts as parts
from bot.dialogue.field_check import offer_after
from bot.dialogue.replies import readable_date, reviewer_line, template
from bot.kb.model import KnowledgeBase
from bot.kb.runtime import Runtime, get_runtime

SURE_SLOTS: tuple[str, ...] = ("sure_sure", "sure_informed", "sure_values", "sure_support")
SURE_ANSWERS: tuple[str, ...] = ("yes", "no", "not_sure")


def asked_entries(tracker: Tracker, kb: KnowledgeBase) -> list[str]:
    """Ids of the knowledge entries answered in this conversation, first asked first.

    Read from the bot messages' custom ``entry_id`` and from the ``last_entry`` slot's history.
    """
    found: list[str] = []
    for event in tracker.events or []:
        entry_id = None
        if event.get("event") == "bot":
            custom = (event.get("data") or {}).get("custom") or {}
            entry_id = custom.get("entry_id") if isinstance(custom, dict) else None
        elif event.get("event") == "slot" and event.get("name") == "last_entry":
            entry_id = event.get("value")
        if isinstance(entry_id, str) and entry_id in kb.entries and entry_id not in found:
            found.append(entry_id)
    return found


def _item(text: str, sources: Iterable[str] = (), figures: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    item = {"text": text, "sources": list(dict.fromkeys(sources))[:20]}
    if figures:  # shares of people out of 100: icon arrays on the page, words in the chat
        item["figures"] = figures[:10]
    return item


def _section(heading: str, intro: str | None, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"heading": heading, "intro": intro, "items": items[:100]}


def plain_text(domain: Mapping[str, Any], summary: Mapping[str, Any]) -> str:
    """The summary as chat text: headings, intros and one line per item."""
    parts = [template(domain, "utter_summary_ready")]
    for section in summary["sections"]:
        lines = [section["heading"].upper()]
        if section.get("intro"):
            lines.append(section["intro"])
        for item in section["items"]:
            lines.append("- " + item["text"])
            lines += ["  " + f["text"] for f in item.get("figures", [])]
        parts.append("\n".join(lines))
    parts.append(summary["footer"])
    parts.append(template(domain, "utter_summary_link"))
    return "\n\n".join(parts)


class ActionConsultationSummary(Action):
    def __init__(self, runtime: Runtime | None = None) -> None:
        self._runtime = runtime or get_runtime()

    def name(self) -> str:
        return "action_consultation_summary"

    def build(self, tracker: Tracker, domain: Mapping[str, Any], now: dt.datetime | None = None,
              *, for_chat: bool = False) -> dict[str, Any]:
        """The ``summary`` block for this conversation; ``for_chat``: the chat's copy, with the
        answers the person asked not to keep (never sent as the block)."""
        kb = self._runtime.kb
        decision = kb.decision
        sections: list[dict[str, Any]] = []
        later: list[dict[str, Any]] = []  # after the values and the SURE result

        asked = asked_entries(tracker, kb)
        if asked:
            later.append(_section(
                template(domain, "utter_summary_asked_heading"), template(domain, "utter_summary_asked_intro"),
                [_item(kb.entries[e].title, kb.entries[e].sources,
                       shares.payloads(domain, kb, [f.frequency for f in kb.entries[e].figures if f.frequency]))
                 for e in asked]))
        numbers = shares.option_items(domain, kb) if shares.options_shown(tracker.events) else []
        if numbers:
            later.append(_section(template(domain, "utter_summary_numbers_heading"),
                                  template(domain, "utter_summary_numbers_intro"), numbers))

        # What a clinician needs first; the checklist answers it may show (kept, or for_chat).
        first, answered = parts.clinician_sections(domain, decision, tracker.get_slot, tracker.events or [],
                                                   for_chat=for_chat)
        sections += first

        values = self._values(tracker)
        if values:
            sections.append(_section(template(domain, "utter_summary_values_heading"),
                                     template(domain, "utter_summary_values_intro"),
                                     [_item(decision.value(v).title) for v in values]))

        sure = {slot: tracker.get_slot(slot) for slot in SURE_SLOTS if tracker.get_slot(slot) in SURE_ANSWERS}
        if sure:
            result = tracker.get_slot("sure_result")
            if not isinstance(result, str) or not result.strip():
                result = f"{sum(a == 'yes' for a in sure.values())} of {len(SURE_SLOTS)}"
            items = [_item(template(domain, "utter_summary_sure_item",
                                    question=template(domain, f"utter_summary_{slot}"),
                                    answer=cl.answer_label(domain, answer)))
                     for slot, answer in sure.items()]
            intro = template(domain, "utter_summary_sure_intro", result=result)
            if len(sure) < len(SURE_SLOTS) or any(a != "yes" for a in sure.values()):
                intro += " " + template(domain, "utter_summary_sure_low")
            sections.append(_section(template(domain, "utter_summary_sure_heading"), intro, items))
        sections += later

        questions: list[dict[str, Any]] = []
        seen: set[str] = set()

        def add(text: str, sources: Iterable[str]) -> None:
            if text not in seen:
                seen.add(text)
                questions.append(_item(text, sources))

        if decision is not None:
            for item in cl.items_with(decision, answered, cl.POINT_ANSWERS):
                add(item.ask, item.sources)
            for value in values:
                for question in decision.value_questions(value):
                    add(question.text, question.sources)
            for question in decision.general_questions():
                add(question.text, question.sources)
        if questions:
            sections.append(_section(template(domain, "utter_summary_questions_heading"),
                                     template(domain, "utter_summary_questions_intro"), questions))

        reviewed = [e.reviewed for e in kb.entries.values()] + ([decision.reviewed] if decision else [])
        due = [e.review_due for e in kb.entries.values()] + ([decision.review_due] if decision else [])
        footer = template(domain, "utter_summary_footer", clinic=kb.clinic.name,
                          reviewed=readable_date(min(reviewed)) if reviewed else "",
                          review_due=readable_date(min(due)) if due else "")
        footer += " " + reviewer_line(domain, kb.clinic)
        generated = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc).replace(microsecond=0)
        return {
            "title": template(domain, "utter_summary_title"),
            "generated_at": generated.isoformat().replace("+00:00", "Z"),
            "sections": sections,
            "footer": footer,
        }

    def _values(self, tracker: Tracker) -> list[str]:
        decision = self._runtime.kb.decision
        raw = tracker.get_slot("important_values")
        if decision is None or not isinstance(raw, list):
            return []
        known = {v.id for v in decision.values}
        return list(dict.fromkeys(v for v in raw if v in known))

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        now = dt.datetime.now(dt.timezone.utc)
        summary = self.build(tracker, domain, now)  # stored by the API: only what may be kept
        chat = self.build(tracker, domain, now, for_chat=True)  # this chat only
        cited = [sid for section in chat["sections"] for item in section["items"] for sid in item["sources"]]
        custom = {"summary": summary, "sources": cl.source_payload(self._runtime.kb, cited)}
        text = plain_text(domain, chat)
        if chat != summary:
            text += "\n\n" + template(domain, "utter_summary_chat_only")
        dispatcher.utter_message(text=text, json_message=custom)
        # During a field test: the second short check, once (actions/field_check.py).
        return offer_after(dispatcher, tracker, domain, self._runtime.kb)

"""action_disclosure: who runs and pays for the assistant, its sources, how current it is.

A decision aid has to say who funds it. This one is run by a clinic that sells the
treatment, so the reply says so first, then lists every source with its publisher and
whether that publisher sells the treatment, then when the knowledge was last reviewed, when
the next review is due and how often it is reviewed, and last which clinician reviewed it for
the clinic (clinic.yml ``reviewer``) or that no clinician has reviewed it yet.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from bot.dialogue.replies import contact_button, readable_date, reviewer_line, template
from bot.kb.model import KnowledgeBase, Source
from bot.kb.runtime import Runtime, get_runtime


def review_dates(kb: KnowledgeBase) -> tuple[str, str]:
    """(latest ``reviewed``, earliest ``review_due``) over every entry and the decision aid,
    as ISO dates: when the knowledge was last checked and when the next check falls due."""
    reviewed = [e.reviewed for e in kb.entries.values()]
    due = [e.review_due for e in kb.entries.values()]
    if kb.decision is not None:
        reviewed.append(kb.decision.reviewed)
        due.append(kb.decision.review_due)
    return max(reviewed), min(due)


def source_line(domain: dict[str, Any], source: Source) -> str:
    name = "utter_disclosure_source_sells" if source.sells_treatment else "utter_disclosure_source_independent"
    return template(domain, name, title=source.title, publisher=source.publisher)


def sources_list_payload(kb: KnowledgeBase) -> list[dict[str, Any]]:
    """Every source, in the shape answers use for theirs (replies.sources_payload)."""
    return [
        {"id": s.id, "title": s.title, "url": s.url, "publisher": s.publisher,
         "sells_treatment": s.sells_treatment}
        for s in kb.sources.values()
    ]


class ActionDisclosure(Action):
    """Who runs the assistant, who pays for it, where its facts come from, how current."""

    def __init__(self, runtime: Runtime | None = None) -> None:
        self._runtime = runtime or get_runtime()

    def name(self) -> str:
        return "action_disclosure"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        kb = self._runtime.kb
        reviewed, review_due = review_dates(kb)
        parts = [
            template(domain, "utter_disclosure_who", clinic=kb.clinic.name),
            "\n".join([template(domain, "utter_disclosure_sources")]
                      + [source_line(domain, s) for s in kb.sources.values()]),
            template(domain, "utter_disclosure_review", reviewed=readable_date(reviewed),
                     review_due=readable_date(review_due)),
            reviewer_line(domain, kb.clinic),
        ]
        dispatcher.utter_message(
            text="\n\n".join(parts),
            buttons=[contact_button(domain)],
            json_message={"sources": sources_list_payload(kb), "topic": "about",
                          "reviewed": reviewed, "review_due": review_due},
        )
        return []

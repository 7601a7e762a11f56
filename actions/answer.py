"""action_answer_question: answer from the knowledge base, or say it is not sure."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.dialogue.replies import Reply, answer_reply, contact_button, entry_button, template, topic_buttons
from bot.kb.model import Entry
from bot.kb.runtime import Runtime, get_runtime

logger = logging.getLogger(__name__)

# Topics offered when nothing matched at all (the most asked, in the sources' order).
_STARTER_TOPICS = ("what_is", "cost", "side_effects", "evidence")
# Answers about a person's own situation: they end with utter_discuss_with_clinician.
_PERSONAL_TOPIC = "candidacy"
_PERSONAL_INTENT = "ask_candidacy"


def _intent_ranking(tracker: Tracker) -> list[tuple[str, float]]:
    latest = tracker.latest_message or {}
    ranking = [
        (str(i.get("name")), float(i.get("confidence") or 0.0))
        for i in latest.get("intent_ranking") or []
        if i.get("name")
    ]
    intent = latest.get("intent") or {}
    if intent.get("name") and intent["name"] not in {name for name, _ in ranking}:
        ranking.insert(0, (intent["name"], float(intent.get("confidence") or 0.0)))
    return ranking


def _previous_user_text(tracker: Tracker) -> str | None:
    seen_latest = False
    for event in reversed(tracker.events):
        if event.get("event") != "user":
            continue
        if not seen_latest:
            seen_latest = True
            continue
        text = event.get("text") or ""
        return None if text.startswith("/") else text
    return None


def _answer(domain: dict[str, Any], tracker: Tracker, runtime: Runtime, entry: Entry,
            score: float) -> Reply:
    """The answer with ``entry``. An answer about the person's own situation (a candidacy
    entry, or any entry answering an ask_candidacy question) ends by saying the assistant
    can't tell whether the treatment suits them and that a clinician must discuss it."""
    reply = answer_reply(domain, runtime.kb, entry, score=score)
    intent = ((tracker.latest_message or {}).get("intent") or {}).get("name")
    if entry.topic == _PERSONAL_TOPIC or intent == _PERSONAL_INTENT:
        reply = replace(reply, text=reply.text + "\n\n" + template(domain, "utter_discuss_with_clinician"))
    return reply


def _send(dispatcher: CollectingDispatcher, reply: Reply) -> None:
    dispatcher.utter_message(text=reply.text, buttons=reply.buttons or None, json_message=reply.custom)


class ActionAnswerQuestion(Action):
    def __init__(self, runtime: Runtime | None = None) -> None:
        self._runtime = runtime or get_runtime()

    def name(self) -> str:
        return "action_answer_question"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        kb = self._runtime.kb
        chosen = next(tracker.get_latest_entity_values("entry"), None)
        if chosen in kb.entries:
            entry = kb.entries[chosen]
            _send(dispatcher, _answer(domain, tracker, self._runtime, entry, score=1.0))
            return [SlotSet("last_entry", entry.id)]

        text = (tracker.latest_message or {}).get("text") or ""
        result = self._runtime.retriever.search(
            text,
            intent_ranking=_intent_ranking(tracker),
            previous_text=_previous_user_text(tracker),
            previous_entry=tracker.get_slot("last_entry"),
        )
        if result.confident and result.best:
            _send(dispatcher, _answer(domain, tracker, self._runtime, result.best.entry, score=result.best.score))
            return [SlotSet("last_entry", result.best.entry.id)]

        if result.nearest and result.best and result.best.score > 0.1:
            buttons = [entry_button(kb, e) for e in result.nearest] + [contact_button(domain)]
            dispatcher.utter_message(text=template(domain, "utter_not_sure"), buttons=buttons,
                                     json_message={"unanswered": True, "score": round(result.confidence, 4)})
        else:
            starters = [b for b, t in zip(topic_buttons(kb), kb.topics) if t in _STARTER_TOPICS]
            dispatcher.utter_message(text=template(domain, "utter_did_not_understand"),
                                     buttons=starters + [contact_button(domain)],
                                     json_message={"unanswered": True, "score": round(result.confidence, 4)})
        return []

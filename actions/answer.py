"""action_answer_question: answer from the knowledge base, or say it is not sure.

A message read in pieces (the ``reading`` the intent classifier adds, bot.nlp.segments) is
answered question by question: up to three questions of one message each get their own
answer and sources, in the order asked; a long story is answered on its question. A short
follow-up naming a place in the last list of offered entries ("the second one") answers that
entry.

action_out_of_scope and action_default_fallback (Rasa's own fallback, when no rule applies):
their usual reply, unless the message is a follow-up that points back and is answered within
the previous answer's topic.
"""

from __future__ import annotations

import json
import logging
import re
from abc import ABC, abstractmethod
from dataclasses import replace
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet, UserUtteranceReverted
from rasa_sdk.executor import CollectingDispatcher

from bot.dialogue.replies import Reply, answer_reply, contact_button, entry_button, template, topic_buttons
from bot.kb.model import Entry
from bot.kb.retriever import Retrieval
from bot.kb.runtime import Runtime, get_runtime
from bot.kb.semantic import SIMILARITIES_KEY

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


# "the second one", "number 2", "the last one": a place in the list the last reply offered.
_ORDINALS = {"first": 0, "1st": 0, "one": 0, "1": 0, "second": 1, "2nd": 1, "two": 1, "2": 1,
             "third": 2, "3rd": 2, "three": 2, "3": 2, "last": -1}
_ORDINAL = re.compile(
    r"^\W*(?:and |ok |so |what about |tell me about |more on |more about )?(?:the )?"
    r"(?:(first|1st|second|2nd|third|3rd|last)(?: one| option| link| button| thing)?|(?:number|no\.?|#) ?([123]))\W*$",
    re.IGNORECASE,
)


def _question_pieces(tracker: Tracker) -> list[dict[str, Any]]:
    """The questions of the latest message, as the classifier read them (may be empty)."""
    reading = (tracker.latest_message or {}).get("reading") or {}
    return [p for p in reading.get("pieces") or [] if p.get("question") and p.get("text")][:3]


def _is_long(tracker: Tracker) -> bool:
    """Whether the latest message is a long story (several sentences, many words): its
    question is searched alone. In a short message the statement is part of the question
    ("im on blood thinners, can i have it")."""
    return bool(((tracker.latest_message or {}).get("reading") or {}).get("long"))


def _has_context(tracker: Tracker) -> bool:
    """Whether the latest message says more than its questions (a story, a statement)."""
    pieces = ((tracker.latest_message or {}).get("reading") or {}).get("pieces") or []
    return any(not p.get("question") for p in pieces)


def _agrees(result: Retrieval | None, ranking: list[tuple[str, float]], kb: Any) -> bool:
    """Whether a confident answer comes from the topic of the message's own intent."""
    if result is None or not result.confident or not result.best or not ranking:
        return False
    topic = kb.topic_for_intent(ranking[0][0])
    return topic is not None and result.best.entry.topic == topic.id


def _offered_entries(tracker: Tracker) -> list[str]:
    """The entries the assistant's last reply (before the latest message) offered as buttons."""
    users = 0
    found: list[str] = []
    for event in reversed(tracker.events):
        kind = event.get("event")
        if kind == "user":
            users += 1
            if users == 2:
                break
            continue
        if kind != "bot" or users == 0:
            continue
        entries = []
        for button in (event.get("data") or {}).get("buttons") or []:
            payload = str(button.get("payload") or "")
            if "{" not in payload:
                continue
            try:
                entry = json.loads(payload[payload.index("{"):]).get("entry")
            except (ValueError, AttributeError):
                continue
            if entry:
                entries.append(str(entry))
        found = entries + found
    return found


def _ordinal_entry(text: str, offered: list[str]) -> str | None:
    match = _ORDINAL.match(text or "")
    if not match or not offered:
        return None
    word = (match.group(1) or match.group(2) or "").lower()
    place = _ORDINALS.get(word)
    if place is None or (place >= 0 and place >= len(offered)):
        return None
    return offered[place]


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


def _take_scores(runtime: Runtime, tracker: Tracker) -> None:
    """The entry scores Rasa's classifier gave this message and its pieces, so the
    retriever does not encode them again (bot.kb.semantic)."""
    runtime.retriever.take_scores((tracker.latest_message or {}).get(SIMILARITIES_KEY))


def _ranking_of(piece: dict[str, Any]) -> list[tuple[str, float]]:
    return [(str(i.get("name")), float(i.get("confidence") or 0.0))
            for i in piece.get("intent_ranking") or [] if i.get("name")]


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
        ordinal = _ordinal_entry(text, _offered_entries(tracker))
        if ordinal in kb.entries:
            _send(dispatcher, _answer(domain, tracker, self._runtime, kb.entries[ordinal], score=1.0))
            return [SlotSet("last_entry", ordinal)]

        questions = _question_pieces(tracker)
        _take_scores(self._runtime, tracker)
        # One batch for what will be searched: each question of a compound message, or a long
        # story's question (the whole story only if that fails, encoded then); the whole
        # message and its question otherwise.
        asked_first = len(questions) > 1 or (len(questions) == 1 and _is_long(tracker))
        self._runtime.retriever.prepare([q["text"] for q in questions] if asked_first
                                        else [text, *(q["text"] for q in questions)])
        if len(questions) > 1:
            answered = self._answer_each(dispatcher, tracker, domain, questions)
            if answered:
                return [SlotSet("last_entry", answered)]
        ranking = _intent_ranking(tracker)
        previous_text, previous_entry = _previous_user_text(tracker), tracker.get_slot("last_entry")

        def search(query: str, by: list[tuple[str, float]] = ranking) -> Retrieval:
            return self._runtime.retriever.search(query, intent_ranking=by, previous_text=previous_text,
                                                  previous_entry=previous_entry)

        result = None if len(questions) == 1 and _is_long(tracker) else search(text)
        if questions and len(questions) == 1 and _has_context(tracker):
            # A story or statement with one question. The question decides, read alone with
            # the classifier's reading of it alone, when the whole message points away from
            # it ("no fever, nothing like that, just want to know how much it is") or the
            # question alone is the closer match ("needles scare me, do they numb the scalp
            # first?"). A long story is always searched on its question first. A question
            # that needs its statement ("im on blood thinners, can i have it") keeps the
            # whole message, which matches better.
            # (In a long story the question's own reading can be pulled by a stray word, so
            # the whole message's reading, which leans on the question, is kept there.)
            long = _is_long(tracker)
            asked = search(questions[0]["text"], ranking if long else _ranking_of(questions[0]) or ranking)
            if asked.confident and asked.best and (
                    not _agrees(result, ranking, kb) or (result and result.best and asked.best.score > result.best.score)):
                result = asked
        if result is None:
            result = search(text)
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

    def _answer_each(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any],
                     questions: list[dict[str, Any]]) -> str | None:
        """Answer each question of one message in order; the last entry answered, or None
        when none could be answered (the caller then reads the message whole)."""
        previous_text = _previous_user_text(tracker)
        previous_entry = tracker.get_slot("last_entry")
        found: list[tuple[Entry, float]] = []
        missed: list[str] = []
        for piece in questions:
            result = self._runtime.retriever.search(
                piece["text"], intent_ranking=_ranking_of(piece),
                previous_text=previous_text, previous_entry=previous_entry,
            )
            if result.confident and result.best:
                if all(entry.id != result.best.entry.id for entry, _ in found):
                    found.append((result.best.entry, result.best.score))
            else:
                missed.append(piece["text"])
        if not found:
            return None
        for number, (entry, score) in enumerate(found):
            reply = _answer(domain, tracker, self._runtime, entry, score=score)
            if number < len(found) - 1:
                reply = replace(reply, buttons=[])  # related questions only after the last answer
            _send(dispatcher, reply)
        for question in missed:
            dispatcher.utter_message(text=template(domain, "utter_part_not_answered", question=question.strip(" ?,.")),
                                     json_message={"unanswered": True})
        return found[-1][0].id



class _FollowUpFirst(Action, ABC):
    """A message the classifier reads as no question (out of scope, an answer word with no
    step asking) that is answered when it is a follow-up pointing back and the previous
    answer's topic resolves it: "what if it's flaring right now?" after the answer on scalp
    flares, "and if it's more than that?" after the normal daily hair fall. The classifier
    sees the message alone; otherwise the usual reply (:attr:`response`)."""

    response: str

    def __init__(self, runtime: Runtime | None = None) -> None:
        self._runtime = runtime or get_runtime()

    @abstractmethod
    def name(self) -> str: ...

    def otherwise(self) -> list[EventType]:
        """The events after the usual reply."""
        return []

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        previous_entry = tracker.get_slot("last_entry")
        text = (tracker.latest_message or {}).get("text") or ""
        if previous_entry and text and not text.startswith("/"):
            _take_scores(self._runtime, tracker)
            result = self._runtime.retriever.search(
                text, intent_ranking=_intent_ranking(tracker),
                previous_text=_previous_user_text(tracker), previous_entry=previous_entry,
            )
            if result.resolved and result.best:
                _send(dispatcher, _answer(domain, tracker, self._runtime, result.best.entry,
                                          score=result.best.score))
                return [SlotSet("last_entry", result.best.entry.id)]
        dispatcher.utter_message(response=self.response)
        return self.otherwise()


class ActionOutOfScope(_FollowUpFirst):
    response = "utter_out_of_scope"

    def name(self) -> str:
        return "action_out_of_scope"


class ActionDefaultFallback(_FollowUpFirst):
    """Rasa's fallback when no rule applies (a "not sure" or "yes" with nothing asked): as
    Rasa's own, utter_default and the message is set aside, unless it is a follow-up."""

    response = "utter_default"

    def name(self) -> str:
        return "action_default_fallback"

    def otherwise(self) -> list[EventType]:
        return [UserUtteranceReverted()]

"""action_field_check: the field-test check, a short, optional and anonymous check.

Five multiple-choice questions about what the sources say (knowledge/decision/
field_check.yml), then the four SURE questions (the domain's ``utter_ask_sure_*``), one at a
time, by button. "Stop the check" ends it at any question and nothing is sent. A finished
check sends one ``field_check`` block (phase, knowledge score 0-5, SURE yes count 0-4:
``contract.payloads``) and nothing else: the API keeps it without the conversation's id. The
right answers are shown after the second check only, so the first gives nothing away; the
person is never told a score.

When it is offered (start and end of the guided steps, only while clinic.yml has
``field_check: true``) and the progress it keeps: ``bot/dialogue/field_check.py``. Every
button is the ``field_check`` intent with a ``choice`` entity: ``start-before``,
``start-after``, ``skip``, ``<question id>=<answer id>``, ``<SURE slot>=yes|no|not_sure``.
Typed ("can I do the quiz?"), it asks the question in progress again, or offers the check due.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from bot.dialogue import field_check as fc
from bot.dialogue.replies import template
from bot.kb.field_check import CheckQuestion, FieldCheck
from bot.kb.model import KnowledgeBase
from bot.kb.runtime import Runtime, get_runtime
from contract import payloads


class ActionFieldCheck(Action):
    """Every step of the field check: start, each answer, stop or skip."""

    def __init__(self, runtime: Runtime | None = None) -> None:
        self._runtime = runtime or get_runtime()

    def name(self) -> str:
        return "action_field_check"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        kb = self._runtime.kb
        check = fc.enabled(kb)
        state = fc.State.of(tracker)
        choice = next(tracker.get_latest_entity_values(fc.ENTITY), None)
        if check is None:
            dispatcher.utter_message(text=template(domain, "utter_field_check_unavailable"))
            return [state.idle().event()] if state.phase else []
        if not isinstance(choice, str) or not choice:
            return self._typed(dispatcher, tracker, domain, kb, check, state)
        if choice == fc.SKIP:
            return self._skip(dispatcher, domain, kb, state)
        phase = choice.removeprefix("start-")
        if choice.startswith("start-") and phase in fc.PHASES:
            return self._start(dispatcher, tracker, domain, check, state, phase)
        if state.phase is None or "=" not in choice:  # not a button of a check in progress
            dispatcher.utter_message(text=template(domain, "utter_field_check_unavailable"))
            return []
        key, value = choice.split("=", 1)
        return self._answer(dispatcher, domain, kb, check, state, key, value)

    @staticmethod
    def _typed(dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any],
               kb: KnowledgeBase, check: FieldCheck, state: fc.State) -> list[EventType]:
        """Asked for in words: the question in progress again, or the offer of the one due."""
        if state.phase is not None:
            dispatcher.utter_message(**fc.question_message(domain, check, state))
            return []
        if state.before != fc.DONE and state.after is None:
            phase = "before"
        elif state.after != fc.DONE:
            phase = "after"
        else:
            dispatcher.utter_message(text=template(domain, "utter_field_check_done_already"))
            return []
        dispatcher.utter_message(**fc.offer_message(domain, tracker, kb, phase))
        return [state.mark(phase, fc.OFFERED).event()]

    @staticmethod
    def _skip(dispatcher: CollectingDispatcher, domain: dict[str, Any], kb: KnowledgeBase,
              state: fc.State) -> list[EventType]:
        """No thanks to an offer, or stop in the middle: nothing is sent."""
        if state.phase is not None:
            phase, outcome, response = state.phase, fc.STOPPED, "utter_field_check_stopped"
        else:
            phase = "after" if state.after == fc.OFFERED else "before"
            outcome, response = fc.DECLINED, "utter_field_check_declined"
        if phase == "before":
            dispatcher.utter_message(text=template(domain, response))
            dispatcher.utter_message(**fc.menu_message(domain, kb))
        else:
            dispatcher.utter_message(text=template(domain, response), buttons=[fc.back_to_menu(domain)])
        return [state.idle().mark(phase, outcome).event()]

    @staticmethod
    def _start(dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any],
               check: FieldCheck, state: fc.State, phase: str) -> list[EventType]:
        if state.phase == phase:  # pressed twice: the same question again
            dispatcher.utter_message(**fc.question_message(domain, check, state))
            return []
        if state.get(phase) == fc.DONE:
            dispatcher.utter_message(text=template(domain, "utter_field_check_done_already"))
            return []
        started = replace(state.idle(), phase=phase,
                          sure_given=fc.sure_reused(tracker) if phase == "after" else None)
        dispatcher.utter_message(**fc.question_message(domain, check, started))
        return [started.event()]

    def _answer(self, dispatcher: CollectingDispatcher, domain: dict[str, Any], kb: KnowledgeBase,
                check: FieldCheck, state: fc.State, key: str, value: str) -> list[EventType]:
        found = fc.steps(check, state)
        expected = found[state.step] if 0 <= state.step < len(found) else None
        new: fc.State | None = None
        if isinstance(expected, CheckQuestion) and key == expected.id:
            answer = expected.answer(value)
            if answer is not None:
                new = replace(state, known=state.known + int(answer.correct))
        elif isinstance(expected, str) and key == expected and value in fc.SURE_ANSWERS:
            new = replace(state, sure=state.sure + int(value == "yes"))
        if new is None:  # an old button, or an answer the question does not have: ask again
            dispatcher.utter_message(**fc.question_message(domain, check, state))
            return []
        new = replace(new, step=state.step + 1)
        if new.step < len(found):
            dispatcher.utter_message(**fc.question_message(domain, check, new))
            return [new.event()]
        return self._finish(dispatcher, domain, kb, check, new)

    @staticmethod
    def _finish(dispatcher: CollectingDispatcher, domain: dict[str, Any], kb: KnowledgeBase,
                check: FieldCheck, state: fc.State) -> list[EventType]:
        """Thanks, with the one anonymous block; then the menu (first check) or the right
        answers (second check)."""
        phase = state.phase or "before"
        sure = state.sure_given if state.sure_given is not None else state.sure
        block = payloads.field_check(phase, state.known, sure)
        if phase == "before":
            dispatcher.utter_message(text=template(domain, "utter_field_check_thanks_before"), json_message=block)
            dispatcher.utter_message(**fc.menu_message(domain, kb))
        else:
            dispatcher.utter_message(text=template(domain, "utter_field_check_thanks_after", clinic=kb.clinic.name),
                                     json_message=block)
            dispatcher.utter_message(**fc.answers_message(domain, kb, check))
        return [state.idle().mark(phase, fc.DONE).event()]

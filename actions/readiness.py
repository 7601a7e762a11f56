"""Readiness to decide: the four SURE questions (readiness_form) and what the answers mean.

The questions are the SURE test (Sure of myself, Understand information, Risk-benefit
ratio, Encouragement): yes / no / not sure each, as slots ``sure_sure``,
``sure_informed``, ``sure_values``, ``sure_support`` (filled from the affirm / deny /
not_sure intents by the mappings in domain.yml). Four yeses: the person seems
ready, and the summary is offered for the consultation. Fewer: more information (options,
values, the evidence) or a callback is offered. Never a verdict on the choice itself.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.dialogue.decision import button, response_buttons
from bot.dialogue.field_check import offer_after
from bot.dialogue.forms import end_pause
from bot.dialogue.replies import command, template
from bot.kb.runtime import Runtime, get_runtime

FORM = "readiness_form"
SURE_SLOTS: tuple[str, ...] = ("sure_sure", "sure_informed", "sure_values", "sure_support")
ANSWERS: tuple[str, ...] = ("yes", "no", "not_sure")


def sure_score(tracker: Tracker) -> int:
    """How many of the four questions were answered yes."""
    return sum(tracker.get_slot(slot) == "yes" for slot in SURE_SLOTS)


class ActionResetReadiness(Action):
    """Clears the four answers and the result, to ask the questions (again) from the first."""

    def name(self) -> str:
        return "action_reset_readiness"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        return [SlotSet(slot, None) for slot in (*SURE_SLOTS, "sure_result")]


class ValidateReadinessForm(FormValidationAction):
    """Keeps each answer to one of yes / no / not_sure; ends a red-flag pause on resuming."""

    def name(self) -> str:
        return "validate_readiness_form"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        return [*await super().run(dispatcher, tracker, domain), *end_pause(tracker, FORM)]

    @staticmethod
    def _answer(slot: str, value: Any) -> dict[str, Any]:
        return {slot: value if value in ANSWERS else None}

    def validate_sure_sure(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                           domain: dict[str, Any]) -> dict[str, Any]:
        return self._answer("sure_sure", value)

    def validate_sure_informed(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                               domain: dict[str, Any]) -> dict[str, Any]:
        return self._answer("sure_informed", value)

    def validate_sure_values(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                             domain: dict[str, Any]) -> dict[str, Any]:
        return self._answer("sure_values", value)

    def validate_sure_support(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                              domain: dict[str, Any]) -> dict[str, Any]:
        return self._answer("sure_support", value)


class ActionReadinessResult(Action):
    """Sets ``sure_result`` ("3 of 4") and says what it suggests, with the next steps."""

    def __init__(self, runtime: Runtime | None = None) -> None:
        self._runtime = runtime or get_runtime()

    def name(self) -> str:
        return "action_readiness_result"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        yeses = sure_score(tracker)
        result = f"{yeses} of {len(SURE_SLOTS)}"
        menu = {b["payload"]: b for b in response_buttons(domain, "utter_decision_menu")}
        if yeses == len(SURE_SLOTS):
            text = template(domain, "utter_readiness_ready", result=result)
            buttons = [menu["/get_summary"], menu["/request_callback"]]
        else:
            text = template(domain, "utter_readiness_not_yet", result=result)
            buttons = [menu["/compare_options"], menu["/explore_values"]]
            evidence = self._runtime.kb.topics.get("evidence")
            if evidence is not None:
                buttons.append({"title": evidence.title, "payload": command(evidence.intent)})
            buttons += [menu["/request_callback"], menu["/get_summary"]]
        buttons.append(button(domain, "utter_button_decision_menu", "decision_help"))
        dispatcher.utter_message(text=text, buttons=buttons)
        # During a field test: the second short check, once (actions/field_check.py).
        return [SlotSet("sure_result", result), *offer_after(dispatcher, tracker, domain, self._runtime.kb)]

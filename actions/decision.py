"""action_decision_menu: the entry point of the guided decision support."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from bot.dialogue.decision import response_buttons
from bot.dialogue.field_check import offer_before
from bot.dialogue.replies import template
from bot.kb.runtime import Runtime, get_runtime


class ActionDecisionMenu(Action):
    """States the decision, says the assistant will not choose, offers every step as a button.

    Buttons: checklist, options side by side, what matters, readiness, cost, summary,
    callback (the buttons of ``utter_decision_menu`` in domain.yml). During a field test
    (clinic.yml ``field_check``) the first time shows the offer of the short check instead
    (actions/field_check.py), which leads back to the menu.
    """

    def __init__(self, runtime: Runtime | None = None) -> None:
        self._runtime = runtime or get_runtime()

    def name(self) -> str:
        return "action_decision_menu"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        offer = offer_before(self._runtime.kb, tracker, domain)
        if offer is not None:  # a field test runs: its short check comes first, once
            message, events = offer
            dispatcher.utter_message(**message)
            return events
        clinic = self._runtime.kb.clinic.name
        dispatcher.utter_message(text=template(domain, "utter_decision_menu", clinic=clinic),
                                 buttons=response_buttons(domain, "utter_decision_menu"))
        return []

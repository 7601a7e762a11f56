"""action_clinic_contact: how to reach the clinic, from clinic.yml."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from bot.dialogue.replies import contact_line, template
from bot.kb.runtime import Runtime, get_runtime


class ActionClinicContact(Action):
    def __init__(self, runtime: Runtime | None = None) -> None:
        self._runtime = runtime or get_runtime()

    def name(self) -> str:
        return "action_clinic_contact"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        clinic = self._runtime.kb.clinic
        text = contact_line(domain, clinic)
        if clinic.hours:
            text += " " + template(domain, "utter_clinic_hours", hours=clinic.hours)
        dispatcher.utter_message(text=text)
        return []

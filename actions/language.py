"""action_other_language: say, in the patient's language, that the assistant answers in
English only for now, and how to reach the clinic.

The language comes from the safety gate's summary (bot/nlu/safety.py); its urgent lexicons
have already caught an emergency or a crisis in that language before this runs.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from bot.dialogue.red_flags import message_language
from bot.dialogue.replies import template
from contract.urgent import localised
from bot.kb.model import Clinic
from bot.kb.runtime import Runtime, get_runtime

ENGLISH_ONLY = "utter_english_only"




def clinic_contact(clinic: Clinic) -> str:
    """The clinic's name with its phone and email, in no language's words."""
    ways = [w for w in (clinic.phone, clinic.email) if w]
    return f"{clinic.name} ({', '.join(ways)})" if ways else clinic.name


class ActionOtherLanguage(Action):
    def __init__(self, runtime: Runtime | None = None) -> None:
        self._runtime = runtime or get_runtime()

    def name(self) -> str:
        return "action_other_language"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        language = message_language(tracker.latest_message)
        response = localised(domain.get("responses") or {}, ENGLISH_ONLY, language)
        dispatcher.utter_message(
            text=template(domain, response, contact=clinic_contact(self._runtime.kb.clinic)),
            json_message={"language": language or "other"},
        )
        return []

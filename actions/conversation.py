"""Opening the conversation and showing what the assistant can talk about."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from bot.dialogue.replies import guide_buttons, template, topic_buttons
from bot.kb.runtime import Runtime, get_runtime


TRANSCRIPT_CONSENT = "transcript_consent"
"""Entity of the API's start command: "yes" when the patient agreed that the clinic keeps
the transcript, "no" otherwise (``/start_conversation{"transcript_consent": "yes"}``)."""


def transcript_kept(tracker: Tracker) -> bool:
    """Whether the start message says the transcript is kept; a missing entity means no."""
    return next(tracker.get_latest_entity_values(TRANSCRIPT_CONSENT), None) == "yes"


class ActionWelcome(Action):
    """The opening messages: who the assistant is, what it is not, the privacy notice (which
    says whether the chat is kept, as the patient chose)."""

    def __init__(self, runtime: Runtime | None = None) -> None:
        self._runtime = runtime or get_runtime()

    def name(self) -> str:
        return "action_welcome"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        kb = self._runtime.kb
        clinic = kb.clinic.name
        dispatcher.utter_message(text=template(domain, "utter_welcome", clinic=clinic))
        dispatcher.utter_message(text=template(domain, "utter_disclaimer", clinic=clinic))
        privacy = "utter_privacy_kept" if transcript_kept(tracker) else "utter_privacy_not_kept"
        dispatcher.utter_message(text=template(domain, privacy, clinic=clinic))
        dispatcher.utter_message(text=template(domain, "utter_topics"),
                                 buttons=guide_buttons(domain) + topic_buttons(kb))
        return []


class ActionShowTopics(Action):
    """The guided decision support, the disclosure and every topic, as buttons."""

    def __init__(self, runtime: Runtime | None = None) -> None:
        self._runtime = runtime or get_runtime()

    def name(self) -> str:
        return "action_show_topics"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        dispatcher.utter_message(text=template(domain, "utter_topics"),
                                 buttons=guide_buttons(domain) + topic_buttons(self._runtime.kb))
        return []

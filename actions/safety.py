"""action_red_flag: what to do now, for each red-flag level, in or out of a guided step.

The level and flags come from the ``safety`` summary the safety gate (bot/nlu/safety.py)
adds to every parsed message, or else the level from the intent name ``red_flag_<level>``. The reply starts with what to do and offers nothing else (no buttons, no booking
prompt); its custom payload ``red_flag`` lets the API flag the conversation for staff.
"""

from __future__ import annotations

from typing import Any, Mapping

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.language import message_language
from bot.dialogue.forms import PAUSED_SLOT
from bot.dialogue.replies import template
from bot.kb.model import Clinic
from bot.kb.runtime import Runtime, get_runtime
from contract import payloads, urgent
from contract.levels import LEVELS, URGENT

# Levels after which the reply may say how to go back to a paused guided step. After an
# emergency or a crisis the reply says nothing else.
RESUMABLE_LEVELS: frozenset[str] = frozenset(LEVELS) - URGENT
# Used when neither the safety gate nor the intent names a level: the action only runs for a red
# flag, and a missed urgent flag costs more than an extra one.
FALLBACK_LEVEL = "emergency"
_INTENT_PREFIX = "red_flag_"


def red_flag_level(latest_message: Mapping[str, Any] | None) -> str:
    """The level of the latest message: the safety gate's level, else the ``red_flag_<level>``
    intent, else :data:`FALLBACK_LEVEL`."""
    latest = latest_message or {}
    gate = latest.get("safety") or {}
    level = str(gate.get("level") or "").strip().lower()
    if level in LEVELS:
        return level
    intent = str((latest.get("intent") or {}).get("name") or "")
    if intent.startswith(_INTENT_PREFIX) and intent[len(_INTENT_PREFIX):] in LEVELS:
        return intent[len(_INTENT_PREFIX):]
    return FALLBACK_LEVEL


def red_flag_names(latest_message: Mapping[str, Any] | None) -> list[str]:
    """The flags the safety gate found in the latest message, in order, without repeats."""
    names: list[str] = []
    for value in ((latest_message or {}).get("safety") or {}).get("flags") or []:
        if isinstance(value, str) and value and value not in names:
            names.append(value)
    return names


def pausable_forms(domain: Mapping[str, Any]) -> list[str]:
    """The forms a red flag can pause: the values of the ``paused_form`` slot."""
    slot = (domain.get("slots") or {}).get(PAUSED_SLOT) or {}
    return [str(v) for v in slot.get("values") or []]


def red_flag_text(domain: Mapping[str, Any], clinic: Clinic, level: str, language: str | None = None) -> str:
    """The reply for ``level``, in ``language`` when the domain has it; its first sentence
    says what to do. The same words as the API's safety net (``contract.urgent``)."""
    return urgent.urgent_text(domain.get("responses") or {}, urgent.Contacts.of(clinic), level, language)


class ActionRedFlag(Action):
    """Answers every red flag; inside a guided step it pauses that step."""

    def __init__(self, runtime: Runtime | None = None) -> None:
        self._runtime = runtime or get_runtime()

    def name(self) -> str:
        return "action_red_flag"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        latest = tracker.latest_message or {}
        level = red_flag_level(latest)
        language = message_language(latest)
        text = red_flag_text(domain, self._runtime.kb.clinic, level, language)

        events: list[EventType] = []
        form = tracker.active_loop_name
        if form:
            events = [ActiveLoop(None), SlotSet("requested_slot", None)]
            if form in pausable_forms(domain):
                events.append(SlotSet(PAUSED_SLOT, form))
                if level in RESUMABLE_LEVELS:
                    text += "\n\n" + template(domain, "utter_red_flag_form_paused")

        dispatcher.utter_message(
            text=text,
            json_message=payloads.red_flag(level, red_flag_names(latest)),
        )
        return events

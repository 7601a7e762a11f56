"""action_red_flag: a red flag inside a guided step pauses that step.

The urgent reply itself is a response, ``utter_red_flag``, which Rasa sends without the
action server (``bot/dialogue/nlg.py``); inside a form this action follows it, ends the form
and names it in the ``paused_form`` slot, so "continue" can resume it. After a same-day or
prompt flag it says how to go back; after an emergency or a crisis it says nothing else.
"""

from __future__ import annotations

from typing import Any, Mapping

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.dialogue.forms import PAUSED_SLOT
from bot.dialogue.red_flags import red_flag_level
from bot.dialogue.replies import template
from contract.levels import LEVELS, URGENT

# Levels after which the pause may say how to go back to the guided step.
RESUMABLE_LEVELS: frozenset[str] = frozenset(LEVELS) - URGENT


def pausable_forms(domain: Mapping[str, Any]) -> list[str]:
    """The forms a red flag can pause: the values of the ``paused_form`` slot."""
    slot = (domain.get("slots") or {}).get(PAUSED_SLOT) or {}
    return [str(v) for v in slot.get("values") or []]


class ActionRedFlag(Action):
    """Ends the active form after the urgent reply, remembering it when it can be resumed."""

    def name(self) -> str:
        return "action_red_flag"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        form = tracker.active_loop_name
        if not form:
            return []
        events: list[EventType] = [ActiveLoop(None), SlotSet("requested_slot", None)]
        if form in pausable_forms(domain):
            events.append(SlotSet(PAUSED_SLOT, form))
            if red_flag_level(tracker.latest_message) in RESUMABLE_LEVELS:
                dispatcher.utter_message(text=template(domain, "utter_red_flag_form_paused"))
        return events

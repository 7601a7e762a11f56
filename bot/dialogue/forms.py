"""What the guided steps (forms) share: the red-flag pause.

action_red_flag (actions/safety.py), after the urgent reply, stops a form and names it in the ``paused_form`` slot;
the form's "continue" rule starts it again, and the form then ends the pause.
"""

from __future__ import annotations

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet

PAUSED_SLOT = "paused_form"


def end_pause(tracker: Tracker, form: str) -> list[SlotSet]:
    """The event that ends a red-flag pause of ``form``; none when ``form`` is not paused."""
    return [SlotSet(PAUSED_SLOT, None)] if tracker.get_slot(PAUSED_SLOT) == form else []

"""A callback or consultation request (``callback_form``).

Consent comes first: "Can the clinic store these details and contact you?". Only with a yes
does the form ask for a name, a phone number or email (checked here and again by the API)
and a preferred time. The request reaches the API as the custom ``callback`` block; the
confirmation promises a time only when clinic.yml sets ``callback_time``.

The name, phone, email and time are personal data: they are never logged, and the slots
are cleared once the request is passed on, declined or stopped.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.dialogue import checklist as cl
from bot.dialogue.forms import end_pause
from bot.dialogue.replies import contact_line, template
from bot.kb.runtime import Runtime, get_runtime

FORM = "callback_form"
SLOTS: tuple[str, ...] = ("callback_consent", "callback_name", "callback_contact", "callback_time")


def cleared() -> list[EventType]:
    """Events forgetting every detail of the request."""
    return [SlotSet(slot, None) for slot in SLOTS]


class ValidateCallbackForm(FormValidationAction):
    """Nothing but consent is asked without consent; bad details are asked again."""

    def __init__(self, runtime: Runtime | None = None) -> None:
        self._runtime = runtime or get_runtime()

    def name(self) -> str:
        return "validate_callback_form"

    async def required_slots(self, domain_slots: list[str], dispatcher: CollectingDispatcher,
                             tracker: Tracker, domain: DomainDict) -> list[str]:
        if tracker.get_slot("callback_consent") is False:
            return ["callback_consent"]
        return [s for s in SLOTS if s in domain_slots]

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        return [*end_pause(tracker, FORM), *await super().run(dispatcher, tracker, domain)]

    def validate_callback_name(self, value: Any, dispatcher: CollectingDispatcher,
                               tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        name = cl.clean_name(value)
        if name is None:
            dispatcher.utter_message(text=template(domain, "utter_callback_name_invalid"))
        return {"callback_name": name}

    def validate_callback_contact(self, value: Any, dispatcher: CollectingDispatcher,
                                  tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        contact = cl.contact_value(value)
        if contact is None:
            dispatcher.utter_message(text=template(domain, "utter_callback_contact_invalid"))
        return {"callback_contact": contact}

    def validate_callback_time(self, value: Any, dispatcher: CollectingDispatcher,
                               tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        time = cl.clean_time(value)
        if time is None:
            dispatcher.utter_message(text=template(domain, "utter_callback_time_invalid"))
        return {"callback_time": time}


class ActionCallbackResult(Action):
    """Passes the request on (consent given) or says nothing was kept, then forgets it."""

    def __init__(self, runtime: Runtime | None = None) -> None:
        self._runtime = runtime or get_runtime()

    def name(self) -> str:
        return "action_callback_result"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        clinic = self._runtime.kb.clinic
        name = cl.clean_name(tracker.get_slot("callback_name"))
        contact = cl.split_contact(tracker.get_slot("callback_contact"))
        if tracker.get_slot("callback_consent") is not True or name is None or contact is None:
            dispatcher.utter_message(text=template(domain, "utter_callback_declined") + " "
                                     + contact_line(domain, clinic))
            return cleared()
        phone, email = contact
        time = cl.clean_time(tracker.get_slot("callback_time"))
        preferred = None if time in (None, cl.NO_PREFERENCE) else time
        lines = [template(domain, "utter_callback_done", person=name, clinic=clinic.name)]
        if preferred:
            lines.append(template(domain, "utter_callback_time_noted", time=preferred))
        if clinic.callback_time:
            lines.append(template(domain, "utter_callback_time_set", clinic=clinic.name,
                                  callback_time=clinic.callback_time))
        else:
            lines.append(template(domain, "utter_callback_time_unset") + " " + contact_line(domain, clinic))
        callback = {"name": name, "phone": phone, "email": email, "consent": True, "preferred_time": preferred}
        dispatcher.utter_message(text=" ".join(lines), json_message={"callback": callback})
        return cleared()


class ActionCallbackStop(Action):
    """Leaves the form and forgets whatever was given."""

    def __init__(self, runtime: Runtime | None = None) -> None:
        self._runtime = runtime or get_runtime()

    def name(self) -> str:
        return "action_callback_stop"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        clinic = self._runtime.kb.clinic
        dispatcher.utter_message(text=template(domain, "utter_callback_stopped") + " " + contact_line(domain, clinic))
        events: list[EventType] = [ActiveLoop(None), SlotSet("requested_slot", None), *end_pause(tracker, FORM)]
        return events + cleared()

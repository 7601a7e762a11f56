"""The callback request (actions/callback.py): consent, validation, the request, no logging."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.callback import ActionCallbackResult, ActionCallbackStop, ValidateCallbackForm
from bot.dialogue.checklist import clean_time, split_contact
from bot.kb.runtime import Runtime

NAME, PHONE, EMAIL = "Robin Quill", "+44 7700 900123", "robin.quill@example.org"


def with_clinic(runtime: Runtime, **changes: Any) -> Runtime:
    return replace(runtime, kb=replace(runtime.kb, clinic=replace(runtime.kb.clinic, **changes)))


def tracker(slots: dict[str, Any], text: str = "x", intent: str = "nlu_fallback",
            form: str | None = "callback_form") -> Tracker:
    latest = {"text": text, "intent": {"name": intent, "confidence": 1.0}, "entities": []}
    events = [{"event": "user", "text": text, "parse_data": latest}]
    return Tracker("test", dict(slots), latest, events, False, None, {"name": form} if form else {}, "action_listen")


def slot_events(events: list[dict]) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


async def validate(runtime: Runtime, domain: dict, slot: str, value: str,
                   slots: dict[str, Any] | None = None) -> tuple[list[dict], dict[str, Any]]:
    """Runs the form's validation as Rasa does after extracting ``value`` into ``slot``."""
    base = {"callback_consent": True, **(slots or {}), "requested_slot": slot}
    tr = tracker(base, text=value)
    tr.events.append({"event": "slot", "name": slot, "value": value})
    tr.slots[slot] = value
    dispatcher = CollectingDispatcher()
    events = await ValidateCallbackForm(runtime).run(dispatcher, tr, domain)
    return dispatcher.messages, slot_events(events)


@pytest.mark.parametrize("text, phone, email", [
    ("07700 900123", "07700 900123", None),
    ("+44 (20) 7946-0000", "+44 (20) 7946-0000", None),
    ("my number is 07700 900123", "07700 900123", None),
    ("robin@example.org", None, "robin@example.org"),
    ("email me at robin.q@mail.co.uk.", None, "robin.q@mail.co.uk"),
    ("07700 900123 or robin@example.org", "07700 900123", "robin@example.org"),
])
def test_valid_contacts(text: str, phone: str | None, email: str | None) -> None:
    assert split_contact(text) == (phone, email)


@pytest.mark.parametrize("text", [
    "12345", "call me", "1234567890123456", "robin@", "robin@example", "07700 900123 or 07700 900456",
    "a@b.c", "robin at example dot org", "", "robin@example.org or robin@example.com", "12 robin@",
])
def test_invalid_contacts(text: str) -> None:
    assert split_contact(text) is None


def test_preferred_time() -> None:
    assert clean_time("  weekday   mornings ") == "weekday mornings"
    assert clean_time("none") == "none"
    assert clean_time("x" * 201) is None
    assert clean_time("after\x00five") is None


@pytest.mark.asyncio
async def test_without_consent_nothing_else_is_asked(runtime: Runtime, domain: dict) -> None:
    action = ValidateCallbackForm(runtime)
    slots = list(domain["slots"])
    no = await action.required_slots(slots, CollectingDispatcher(), tracker({"callback_consent": False}), domain)
    assert no == ["callback_consent"]
    yes = await action.required_slots(slots, CollectingDispatcher(), tracker({"callback_consent": True}), domain)
    assert yes == ["callback_consent", "callback_name", "callback_contact", "callback_time"]
    assert domain["forms"]["callback_form"]["required_slots"] == yes


@pytest.mark.asyncio
async def test_a_bad_phone_number_is_refused_with_a_clear_message(runtime: Runtime, domain: dict) -> None:
    messages, slots = await validate(runtime, domain, "callback_contact", "12 34")
    assert slots["callback_contact"] is None
    assert "7 to 15 digits" in messages[0]["text"]
    messages, slots = await validate(runtime, domain, "callback_contact", f"it's {PHONE}")
    assert slots["callback_contact"] == PHONE and not messages


@pytest.mark.asyncio
async def test_a_name_needs_letters_and_a_sane_length(runtime: Runtime, domain: dict) -> None:
    for bad in ("12345", "x" * 101, "   "):
        messages, slots = await validate(runtime, domain, "callback_name", bad)
        assert slots["callback_name"] is None and messages, bad
    _, slots = await validate(runtime, domain, "callback_name", f"  {NAME} ")
    assert slots["callback_name"] == NAME


@pytest.mark.asyncio
async def test_resuming_after_a_red_flag_clears_the_paused_mark(runtime: Runtime, domain: dict) -> None:
    tr = tracker({"callback_consent": True, "paused_form": "callback_form"}, intent="continue_form")
    events = await ValidateCallbackForm(runtime).run(CollectingDispatcher(), tr, domain)
    assert slot_events(events)["paused_form"] is None


FILLED = {"callback_consent": True, "callback_name": NAME, "callback_contact": PHONE, "callback_time": "weekday mornings"}


@pytest.mark.asyncio
async def test_with_consent_the_request_is_passed_on_without_promising_a_time(runtime: Runtime, domain: dict) -> None:
    runtime = with_clinic(runtime, callback_time=None)
    dispatcher = CollectingDispatcher()
    events = await ActionCallbackResult(runtime).run(dispatcher, tracker(FILLED, form=None), domain)
    [message] = dispatcher.messages
    assert message["custom"]["callback"] == {"name": NAME, "phone": PHONE, "email": None, "consent": True,
                                             "preferred_time": "weekday mornings"}
    assert "can't say when" in message["text"]
    assert "can't promise" in message["text"]
    assert runtime.kb.clinic.phone in message["text"]
    assert all(v is None for v in slot_events(events).values())
    assert set(slot_events(events)) == set(FILLED)


@pytest.mark.asyncio
async def test_the_clinics_callback_time_is_quoted_when_set(runtime: Runtime, domain: dict) -> None:
    runtime = with_clinic(runtime, callback_time="within one working day")
    slots = {**FILLED, "callback_contact": EMAIL, "callback_time": "none"}
    dispatcher = CollectingDispatcher()
    await ActionCallbackResult(runtime).run(dispatcher, tracker(slots, form=None), domain)
    [message] = dispatcher.messages
    assert message["custom"]["callback"]["email"] == EMAIL
    assert message["custom"]["callback"]["phone"] is None
    assert message["custom"]["callback"]["preferred_time"] is None
    assert "within one working day" in message["text"]
    assert "can't say when" not in message["text"]


@pytest.mark.asyncio
async def test_declined_consent_stores_nothing(runtime: Runtime, domain: dict) -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionCallbackResult(runtime).run(dispatcher, tracker({"callback_consent": False}, form=None), domain)
    [message] = dispatcher.messages
    assert not message["custom"]
    assert "not kept or sent" in message["text"]
    assert runtime.kb.clinic.phone in message["text"]
    assert all(v is None for v in slot_events(events).values())


@pytest.mark.asyncio
async def test_stop_forgets_the_details(runtime: Runtime, domain: dict) -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionCallbackStop(runtime).run(dispatcher, tracker(FILLED, intent="stop_form"), domain)
    assert {"event": "active_loop", "timestamp": None, "name": None} in events
    assert all(slot_events(events)[s] is None for s in FILLED)
    assert not dispatcher.messages[0]["custom"]


@pytest.mark.asyncio
async def test_personal_details_are_never_logged(runtime: Runtime, domain: dict, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await validate(runtime, domain, "callback_name", NAME)
    await validate(runtime, domain, "callback_contact", PHONE)
    await validate(runtime, domain, "callback_contact", "not-an-email@")
    await ActionCallbackResult(runtime).run(CollectingDispatcher(), tracker({**FILLED, "callback_contact": EMAIL}, form=None), domain)
    await ActionCallbackStop(runtime).run(CollectingDispatcher(), tracker(FILLED), domain)
    logged = caplog.text
    for secret in (NAME, PHONE, EMAIL, "not-an-email@", "weekday mornings"):
        assert secret not in logged

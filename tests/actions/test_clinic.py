"""Clinic contact (the opening and the topic menu are responses: tests/dialogue/test_nlg.py)."""

from __future__ import annotations

import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions.clinic import ActionClinicContact


@pytest.mark.asyncio
async def test_contact_uses_the_clinic_file(runtime, domain, tracker_factory):
    dispatcher = CollectingDispatcher()
    await ActionClinicContact(runtime).run(dispatcher, tracker_factory("phone number?", "contact_clinic"), domain)
    text = dispatcher.messages[0]["text"]
    clinic = runtime.kb.clinic
    assert clinic.name in text and clinic.phone in text
    assert "{" not in text

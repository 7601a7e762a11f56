"""Opening messages, the topic menu and clinic contact."""

from __future__ import annotations

import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions.clinic import ActionClinicContact
from actions.conversation import ActionShowTopics, ActionWelcome
from bot.dialogue.replies import template


def _start(tracker_factory, consent: str | None):
    entities = [] if consent is None else [{"entity": "transcript_consent", "value": consent}]
    return tracker_factory("/start_conversation", "start_conversation", 1.0, entities=entities)


async def _privacy_notice(runtime, domain, tracker) -> str:
    dispatcher = CollectingDispatcher()
    await ActionWelcome(runtime).run(dispatcher, tracker, domain)
    [notice] = [m["text"] for m in dispatcher.messages if m["text"].startswith("Privacy")]
    return notice


@pytest.mark.asyncio
async def test_privacy_notice_says_whether_the_chat_is_kept(runtime, domain, tracker_factory):
    kept = await _privacy_notice(runtime, domain, _start(tracker_factory, "yes"))
    assert kept == template(domain, "utter_privacy_kept", clinic=runtime.kb.clinic.name)
    assert runtime.kb.clinic.name in kept and "keeps this chat" in kept
    for consent in ("no", None, "maybe"):  # anything but "yes" means not kept
        not_kept = await _privacy_notice(runtime, domain, _start(tracker_factory, consent))
        assert not_kept == template(domain, "utter_privacy_not_kept", clinic=runtime.kb.clinic.name)
        assert "not kept" in not_kept and "deleted" in not_kept


@pytest.mark.asyncio
async def test_opening_says_who_what_not_and_privacy(runtime, domain, tracker_factory):
    dispatcher = CollectingDispatcher()
    await ActionWelcome(runtime).run(dispatcher, _start(tracker_factory, "yes"), domain)
    texts = [m["text"] for m in dispatcher.messages]
    assert runtime.kb.clinic.name in texts[0]
    assert any("not medical advice" in t for t in texts)
    assert any("not for emergencies" in t for t in texts)
    assert any(t.startswith("Privacy") for t in texts)
    assert "{" not in " ".join(texts)
    payloads = [b["payload"] for b in dispatcher.messages[-1]["buttons"]]
    assert payloads[:2] == ["/decision_help", "/ask_disclosure"], "decision support comes first"
    assert len(payloads) == len(runtime.kb.topics) + 2


@pytest.mark.asyncio
async def test_topic_menu_lists_every_topic(runtime, domain, tracker_factory):
    dispatcher = CollectingDispatcher()
    await ActionShowTopics(runtime).run(dispatcher, tracker_factory("what can you do", "ask_capabilities"), domain)
    payloads = {b["payload"] for b in dispatcher.messages[0]["buttons"]}
    assert payloads == {"/" + t.intent for t in runtime.kb.topics.values()} | {"/decision_help", "/ask_disclosure"}


@pytest.mark.asyncio
async def test_contact_uses_the_clinic_file(runtime, domain, tracker_factory):
    dispatcher = CollectingDispatcher()
    await ActionClinicContact(runtime).run(dispatcher, tracker_factory("phone number?", "contact_clinic"), domain)
    text = dispatcher.messages[0]["text"]
    clinic = runtime.kb.clinic
    assert clinic.name in text and clinic.phone in text
    assert "{" not in text

"""The responses Rasa sends itself (bot/dialogue/nlg.py): the opening, the topic menu and the
urgent reply, with the real domain, clinic file and built knowledge base."""

from __future__ import annotations

from typing import Any

import pytest
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot import paths
from bot.dialogue.nlg import ClinicResponses
from bot.dialogue.replies import template
from contract import payloads


@pytest.fixture(scope="module")
def rasa_domain() -> Domain:
    return Domain.load(str(paths.domain_file()))


@pytest.fixture
def nlg(rasa_domain: Domain, runtime: Any) -> ClinicResponses:
    return ClinicResponses(domain=rasa_domain, clinic=runtime.kb.clinic, kb=runtime.kb)


def _tracker(rasa_domain: Domain, text: str, intent: str, events: list | None = None,
             safety: dict | None = None) -> DialogueStateTracker:
    parse = {"text": text, "intent": {"name": intent, "confidence": 1.0}, "entities": []}
    if safety is not None:
        parse["safety"] = safety
    return DialogueStateTracker.from_events(
        "test", [UserUttered(text, parse["intent"], parse_data=parse), *(events or [])],
        slots=rasa_domain.slots)


async def _text(nlg: ClinicResponses, rasa_domain: Domain, name: str, consent: str | None) -> str:
    events = [] if consent is None else [SlotSet("transcript_consent", consent)]
    tracker = _tracker(rasa_domain, "/start_conversation", "start_conversation", events)
    response = await nlg.generate(name, tracker, "meso")
    return response["text"]


@pytest.mark.asyncio
async def test_privacy_notice_says_whether_the_chat_is_kept(nlg, rasa_domain, runtime) -> None:
    kept = await _text(nlg, rasa_domain, "utter_privacy", "yes")
    assert runtime.kb.clinic.name in kept and "keeps this chat" in kept
    for consent in ("no", None, "maybe"):  # anything but "yes" means not kept
        not_kept = await _text(nlg, rasa_domain, "utter_privacy", consent)
        assert "not kept" in not_kept and "deleted" in not_kept, consent


@pytest.mark.asyncio
async def test_opening_says_who_what_not_and_fills_the_clinic(nlg, rasa_domain, runtime) -> None:
    welcome = await _text(nlg, rasa_domain, "utter_welcome", "yes")
    disclaimer = await _text(nlg, rasa_domain, "utter_disclaimer", "yes")
    assert runtime.kb.clinic.name in welcome and "{" not in welcome
    assert "not medical advice" in disclaimer and "not for emergencies" in disclaimer


@pytest.mark.asyncio
async def test_topic_menu_lists_the_decision_support_first_then_every_topic(nlg, rasa_domain, runtime,
                                                                             domain) -> None:
    tracker = _tracker(rasa_domain, "what can you do", "ask_capabilities")
    response = await nlg.generate("utter_topics", tracker, "meso")
    assert response["text"] == template(domain, "utter_topics")
    payload_list = [b["payload"] for b in response["buttons"]]
    assert payload_list[:2] == ["/decision_help", "/ask_disclosure"], "decision support comes first"
    assert set(payload_list[2:]) == {"/" + t.intent for t in runtime.kb.topics.values()}


@pytest.mark.asyncio
async def test_the_urgent_reply_is_made_in_rasa_with_its_level_flags_and_language(nlg, rasa_domain) -> None:
    tracker = _tracker(rasa_domain, "je narrive plus a respirer", "red_flag_emergency",
                       safety={"level": "emergency", "flags": ["fr:emergency"], "language": "fr"})
    response = await nlg.generate("utter_red_flag", tracker, "meso")
    assert response["text"].startswith("Appelez tout de suite")
    assert response["custom"] == {"red_flag": {"level": "emergency", "flags": ["fr:emergency"]}}
    assert payloads.check_custom(response["custom"])[1] == []
    assert not response.get("buttons")


@pytest.mark.asyncio
async def test_other_responses_are_rasas_own(nlg, rasa_domain, domain) -> None:
    tracker = _tracker(rasa_domain, "hiya", "greet")
    response = await nlg.generate("utter_greet", tracker, "meso")
    assert response["text"] == template(domain, "utter_greet")


@pytest.mark.asyncio
async def test_the_responses_rasa_sets_after_loading_its_model_are_the_ones_used(rasa_domain, runtime) -> None:
    """Rasa creates the generator before its model's domain is loaded, then sets
    ``responses``: the topic menu and the urgent reply must read them then."""
    nlg = ClinicResponses(domain=Domain.empty(), clinic=runtime.kb.clinic, kb=runtime.kb)
    nlg.responses = rasa_domain.responses
    tracker = _tracker(rasa_domain, "what can you do", "ask_capabilities")
    response = await nlg.generate("utter_topics", tracker, "meso")
    assert [b["payload"] for b in response["buttons"]][:2] == ["/decision_help", "/ask_disclosure"]

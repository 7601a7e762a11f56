"""action_answer_question with the real built knowledge base."""

from __future__ import annotations

from dataclasses import replace

import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions.answer import ActionAnswerQuestion
from bot.kb.runtime import Runtime


async def _run(runtime: Runtime, domain: dict, tracker) -> tuple[list[dict], list[dict]]:
    dispatcher = CollectingDispatcher()
    events = await ActionAnswerQuestion(runtime).run(dispatcher, tracker, domain)
    return dispatcher.messages, events


@pytest.mark.asyncio
async def test_a_clear_question_is_answered_with_sources_certainty_and_review_date(runtime, domain, tracker_factory):
    messages, events = await _run(runtime, domain, tracker_factory("how much does one session cost", "ask_cost", 0.95))
    assert len(messages) == 1
    custom = messages[0]["custom"]
    assert custom["topic"] == "cost"
    assert custom["sources"] and all(s["id"] in runtime.kb.sources for s in custom["sources"])
    assert {"id", "title", "url"} <= set(custom["sources"][0])
    assert "How sure the sources are:" in messages[0]["text"]
    assert "2026" in messages[0]["text"]
    assert events == [{"event": "slot", "timestamp": None, "name": "last_entry", "value": custom["entry_id"]}]


@pytest.mark.asyncio
async def test_where_sources_disagree_each_figure_keeps_its_source(runtime, domain, tracker_factory):
    messages, _ = await _run(runtime, domain, tracker_factory("price per session?", "ask_cost", 0.97))
    custom = messages[0]["custom"]
    cited = {f["source"] for f in custom["figures"]}
    assert len(cited) >= 2, custom["figures"]


@pytest.mark.asyncio
async def test_button_entity_answers_exactly_that_entry(runtime, domain, tracker_factory):
    tracker = tracker_factory('/ask_cost{"entry":"cost-insurance"}', "ask_cost", 1.0,
                              entities=[{"entity": "entry", "value": "cost-insurance"}])
    messages, _ = await _run(runtime, domain, tracker)
    assert messages[0]["custom"]["entry_id"] == "cost-insurance"


@pytest.mark.asyncio
async def test_related_entries_are_offered_as_buttons_with_trusted_payloads(runtime, domain, tracker_factory):
    messages, _ = await _run(runtime, domain, tracker_factory("how many sessions do i need", "ask_sessions", 0.95))
    buttons = messages[0]["buttons"]
    assert buttons
    for button in buttons:
        assert button["payload"].startswith("/ask_") and '"entry"' in button["payload"]


@pytest.mark.asyncio
async def test_gibberish_gets_did_not_understand_with_topics_and_contact(runtime, domain, tracker_factory):
    tracker = tracker_factory("qwzx plmk vvbn", "nlu_fallback", 0.4, ranking=[("nlu_fallback", 0.4), ("greet", 0.2)])
    messages, events = await _run(runtime, domain, tracker)
    assert events == []
    assert messages[0]["text"] == domain["responses"]["utter_did_not_understand"][0]["text"]
    payloads = [b["payload"] for b in messages[0]["buttons"]]
    assert "/contact_clinic" in payloads and len(payloads) >= 3
    assert messages[0]["custom"]["unanswered"] is True


@pytest.mark.asyncio
async def test_weak_match_offers_nearest_topics_instead_of_guessing(runtime, domain, tracker_factory):
    tracker = tracker_factory("injections", "nlu_fallback", 0.4,
                              ranking=[("nlu_fallback", 0.4), ("ask_procedure", 0.2), ("ask_pain", 0.18)])
    messages, events = await _run(runtime, domain, tracker)
    assert events == []
    assert messages[0]["custom"].get("unanswered") is True
    assert 2 <= len(messages[0]["buttons"]) <= 4


@pytest.mark.asyncio
async def test_off_topic_words_are_not_answered_confidently(runtime, domain, tracker_factory):
    # The intent classifier half-believes this is about choosing a clinic; the words say otherwise.
    tracker = tracker_factory("can you recommend a decent plumber in leeds", "ask_choosing_clinic", 0.6,
                              ranking=[("ask_choosing_clinic", 0.6), ("out_of_scope", 0.3)])
    messages, _ = await _run(runtime, domain, tracker)
    assert messages[0]["custom"].get("unanswered") is True


@pytest.mark.asyncio
async def test_follow_up_uses_the_previous_question(runtime, domain, tracker_factory):
    tracker = tracker_factory("and how long does it last?", "nlu_fallback", 0.4,
                              ranking=[("nlu_fallback", 0.4), ("ask_results", 0.3), ("ask_side_effects", 0.25)],
                              previous="how long does the swelling and redness last after",
                              slots={"last_entry": "side-effects-common"})
    messages, _ = await _run(runtime, domain, tracker)
    assert messages[0]["custom"]["topic"] == "side_effects"


@pytest.mark.asyncio
async def test_typos_still_find_the_topic(runtime, domain, tracker_factory):
    tracker = tracker_factory("finastride vs mesotherpy", "nlu_fallback", 0.4,
                              ranking=[("nlu_fallback", 0.4), ("ask_alternatives", 0.3)])
    messages, _ = await _run(runtime, domain, tracker)
    assert messages[0]["custom"]["topic"] == "alternatives"


@pytest.mark.asyncio
async def test_clinic_price_appears_beside_published_ranges_when_set(runtime, domain, tracker_factory):
    priced = Runtime(kb=replace_clinic(runtime, price_per_session=180.0, currency="GBP"),
                     retriever=runtime.retriever, normaliser=runtime.normaliser)
    tracker = tracker_factory('/ask_cost{"entry":"cost-per-session"}', "ask_cost", 1.0,
                              entities=[{"entity": "entry", "value": "cost-per-session"}])
    with_price, _ = await _run(priced, domain, tracker)
    without_price, _ = await _run(runtime, domain, tracker)
    assert "GBP 180" in with_price[0]["text"]
    assert "has not published its own price" in without_price[0]["text"]


def replace_clinic(runtime: Runtime, **changes):
    kb = runtime.kb
    from bot.kb.model import KnowledgeBase

    return KnowledgeBase(topics=kb.topics, sources=kb.sources, entries=kb.entries,
                         clinic=replace(kb.clinic, **changes))

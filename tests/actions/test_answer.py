"""action_answer_question with the real built knowledge base."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions.answer import ActionAnswerQuestion, ActionDefaultFallback, ActionOutOfScope
from bot.dialogue.replies import template
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
    unset = template(domain, "utter_clinic_price_session_unset", clinic=runtime.kb.clinic.name)
    assert unset in without_price[0]["text"] and unset not in with_price[0]["text"]


def replace_clinic(runtime: Runtime, **changes):
    kb = runtime.kb
    from bot.kb.model import KnowledgeBase

    return KnowledgeBase(topics=kb.topics, sources=kb.sources, entries=kb.entries,
                         clinic=replace(kb.clinic, **changes))


# --- Personal situations (candidacy): general facts, then "discuss with a clinician" ---------

# A person's own situation, in their words, and the entry that answers it.
PERSONAL_SITUATIONS = [
    ("I'm pregnant", "candidacy-pregnancy"),
    ("im breastfeeding my baby", "candidacy-pregnancy"),
    ("I take warfarin", "candidacy-blood-thinners"),
    ("i have a bleeding disorder", "candidacy-bleeding-clotting"),
    ("im diabetic", "candidacy-diabetes"),
    ("i have kidney disease", "candidacy-long-term-conditions"),
    ("I have a heart condition", "candidacy-long-term-conditions"),
    ("i have lots of allergies", "candidacy-allergies"),
    ("i have sores on my scalp", "candidacy-scalp-infection"),
    ("my psoriasis is flaring", "candidacy-scalp-flare"),
    ("i have shingles", "candidacy-shingles"),
    ("im very bald", "candidacy-advanced-hair-loss"),
    ("im 16", "candidacy-age"),
]
# Words that would give a verdict on the person's own case.
VERDICT = re.compile(
    r"^(yes|no)\b|\byou (can|can't|cannot|should|shouldn't|should not|must not|may) (have|get|try|go ahead)\b"
    r"|\byou are (not )?(a )?(good |suitable |ideal )?(candidate|suitable|eligible)\b"
    r"|\b(it is|it's) (safe|fine|ok|okay|not safe) for you\b|\byou('re| are) (fine|ok|okay|eligible)\b",
    re.IGNORECASE,
)


def clinician_line(domain: dict) -> str:
    return domain["responses"]["utter_discuss_with_clinician"][0]["text"]


@pytest.mark.asyncio
async def test_every_candidacy_answer_ends_with_discuss_with_a_clinician(runtime, domain, tracker_factory):
    entries = runtime.kb.entries_of("candidacy")
    assert len(entries) >= 12
    for entry in entries:
        tracker = tracker_factory(f'/ask_candidacy{{"entry":"{entry.id}"}}', "ask_candidacy", 1.0,
                                  entities=[{"entity": "entry", "value": entry.id}])
        messages, _ = await _run(runtime, domain, tracker)
        assert messages[0]["text"].endswith(clinician_line(domain)), entry.id
        assert messages[0]["custom"]["sources"], entry.id


@pytest.mark.asyncio
@pytest.mark.parametrize("text,entry_id", PERSONAL_SITUATIONS)
async def test_a_personal_situation_gets_its_facts_and_the_clinician_line(runtime, domain, tracker_factory,
                                                                         text, entry_id):
    messages, _ = await _run(runtime, domain, tracker_factory(text, "ask_candidacy", 0.9))
    assert messages[0]["custom"]["entry_id"] == entry_id
    assert messages[0]["text"].endswith(clinician_line(domain))


@pytest.mark.asyncio
async def test_a_candidacy_question_answered_from_another_topic_still_gets_the_line(runtime, domain,
                                                                                  tracker_factory):
    tracker = tracker_factory('/ask_candidacy{"entry":"hair-loss-types-scalp-conditions"}', "ask_candidacy", 1.0,
                              entities=[{"entity": "entry", "value": "hair-loss-types-scalp-conditions"}])
    messages, _ = await _run(runtime, domain, tracker)
    assert messages[0]["text"].endswith(clinician_line(domain))


@pytest.mark.asyncio
async def test_general_answers_do_not_get_the_clinician_line(runtime, domain, tracker_factory):
    messages, _ = await _run(runtime, domain, tracker_factory("how much does one session cost", "ask_cost", 0.95))
    assert clinician_line(domain) not in messages[0]["text"]


def test_no_candidacy_answer_gives_a_verdict(runtime):
    for entry in runtime.kb.entries_of("candidacy"):
        for sentence in re.split(r"(?<=[.!?])\s+", entry.answer):
            assert not VERDICT.search(sentence), (entry.id, sentence)


def test_the_verdict_pattern_catches_verdicts():
    for verdict in ("Yes, you can have it.", "You can have mesotherapy.", "You are a good candidate.",
                    "It is safe for you.", "No, you should not have it.", "You're fine to go ahead."):
        assert VERDICT.search(verdict), verdict
    assert not VERDICT.search("Only a clinician who examines you can say if it suits you.")


def _with_reading(tracker, pieces: list[tuple[str, bool, list[tuple[str, float]]]], long: bool = False):
    """The tracker's latest message as the classifier leaves a message read in pieces."""
    tracker.latest_message["reading"] = {
        "long": long, "compound": sum(q for _, q, _ in pieces) > 1,
        "pieces": [{"text": t, "question": q, "intent_ranking": [{"name": n, "confidence": c} for n, c in r]}
                   for t, q, r in pieces],
    }
    return tracker


@pytest.mark.asyncio
async def test_each_question_of_a_compound_message_gets_its_own_sourced_answer_in_order(runtime, domain, tracker_factory):
    text = "how long does a session take and how much does it cost"
    tracker = _with_reading(tracker_factory(text, "ask_procedure", 0.6), [
        ("how long does a session take", True, [("ask_procedure", 0.9)]),
        ("how much does it cost", True, [("ask_cost", 0.95)]),
    ])
    messages, events = await _run(runtime, domain, tracker)
    assert [m["custom"]["topic"] for m in messages] == ["procedure", "cost"]
    assert all(m["custom"]["sources"] for m in messages)
    assert not messages[0]["buttons"], "related questions only after the last answer"
    assert events[-1]["name"] == "last_entry" and events[-1]["value"] == messages[-1]["custom"]["entry_id"]


@pytest.mark.asyncio
async def test_a_part_that_cannot_be_answered_is_named_after_the_answers(runtime, domain, tracker_factory):
    tracker = _with_reading(tracker_factory("does it hurt and whats the weather in paris", "ask_pain", 0.7), [
        ("does it hurt", True, [("ask_pain", 0.95)]),
        ("whats the weather in paris", True, [("out_of_scope", 0.9)]),
    ])
    messages, _ = await _run(runtime, domain, tracker)
    assert messages[0]["custom"]["topic"] == "pain"
    assert messages[-1]["text"] == template(domain, "utter_part_not_answered", question="whats the weather in paris")
    assert messages[-1]["custom"] == {"unanswered": True}


@pytest.mark.asyncio
async def test_a_long_story_is_answered_on_its_question(runtime, domain, tracker_factory):
    story = ("my sister had it done and her hair looks great, she paid a lot and went every week, she says the "
             "nurse was lovely and it did not hurt much. so how many sessions does a course usually take")
    tracker = _with_reading(tracker_factory(story, "ask_sessions", 0.7), [
        ("my sister had it done and her hair looks great, she paid a lot and went every week, she says the "
         "nurse was lovely and it did not hurt much.", False, [("ask_cost", 0.5)]),
        ("so how many sessions does a course usually take", True, [("ask_sessions", 0.95)]),
    ], long=True)
    messages, _ = await _run(runtime, domain, tracker)
    assert messages[0]["custom"]["topic"] == "sessions"


def _after_offer(tracker, entries: list[str]):
    """The tracker with an answer before the latest message that offered ``entries`` as buttons."""
    latest = tracker.events.pop()
    tracker.events += [
        {"event": "user", "text": "what techniques are there", "parse_data": {}},
        {"event": "bot", "text": "An answer.", "data": {"buttons": [
            {"title": e, "payload": '/ask_procedure{"entry":"%s"}' % e} for e in entries]}},
        {"event": "action", "name": "action_listen"},
        latest,
    ]
    return tracker


@pytest.mark.asyncio
@pytest.mark.parametrize("text, place", [("the second one", 1), ("number 1", 0), ("and the last one?", 2)])
async def test_a_place_in_the_last_offered_list_answers_that_entry(runtime, domain, tracker_factory, text, place):
    offered = ["procedure-depth", "procedure-duration", "pain-does-it-hurt"]
    tracker = _after_offer(tracker_factory(text, "nlu_fallback", 0.4), offered)
    messages, events = await _run(runtime, domain, tracker)
    assert messages[0]["custom"]["entry_id"] == offered[place]
    assert events[-1]["value"] == offered[place]


@pytest.mark.asyncio
async def test_a_place_beyond_the_offered_list_is_not_guessed(runtime, domain, tracker_factory):
    tracker = _after_offer(tracker_factory("the third one", "nlu_fallback", 0.4), ["procedure-depth"])
    messages, _ = await _run(runtime, domain, tracker)
    assert messages[0]["custom"].get("entry_id") != "procedure-depth"


@pytest.mark.asyncio
async def test_a_statement_that_is_part_of_the_question_is_kept(runtime, domain, tracker_factory):
    tracker = _with_reading(tracker_factory("im on blood thinners, can i have mesotherapy", "ask_candidacy", 0.98,
                                            ranking=[("ask_candidacy", 0.98)]), [
        ("im on blood thinners", False, [("ask_candidacy", 0.6)]),
        ("can i have mesotherapy", True, [("ask_candidacy", 0.9)]),
    ])
    messages, _ = await _run(runtime, domain, tracker)
    assert messages[0]["custom"]["entry_id"] == "candidacy-blood-thinners"


@pytest.mark.asyncio
async def test_a_statement_pointing_away_from_the_question_gives_way_to_it(runtime, domain, tracker_factory):
    text = "no fever, no swelling, nothing like that, just want to know how much it is"
    tracker = _with_reading(tracker_factory(text, "ask_cost", 0.56, ranking=[("ask_cost", 0.56), ("ask_side_effects", 0.3)]), [
        ("no fever, no swelling, nothing like that", False, [("ask_side_effects", 0.79)]),
        ("just want to know how much it is", True, [("ask_cost", 0.93)]),
    ])
    messages, _ = await _run(runtime, domain, tracker)
    assert messages[0]["custom"]["topic"] == "cost"


async def _out_of_scope(runtime: Runtime, domain: dict, tracker) -> tuple[list[dict], list[dict]]:
    dispatcher = CollectingDispatcher()
    events = await ActionOutOfScope(runtime).run(dispatcher, tracker, domain)
    return dispatcher.messages, events


@pytest.mark.asyncio
async def test_a_follow_up_read_as_out_of_scope_is_answered_within_the_previous_answer(runtime, domain,
                                                                                       tracker_factory):
    tracker = tracker_factory("what if its flaring right now", "out_of_scope", 0.52,
                              ranking=[("out_of_scope", 0.52), ("ask_side_effects", 0.21)],
                              previous="can i have it if i have psoriasis on my scalp",
                              slots={"last_entry": "candidacy-scalp-flare"})
    messages, events = await _out_of_scope(runtime, domain, tracker)
    assert messages[0]["custom"]["topic"] == "candidacy"
    assert messages[0]["custom"]["sources"]
    assert events[-1]["name"] == "last_entry"


@pytest.mark.asyncio
@pytest.mark.parametrize("text, previous, entry", [
    ("is it raining there today", "can i have it if i have psoriasis on my scalp", "candidacy-scalp-flare"),
    ("whats the weather in paris", "how much does one session cost", "cost-per-session"),
    ("can you book me a table for it", "how much does one session cost", "cost-per-session"),
])
async def test_out_of_scope_stays_out_of_scope_when_nothing_points_back(runtime, domain, tracker_factory,
                                                                        text, previous, entry):
    tracker = tracker_factory(text, "out_of_scope", 0.9, previous=previous, slots={"last_entry": entry})
    messages, events = await _out_of_scope(runtime, domain, tracker)
    assert events == []
    assert messages == [{**messages[0], "response": "utter_out_of_scope"}]


@pytest.mark.asyncio
async def test_out_of_scope_with_no_previous_answer_is_declined(runtime, domain, tracker_factory):
    tracker = tracker_factory("what if its flaring right now", "out_of_scope", 0.52)
    messages, events = await _out_of_scope(runtime, domain, tracker)
    assert events == [] and messages[0]["response"] == "utter_out_of_scope"


@pytest.mark.asyncio
async def test_a_follow_up_read_as_an_answer_word_is_answered_within_the_previous_answer(runtime, domain,
                                                                                         tracker_factory):
    tracker = tracker_factory("and if its more than that?", "not_sure", 0.76,
                              ranking=[("not_sure", 0.76), ("ask_dose", 0.05), ("ask_cost", 0.02)],
                              previous="how many hairs a day is normal to lose",
                              slots={"last_entry": "hair-facts-normal-shedding"})
    dispatcher = CollectingDispatcher()
    events = await ActionDefaultFallback(runtime).run(dispatcher, tracker, domain)
    assert dispatcher.messages[0]["custom"]["topic"] == "hair_facts"
    assert events[-1]["name"] == "last_entry"


@pytest.mark.asyncio
async def test_an_answer_word_with_nothing_asked_gets_rasas_default_reply_and_is_set_aside(runtime, domain,
                                                                                           tracker_factory):
    tracker = tracker_factory("not sure", "not_sure", 0.95, previous="how many hairs a day is normal to lose",
                              slots={"last_entry": "hair-facts-normal-shedding"})
    dispatcher = CollectingDispatcher()
    events = await ActionDefaultFallback(runtime).run(dispatcher, tracker, domain)
    assert [m["response"] for m in dispatcher.messages] == ["utter_default"]
    assert [e["event"] for e in events] == ["rewind"]


@pytest.mark.asyncio
async def test_an_answer_shows_its_certainty_note_and_its_shares_out_of_100(runtime, domain, tracker_factory):
    tracker = tracker_factory('/ask_evidence{"entry":"evidence-dutasteride-small-study-results"}', "ask_evidence",
                              1.0, entities=[{"entity": "entry", "value": "evidence-dutasteride-small-study-results"}])
    messages, _ = await _run(runtime, domain, tracker)
    entry = runtime.kb.entries["evidence-dutasteride-small-study-results"]
    text = messages[0]["text"]
    assert f"How sure the sources are: low. {entry.certainty_note}" in text
    assert "93 out of 100 people given dutasteride injections in one small study" in text
    assert "7 out of 100 people given a dummy treatment (placebo) in the same study" in text
    assert "92.9%" in text and "7.1%" in text and "Group size: 14 people" in text and "7 weekly injections" in text
    # The shares come before the certainty line, each also as an icon array.
    assert text.index("93 out of 100") < text.index("How sure the sources are")
    shares = [f for f in messages[0]["custom"]["figures"] if "per_100" in f]
    assert [(f["per_100"], f["value"]) for f in shares] == [(93, "92.9%"), (7, "7.1%")]
    assert all(f["alt"].rstrip(".") in text for f in shares)


@pytest.mark.asyncio
async def test_an_entry_without_a_note_still_reads_cleanly(runtime, domain, tracker_factory):
    entry = next(e for e in runtime.kb.entries.values() if not e.certainty_note)
    intent = runtime.kb.topics[entry.topic].intent
    tracker = tracker_factory(f'/{intent}{{"entry":"{entry.id}"}}', intent, 1.0,
                              entities=[{"entity": "entry", "value": entry.id}])
    messages, _ = await _run(runtime, domain, tracker)
    assert re.search(r"How sure the sources are: [a-z ]+\. Information checked on ", messages[0]["text"])


class _NoEncoder:
    def encode(self, texts: list[str]):
        raise AssertionError(f"the action server encoded {texts!r}")


@pytest.mark.asyncio
async def test_the_answer_uses_the_scores_rasa_sent_and_encodes_nothing(runtime, domain, tracker_factory, built_dir):
    """The classifier's entry scores in the parse data (bot.kb.semantic) stand in for the
    action server's own encoding: same answer, no second encoding."""
    from bot.kb.retriever import Retriever
    from bot.kb.semantic import SIMILARITIES_KEY, SemanticIndex
    from bot.nlp.encoder import shared_encoder

    text = "will my scalp go numb first?"
    expected, _ = await _run(runtime, domain, tracker_factory(text, "ask_pain", 0.6))
    index = SemanticIndex.load(built_dir)
    lean = replace(runtime, retriever=Retriever(runtime.kb, runtime.retriever._index, runtime.normaliser,
                                                index, _NoEncoder()))
    tracker = tracker_factory(text, "ask_pain", 0.6)
    with pytest.raises(AssertionError, match="encoded"):
        await _run(lean, domain, tracker)
    tracker.latest_message[SIMILARITIES_KEY] = index.pack([text], shared_encoder().encode([text]))
    messages, _ = await _run(lean, domain, tracker)
    assert messages[0]["custom"].get("entry_id") == expected[0]["custom"].get("entry_id")
    assert messages[0]["text"] == expected[0]["text"]

"""Readiness to decide: the SURE questions and their result (actions/readiness.py)."""

from __future__ import annotations

import itertools

import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions.readiness import SURE_SLOTS, ActionReadinessResult, ActionResetReadiness, ValidateReadinessForm


def test_the_four_sure_questions_are_asked_with_three_answers(domain):
    form = domain["forms"]["readiness_form"]["required_slots"]
    assert form == list(SURE_SLOTS)
    texts = [domain["responses"][f"utter_ask_{slot}"][0] for slot in SURE_SLOTS]
    assert "sure about the best choice for you" in texts[0]["text"]
    assert "benefits and risks of each option" in texts[1]["text"]
    assert "which benefits and risks matter most to you" in texts[2]["text"]
    assert "enough support and advice" in texts[3]["text"]
    for n, t in enumerate(texts, start=1):
        assert f"{n} of 4" in t["text"]
        assert [b["payload"] for b in t["buttons"]] == ["/affirm", "/deny", "/not_sure"]


def test_answers_fill_only_the_question_being_asked(domain):
    """affirm / deny / not_sure map to yes / no / not_sure, only while that question is asked."""
    for slot in SURE_SLOTS:
        mappings = domain["slots"][slot]["mappings"]
        assert {(m["intent"], m["value"]) for m in mappings} == {
            ("affirm", "yes"), ("deny", "no"), ("not_sure", "not_sure")}
        for m in mappings:
            assert m["conditions"] == [{"active_loop": "readiness_form", "requested_slot": slot}]


async def _result(runtime, domain, tracker_factory, answers: dict[str, str]):
    dispatcher = CollectingDispatcher()
    events = await ActionReadinessResult(runtime).run(dispatcher, tracker_factory("/affirm", "affirm", slots=answers),
                                                      domain)
    [message] = dispatcher.messages
    return events, message


@pytest.mark.asyncio
async def test_four_yeses_seem_ready_and_offer_the_summary(runtime, domain, tracker_factory):
    events, message = await _result(runtime, domain, tracker_factory, {s: "yes" for s in SURE_SLOTS})
    assert events == [{"event": "slot", "timestamp": None, "name": "sure_result", "value": "4 of 4"}]
    assert "ready" in message["text"] and "summary" in message["text"] and "consultation" in message["text"]
    payloads = [b["payload"] for b in message["buttons"]]
    assert "/get_summary" in payloads


@pytest.mark.asyncio
@pytest.mark.parametrize("answers", [
    combo for combo in itertools.product(("yes", "no", "not_sure"), repeat=4) if combo.count("yes") < 4
][::7])
async def test_fewer_than_four_yeses_offer_more_information_or_a_callback(runtime, domain, tracker_factory, answers):
    events, message = await _result(runtime, domain, tracker_factory, dict(zip(SURE_SLOTS, answers)))
    yeses = answers.count("yes")
    assert events[0]["value"] == f"{yeses} of 4"
    assert f"{yeses} of 4" in message["text"]
    assert "seem ready" not in message["text"]
    payloads = [b["payload"] for b in message["buttons"]]
    evidence = runtime.kb.topics["evidence"].intent
    for wanted in ("/compare_options", "/explore_values", "/" + evidence, "/request_callback"):
        assert wanted in payloads


@pytest.mark.asyncio
async def test_unanswered_questions_do_not_count_as_yes(runtime, domain, tracker_factory):
    events, _ = await _result(runtime, domain, tracker_factory, {"sure_sure": "yes"})
    assert events[0]["value"] == "1 of 4"


@pytest.mark.asyncio
async def test_reset_clears_every_answer_and_the_result(domain, tracker_factory):
    events = await ActionResetReadiness().run(CollectingDispatcher(), tracker_factory("x", "check_readiness"), domain)
    assert {e["name"]: e["value"] for e in events} == {**{s: None for s in SURE_SLOTS}, "sure_result": None}


@pytest.mark.asyncio
async def test_resuming_after_a_red_flag_ends_the_pause(domain, tracker_factory):
    tracker = tracker_factory("continue", "continue_form", slots={"paused_form": "readiness_form", "sure_sure": "no"})
    events = await ValidateReadinessForm().run(CollectingDispatcher(), tracker, domain)
    assert {"event": "slot", "timestamp": None, "name": "paused_form", "value": None} in events
    other = tracker_factory("continue", "continue_form", slots={"paused_form": "values_form"})
    assert not [e for e in await ValidateReadinessForm().run(CollectingDispatcher(), other, domain)
                if e.get("name") == "paused_form"]


def test_validation_keeps_only_the_three_answers():
    form = ValidateReadinessForm()
    assert form.validate_sure_values("not_sure", None, None, {}) == {"sure_values": "not_sure"}
    assert form.validate_sure_support("maybe", None, None, {}) == {"sure_support": None}

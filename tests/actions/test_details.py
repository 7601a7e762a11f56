"""The questions for the clinician (actions/details.py, bot/dialogue/details.py) with the real
knowledge base and domain: what each answer becomes, skipping, consent and the record."""

from __future__ import annotations

from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.details import (
    ActionAskOptionLeaning,
    ActionAskTreatmentsDone,
    ActionDetailsResult,
    ActionDetailsStart,
    ActionDetailsStop,
    ValidateDetailsForm,
)
from bot.dialogue import details as dt
from bot.kb.decision import CHECKLIST_IDS
from bot.kb.runtime import Runtime

# Every key the shared consent covers.
RECORD_KEYS = {f"check_{i}" for i in CHECKLIST_IDS} | set(dt.RECORD_KEYS)


def tracker(slots: dict[str, Any] | None = None, *, text: str = "x", intent: str = "choose",
            choice: str | None = None, requested: str | None = None, events: list[dict] | None = None) -> Tracker:
    entities = [{"entity": "choice", "value": choice}] if choice else []
    if choice:
        text = '/choose{"choice":"%s"}' % choice
    latest = {"text": text, "intent": {"name": intent, "confidence": 1.0}, "entities": entities}
    all_slots = {**(slots or {}), "requested_slot": requested}
    return Tracker("test", all_slots, latest, [*(events or []), {"event": "user", "text": text, "parse_data": latest}],
                   False, None, {"name": dt.FORM} if requested else {}, "action_listen")


def compare(choice: str) -> dict[str, Any]:
    """A user event as Rasa stores a press of an options-view button."""
    return {"event": "user", "text": f'/compare_options{{"choice":"{choice}"}}',
            "parse_data": {"intent": {"name": "compare_options"}, "entities": [{"entity": "choice", "value": choice}]}}


async def run(action: Any, tr: Tracker, domain: dict) -> tuple[list[dict], list[dict]]:
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, tr, domain)
    return dispatcher.messages, events


def slots_of(events: list[dict]) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


# --- the domain: questions, buttons, form ---------------------------------------------------

def test_the_form_asks_consent_then_the_four_questions_each_skippable(domain: dict, runtime: Runtime) -> None:
    assert domain["forms"][dt.FORM]["required_slots"] == ["checklist_consent", *dt.QUESTION_SLOTS]
    assert list(dt.choices(domain, dt.PATTERN_RESPONSE)) == [
        "receding", "top", "part", "patches", "all_over", "not_sure", "prefer_not_to_say"]
    assert list(dt.choices(domain, dt.DURATION_RESPONSE)) == [
        "under_6_months", "6_to_12_months", "1_to_5_years", "over_5_years", "not_sure", "prefer_not_to_say"]
    assert list(dt.choices(domain, dt.TREATMENT_RESPONSE)) == [
        "minoxidil", "finasteride", "prp", "mesotherapy", "supplements", "other", "none", "prefer_not_to_say"]
    for response in (dt.PATTERN_RESPONSE, dt.DURATION_RESPONSE, dt.TREATMENT_RESPONSE):
        assert dt.choices(domain, response)["prefer_not_to_say"] == "Skip"
    leaning = dt.leaning_choices(domain, runtime.kb.decision)
    assert list(leaning) == ["mesotherapy", "minoxidil", "finasteride", "prp", "nothing", "not_sure", "prefer_not_to_say"]
    assert leaning["not_sure"] == "Not sure yet" and leaning["nothing"] == "No treatment"
    # The consent is the checklist's: its answers also map inside this form.
    for mapping in domain["slots"]["checklist_consent"]["mappings"]:
        assert {"active_loop": dt.FORM, "requested_slot": "checklist_consent"} in mapping["conditions"]
    assert dt.FORM in domain["slots"]["paused_form"]["values"]


def test_the_consent_question_here_says_declining_still_asks(domain: dict) -> None:
    variants = domain["responses"]["utter_ask_details_form_checklist_consent"]
    plain = next(v for v in variants if not v.get("condition"))
    assert "If you say no, I'll still ask" in plain["text"] and "won't be kept for the clinic" in plain["text"]
    assert "Your choice counts for the health checklist too." in plain["text"]
    kept_chat = next(v for v in variants if v.get("condition"))
    assert "staff could still read them" in kept_chat["text"]


# --- reading the answers ----------------------------------------------------------------------

@pytest.mark.asyncio
@pytest.mark.parametrize(("slot", "kwargs", "expected"), [
    ("hair_pattern", {"choice": "top"}, "top"),
    ("hair_pattern", {"text": "my hairline is receding", "intent": "ask_hair_loss_types"}, "receding"),
    ("hair_pattern", {"text": "/prefer_not_to_say", "intent": "prefer_not_to_say"}, "prefer_not_to_say"),
    ("hair_pattern", {"text": "skip", "intent": "nlu_fallback"}, "prefer_not_to_say"),
    ("hair_pattern", {"text": "not sure", "intent": "not_sure"}, "not_sure"),
    ("hair_pattern", {"text": "the second one", "intent": "choose"}, "top"),
    ("hair_duration", {"choice": "1_to_5_years"}, "1_to_5_years"),
    ("hair_duration", {"text": "more than 5 years", "intent": "nlu_fallback"}, "over_5_years"),
    ("option_leaning", {"choice": "nothing"}, "nothing"),
    ("option_leaning", {"text": "prp", "intent": "nlu_fallback"}, "prp"),
    ("option_leaning", {"text": "none", "intent": "deny"}, "nothing"),
    ("option_leaning", {"text": "/not_sure", "intent": "not_sure"}, "not_sure"),
])
async def test_each_answer_from_a_button_or_typed_words(runtime: Runtime, domain: dict, slot: str,
                                                         kwargs: dict, expected: str) -> None:
    action = ValidateDetailsForm(runtime)
    tr = tracker({"checklist_consent": True}, requested=slot, **kwargs)
    result = await getattr(action, f"extract_{slot}")(CollectingDispatcher(), tr, domain)
    assert result == {slot: expected}


@pytest.mark.asyncio
async def test_an_unknown_choice_is_asked_again_and_other_intents_are_left_to_their_rules(
        runtime: Runtime, domain: dict) -> None:
    action = ValidateDetailsForm(runtime)
    dispatcher = CollectingDispatcher()
    result = await action.extract_hair_pattern(dispatcher, tracker(requested="hair_pattern", choice="mohawk"), domain)
    assert result == {"hair_pattern": None}
    assert "pick one of the buttons" in dispatcher.messages[0]["text"]
    for text, intent in (("how much does it cost?", "ask_cost"), ("stop", "stop_form"),
                         ("i can't breathe", "red_flag_emergency"), ("is prp better than this", "ask_alternatives")):
        result = await action.extract_option_leaning(CollectingDispatcher(),
                                                     tracker(requested="option_leaning", text=text, intent=intent), domain)
        assert result == {}, text
    # Only the slot being asked reads the message.
    assert await action.extract_hair_duration(CollectingDispatcher(), tracker(requested="hair_pattern", choice="top"),
                                              domain) == {}


@pytest.mark.asyncio
async def test_treatments_are_picked_one_at_a_time_until_thats_all(runtime: Runtime, domain: dict) -> None:
    action = ValidateDetailsForm(runtime)
    ask = "treatments_done"
    first = await action.extract_treatments_done(CollectingDispatcher(), tracker(requested=ask, choice="minoxidil"), domain)
    assert first == {"treatments_tried": ["minoxidil"], "treatments_done": None}
    typed = await action.extract_treatments_done(
        CollectingDispatcher(), tracker({"treatments_tried": ["minoxidil"]}, requested=ask,
                                        text="i also took supplements and finasteride", intent="nlu_fallback"), domain)
    assert typed == {"treatments_tried": ["minoxidil", "finasteride", "supplements"], "treatments_done": None}
    done = await action.extract_treatments_done(
        CollectingDispatcher(), tracker({"treatments_tried": ["minoxidil"]}, requested=ask, text="/deny", intent="deny"),
        domain)
    assert done == {"treatments_tried": ["minoxidil"], "treatments_done": True}
    none = await action.extract_treatments_done(CollectingDispatcher(), tracker(requested=ask, choice="none"), domain)
    assert none == {"treatments_tried": ["none"], "treatments_done": True}
    skipped = await action.extract_treatments_done(
        CollectingDispatcher(), tracker(requested=ask, text="/prefer_not_to_say", intent="prefer_not_to_say"), domain)
    assert skipped == {"treatments_tried": ["prefer_not_to_say"], "treatments_done": True}
    # The list survives validation (it is not a required slot of the form).
    kept = await action.validate_treatments_done(True, CollectingDispatcher(),
                                                 tracker({"treatments_tried": ["prp"]}, requested=ask), domain)
    assert kept == {"treatments_done": True, "treatments_tried": ["prp"]}


@pytest.mark.asyncio
async def test_the_treatment_question_offers_what_is_left_and_thats_all(runtime: Runtime, domain: dict) -> None:
    messages, _ = await run(ActionAskTreatmentsDone(), tracker(), domain)
    assert [b["title"] for b in messages[0]["buttons"]] == [
        "Minoxidil", "Finasteride", "PRP", "Mesotherapy (before)", "Vitamins for hair", "Something else", "None", "Skip"]
    assert messages[0]["text"].startswith("(3 of 4)")
    messages, _ = await run(ActionAskTreatmentsDone(), tracker({"treatments_tried": ["minoxidil", "prp"]}), domain)
    assert "So far: Minoxidil, PRP." in messages[0]["text"]
    assert [b["title"] for b in messages[0]["buttons"]] == [
        "Finasteride", "Mesotherapy (before)", "Vitamins for hair", "Something else", "That's all"]
    assert messages[0]["buttons"][-1]["payload"] == "/deny"


@pytest.mark.asyncio
async def test_the_leaning_question_offers_every_option_and_names_those_looked_at(runtime: Runtime, domain: dict) -> None:
    messages, _ = await run(ActionAskOptionLeaning(runtime), tracker(events=[compare("prp"), compare("harms"),
                                                                            compare("mesotherapy")]), domain)
    [message] = messages
    assert message["text"].startswith("In this chat you looked at: PRP (platelet-rich plasma), Mesotherapy.")
    assert [b["title"] for b in message["buttons"]] == [
        "Mesotherapy", "Minoxidil", "Finasteride", "PRP (platelet-rich plasma)", "No treatment", "Not sure yet", "Skip"]
    assert message["buttons"][4]["payload"] == '/choose{"choice":"nothing"}'
    assert [b["payload"] for b in message["buttons"][-2:]] == ["/not_sure", "/prefer_not_to_say"]


# --- start, result, stop: consent and the record ---------------------------------------------

ANSWERED = {"hair_pattern": "top", "hair_duration": "1_to_5_years", "treatments_tried": ["minoxidil", "other"],
            "treatments_done": True, "option_leaning": "not_sure"}


@pytest.mark.asyncio
async def test_start_says_what_was_chosen_or_leaves_the_consent_to_the_form(runtime: Runtime, domain: dict) -> None:
    messages, events = await run(ActionDetailsStart(), tracker({}), domain)
    assert messages == [] and slots_of(events) == {}
    messages, _ = await run(ActionDetailsStart(), tracker({"checklist_consent": False}), domain)
    assert messages[0]["response"] == "utter_details_intro_not_kept"
    assert "They won't be kept for the clinic." in domain["responses"]["utter_details_intro_not_kept"][0]["text"]
    messages, events = await run(ActionDetailsStart(), tracker({"checklist_consent": True, **ANSWERED}), domain)
    assert messages[0]["response"] == "utter_details_intro_kept"
    assert all(slots_of(events)[s] is None for s in dt.RESET_SLOTS)  # a finished round starts again
    assert "checklist_consent" not in slots_of(events)


@pytest.mark.asyncio
async def test_result_with_consent_keeps_every_answer_in_the_record(runtime: Runtime, domain: dict) -> None:
    slots = {"checklist_consent": True, "check_pregnancy": "no", **ANSWERED}
    messages, _ = await run(ActionDetailsResult(runtime), tracker(slots, events=[compare("prp")]), domain)
    record = messages[0]["custom"]["record"]
    assert set(record) == RECORD_KEYS
    assert record["hair_pattern"] == "top" and record["hair_duration"] == "1_to_5_years"
    assert record["treatments_tried"] == ["minoxidil", "other"] and record["option_leaning"] == "not_sure"
    assert record["options_viewed"] == {"opened": ["prp"], "compared": []}
    assert record["check_pregnancy"] == "no" and record["check_age"] is None
    assert "I kept them with this chat" in messages[0]["text"]
    assert [b["payload"] for b in messages[0]["buttons"]][0] == "/get_summary"
    assert "/start_checklist" not in [b["payload"] for b in messages[0]["buttons"]]  # already begun


@pytest.mark.asyncio
async def test_result_without_consent_sends_only_deletions(runtime: Runtime, domain: dict) -> None:
    slots = {"checklist_consent": False, "check_pregnancy": "yes", **ANSWERED}
    messages, _ = await run(ActionDetailsResult(runtime), tracker(slots, events=[compare("prp")]), domain)
    record = messages[0]["custom"]["record"]
    assert set(record) == RECORD_KEYS and all(v is None for v in record.values())
    assert "not on the printable page" in messages[0]["text"]
    messages, _ = await run(ActionDetailsResult(runtime), tracker({**slots, "transcript_consent": "yes"}), domain)
    assert "This chat itself is kept" in messages[0]["text"]


@pytest.mark.asyncio
async def test_stop_pauses_and_keeps_only_with_consent(runtime: Runtime, domain: dict) -> None:
    slots = {"hair_pattern": "patches"}
    messages, events = await run(ActionDetailsStop(runtime), tracker({"checklist_consent": True, **slots},
                                                                     intent="stop_form", requested="hair_duration"), domain)
    assert messages[0]["custom"]["record"]["hair_pattern"] == "patches"
    assert slots_of(events)["paused_form"] == dt.FORM and '"continue"' in messages[0]["text"]
    messages, _ = await run(ActionDetailsStop(runtime), tracker({"checklist_consent": False, **slots},
                                                                intent="stop_form", requested="hair_duration"), domain)
    assert not messages[0].get("custom")
    assert "not kept any answers for the clinic" in messages[0]["text"]

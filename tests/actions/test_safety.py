"""The red-flag reply (utter_red_flag, built by bot.dialogue.red_flags) and its form pause
(action_red_flag), and action_decline_request, with the real built knowledge base."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import ActiveLoop, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.refusals import REFUSALS, ActionDeclineRequest
from contract.safety.limits import KINDS
from actions.safety import ActionRedFlag
from bot.dialogue.red_flags import red_flag_reply
from bot.kb.runtime import Runtime
from contract import urgent
from contract.levels import LEVELS
from eval import readability

PAUSABLE = ("checklist_form", "values_form", "readiness_form", "callback_form", "details_form")
# A number with a unit of amount or strength: what a dose looks like in any wording.
DOSE = re.compile(
    r"\d+(?:[.,]\d+)?\s*(?:mg|mcg|µg|ug|g\b|ml|millilit|milligram|microgram|%|percent|per cent|"
    r"iu\b|units?\b|drops?\b|tablets?\b|pills?\b|sprays?\b|cc\b)",
    re.IGNORECASE,
)


def with_clinic(runtime: Runtime, **changes) -> Runtime:
    return replace(runtime, kb=replace(runtime.kb, clinic=replace(runtime.kb.clinic, **changes)))


def red_flag_tracker(tracker_factory, level: str | None, intent: str | None = None,
                     flags: tuple[str, ...] = (), form: str | None = None) -> Tracker:
    """A tracker whose latest message carries the safety gate's summary (level and flags)."""
    tracker = tracker_factory("help", intent or f"red_flag_{level}", 1.0)
    tracker.latest_message["safety"] = {"source": "rules" if level else None, "level": level,
                                        "flags": list(flags)}
    if form:
        tracker.active_loop = {"name": form}
    return tracker


async def run_red_flag(runtime: Runtime, domain: dict, tracker: Tracker) -> tuple[list[dict], list]:
    """What a red flag sends, as the rules run it: the urgent reply (utter_red_flag, made in
    Rasa by bot/dialogue/nlg.py from red_flag_reply), then inside a form action_red_flag."""
    reply = red_flag_reply(domain["responses"], urgent.Contacts.of(runtime.kb.clinic), tracker.latest_message)
    messages = [{"text": reply["text"], "buttons": [], "custom": reply["custom"]}]
    if not tracker.active_loop_name:
        return messages, []
    dispatcher = CollectingDispatcher()
    events = await ActionRedFlag().run(dispatcher, tracker, domain)
    return messages + dispatcher.messages, events


def first_sentence(text: str) -> str:
    return re.split(r"(?<=[.!?])\s", text.strip(), maxsplit=1)[0]


# --- red flags ---------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("level", LEVELS)
async def test_one_message_with_the_level_and_flags_and_nothing_to_click(runtime, domain, tracker_factory, level):
    messages, events = await run_red_flag(runtime, domain,
                                          red_flag_tracker(tracker_factory, level, flags=("a_flag", "b_flag")))
    assert len(messages) == 1
    message = messages[0]
    assert not message["buttons"]
    assert message["custom"] == {"red_flag": {"level": level, "flags": ["a_flag", "b_flag"]}}
    assert events == []  # no form was active


@pytest.mark.asyncio
async def test_emergency_starts_with_the_default_emergency_numbers(runtime, domain, tracker_factory):
    runtime = with_clinic(runtime, emergency_number=None)
    messages, _ = await run_red_flag(runtime, domain, red_flag_tracker(tracker_factory, "emergency"))
    first = first_sentence(messages[0]["text"])
    assert first.startswith("Call")
    for number in ("999", "112", "911"):
        assert number in first


@pytest.mark.asyncio
async def test_the_clinics_emergency_number_replaces_the_default(runtime, domain, tracker_factory):
    runtime = with_clinic(runtime, emergency_number="000")
    for level in ("emergency", "crisis", "same_day"):
        messages, _ = await run_red_flag(runtime, domain, red_flag_tracker(tracker_factory, level))
        text = messages[0]["text"]
        assert "000" in text, level
        assert "999" not in text and "911" not in text, level
    messages, _ = await run_red_flag(runtime, domain, red_flag_tracker(tracker_factory, "emergency"))
    assert "000" in first_sentence(messages[0]["text"])


@pytest.mark.asyncio
async def test_crisis_starts_with_the_default_crisis_lines_and_names_the_emergency_number(runtime, domain,
                                                                                          tracker_factory):
    runtime = with_clinic(runtime, crisis_line=None, emergency_number=None)
    messages, _ = await run_red_flag(runtime, domain, red_flag_tracker(tracker_factory, "crisis"))
    text = messages[0]["text"]
    first = first_sentence(text)
    assert "Samaritans" in first and "116 123" in first and "988" in first
    assert "999" in text  # if in danger


@pytest.mark.asyncio
async def test_the_clinics_crisis_line_replaces_the_default(runtime, domain, tracker_factory):
    runtime = with_clinic(runtime, crisis_line="Lifeline on 13 11 14", emergency_number="000")
    messages, _ = await run_red_flag(runtime, domain, red_flag_tracker(tracker_factory, "crisis"))
    text = messages[0]["text"]
    assert "Lifeline on 13 11 14" in first_sentence(text)
    assert "Samaritans" not in text and "988" not in text
    assert "000" in text


@pytest.mark.asyncio
async def test_same_day_and_prompt_start_with_the_clinic_and_its_phone(runtime, domain, tracker_factory):
    runtime = with_clinic(runtime, phone="+44 20 1234 5678")
    for level, when in (("same_day", "today"), ("prompt", "soon")):
        messages, _ = await run_red_flag(runtime, domain, red_flag_tracker(tracker_factory, level))
        first = first_sentence(messages[0]["text"])
        assert runtime.kb.clinic.name in first and "+44 20 1234 5678" in first and when in first, level


@pytest.mark.asyncio
async def test_without_a_clinic_phone_the_clinic_is_still_named(runtime, domain, tracker_factory):
    runtime = with_clinic(runtime, phone=None)
    messages, _ = await run_red_flag(runtime, domain, red_flag_tracker(tracker_factory, "same_day"))
    first = first_sentence(messages[0]["text"])
    assert runtime.kb.clinic.name in first and " on " not in first and "None" not in first


@pytest.mark.asyncio
@pytest.mark.parametrize("level", ("emergency", "crisis", "same_day"))
async def test_urgent_replies_offer_no_booking_and_no_topics(runtime, domain, tracker_factory, level):
    messages, _ = await run_red_flag(runtime, domain, red_flag_tracker(tracker_factory, level))
    text = messages[0]["text"].lower()
    assert "book" not in text and "consultation" not in text and "price" not in text


@pytest.mark.asyncio
async def test_level_comes_from_the_safety_gate_before_the_intent(runtime, domain, tracker_factory):
    # The intent says same day; the gate, which found several flags, says emergency.
    tracker = red_flag_tracker(tracker_factory, "emergency", intent="red_flag_same_day", flags=("fever", "breathing"))
    messages, _ = await run_red_flag(runtime, domain, tracker)
    assert messages[0]["custom"]["red_flag"] == {"level": "emergency", "flags": ["fever", "breathing"]}
    assert "999" in first_sentence(messages[0]["text"])


@pytest.mark.asyncio
async def test_without_the_gate_the_intent_gives_the_level(runtime, domain, tracker_factory):
    tracker = red_flag_tracker(tracker_factory, None, intent="red_flag_prompt")
    messages, _ = await run_red_flag(runtime, domain, tracker)
    assert messages[0]["custom"] == {"red_flag": {"level": "prompt", "flags": []}}


@pytest.mark.asyncio
async def test_an_unknown_level_is_treated_as_an_emergency(runtime, domain, tracker_factory):
    tracker = red_flag_tracker(tracker_factory, None, intent="nlu_fallback")
    messages, _ = await run_red_flag(runtime, domain, tracker)
    assert messages[0]["custom"]["red_flag"]["level"] == "emergency"


@pytest.mark.asyncio
@pytest.mark.parametrize("form", PAUSABLE)
async def test_a_red_flag_pauses_the_form_and_remembers_it(runtime, domain, tracker_factory, form):
    messages, events = await run_red_flag(runtime, domain, red_flag_tracker(tracker_factory, "same_day", form=form))
    assert events == [ActiveLoop(None), SlotSet("requested_slot", None), SlotSet("paused_form", form)]
    assert '"continue"' in messages[-1]["text"]
    assert messages[0]["custom"]["red_flag"]["level"] == "same_day"


@pytest.mark.asyncio
@pytest.mark.parametrize("level", ("emergency", "crisis"))
async def test_after_an_emergency_or_crisis_nothing_is_said_about_the_form(runtime, domain, tracker_factory,
                                                                            level):
    plain, _ = await run_red_flag(runtime, domain, red_flag_tracker(tracker_factory, level))
    in_form, events = await run_red_flag(runtime, domain,
                                         red_flag_tracker(tracker_factory, level, form="checklist_form"))
    assert events[-1] == SlotSet("paused_form", "checklist_form")
    assert in_form == plain


@pytest.mark.asyncio
async def test_a_form_that_cannot_be_resumed_is_still_stopped(runtime, domain, tracker_factory):
    messages, events = await run_red_flag(runtime, domain,
                                          red_flag_tracker(tracker_factory, "prompt", form="some_other_form"))
    assert events == [ActiveLoop(None), SlotSet("requested_slot", None)]
    assert "continue" not in messages[0]["text"].lower()


def test_paused_form_values_are_the_forms_a_red_flag_can_pause(domain):
    assert set(domain["slots"]["paused_form"]["values"]) == set(PAUSABLE)


# --- declined requests ---------------------------------------------------------------------


async def run_decline(runtime: Runtime, domain: dict, tracker: Tracker) -> list[dict]:
    dispatcher = CollectingDispatcher()
    events = await ActionDeclineRequest(runtime).run(dispatcher, tracker, domain)
    assert events == []
    return dispatcher.messages


def test_every_declined_intent_has_a_reply_and_existing_entries(runtime, domain):
    assert set(REFUSALS) == {f"ask_{kind}" for kind in KINDS}
    assert {r.kind for r in REFUSALS.values()} == set(KINDS)
    for intent, refusal in REFUSALS.items():
        assert intent in domain["intents"]
        assert refusal.response in domain["responses"]
        missing = [e for e in refusal.entries if e not in runtime.kb.entries]
        assert not missing, (intent, missing)


@pytest.mark.asyncio
@pytest.mark.parametrize("intent", sorted(REFUSALS))
async def test_a_declined_request_gives_the_reason_who_to_ask_and_the_clinic(runtime, domain, tracker_factory,
                                                                            intent):
    messages = await run_decline(runtime, domain, tracker_factory("question", intent, 0.95))
    assert len(messages) == 1
    text = messages[0]["text"]
    assert re.match(r"(I can't|That's a different|I only cover)", text)
    if intent not in ("ask_writing", "ask_other_person", "ask_records"):
        assert re.search(r"\b(doctor|clinician|pharmacist|dermatologist)\b", text)
    clinic = runtime.kb.clinic
    # The clinic's contact follows where it helps (not after "write me a post").
    assert (clinic.name in text and clinic.phone in text) == REFUSALS[intent].contact
    assert messages[0]["custom"] == {"declined": REFUSALS[intent].kind}
    payloads = [b["payload"] for b in messages[0]["buttons"]]
    assert len(payloads) == len(REFUSALS[intent].entries)
    for payload in payloads:
        assert payload.startswith("/ask_") and '"entry"' in payload


@pytest.mark.asyncio
async def test_the_reason_fits_the_request(runtime, domain, tracker_factory):
    reasons = {
        "ask_diagnosis": "look at your scalp",
        "ask_dose": "depends on you",
        "ask_stop_medicine": "can be dangerous",
        "ask_self_injection": "infection",
        "ask_other_use": "fat, cellulite, the face",
        "ask_other_procedure": "different treatment",
        "ask_writing": "can't write posts",
        "ask_other_person": "every conversation is private",
        "ask_records": "can't see anyone's records",
    }
    for intent, reason in reasons.items():
        messages = await run_decline(runtime, domain, tracker_factory("question", intent, 0.95))
        assert reason in messages[0]["text"], intent


@pytest.mark.asyncio
async def test_no_declined_reply_gives_a_dose(runtime, domain, tracker_factory):
    # The templates hold no number at all; the sent messages (clinic facts included) no dose.
    for refusal in REFUSALS.values():
        for variant in domain["responses"][refusal.response]:
            assert not re.search(r"\d", variant["text"]), refusal.response
    for intent in REFUSALS:
        for text in ("how many mg should i take", "is 5% better", "how many ml"):
            messages = await run_decline(runtime, domain, tracker_factory(text, intent, 0.95))
            sent = messages[0]["text"] + " " + " ".join(b["title"] for b in messages[0]["buttons"])
            assert not DOSE.search(sent), (intent, DOSE.search(sent))


def test_the_dose_pattern_catches_doses_in_any_wording():
    for dose in ("5mg", "2.5 mg", "1 ml", "5%", "10,000 mcg", "2 tablets", "0.5ml", "5 percent"):
        assert DOSE.search(dose), dose
    assert not DOSE.search("Call +44 20 0000 0000 or 116 123")


# --- reading level -------------------------------------------------------------------------

SAFETY_RESPONSES = (
    [f"utter_red_flag_{level}" for level in LEVELS]
    + ["utter_red_flag_form_paused"]
    + [r.response for r in REFUSALS.values()]
    + ["utter_disclosure_who", "utter_disclosure_review", "utter_discuss_with_clinician"]
)


@pytest.mark.asyncio
async def test_safety_replies_read_at_or_below_grade_8(runtime, domain, tracker_factory):
    for level in LEVELS:
        messages, _ = await run_red_flag(runtime, domain, red_flag_tracker(tracker_factory, level))
        assert readability.grade(messages[0]["text"]) <= 8, level
    for intent in REFUSALS:
        messages = await run_decline(runtime, domain, tracker_factory("question", intent, 0.95))
        reason = messages[0]["text"].split("\n\n")[0]
        assert readability.grade(reason) <= 8, intent
    for name in SAFETY_RESPONSES:
        assert name in domain["responses"], name


# --- other languages ------------------------------------------------------------------------
@pytest.mark.asyncio
@pytest.mark.parametrize("level, start", [("emergency", "Appelez tout de suite"), ("crisis", "S'il vous plaît, appelez")])
async def test_an_urgent_reply_is_in_the_language_the_gate_identified(runtime, domain, tracker_factory, level, start):
    tracker = red_flag_tracker(tracker_factory, level)
    tracker.latest_message["safety"]["language"] = "fr"
    messages, _ = await run_red_flag(runtime, domain, tracker)
    text = messages[0]["text"]
    assert text.startswith(start)
    assert "999" in text and "Royaume-Uni" in text, "the default numbers, in French"
    assert messages[0]["custom"]["red_flag"]["level"] == level


@pytest.mark.asyncio
async def test_an_urgent_reply_in_another_language_keeps_the_clinics_own_number(runtime, domain, tracker_factory):
    tracker = red_flag_tracker(tracker_factory, "emergency")
    tracker.latest_message["safety"]["language"] = "es"
    messages, _ = await run_red_flag(with_clinic(runtime, emergency_number="112"), domain, tracker)
    assert messages[0]["text"].startswith("Llame ahora mismo a 112")


@pytest.mark.asyncio
async def test_a_language_without_replies_gets_the_english_urgent_reply(runtime, domain, tracker_factory):
    tracker = red_flag_tracker(tracker_factory, "emergency")
    tracker.latest_message["safety"]["language"] = "other"
    messages, _ = await run_red_flag(runtime, domain, tracker)
    assert messages[0]["text"].startswith("Call ")


@pytest.mark.asyncio
@pytest.mark.parametrize("language, words", [("fr", "qu'en anglais"), ("de", "Englisch"), ("ar", "الإنجليزية"),
                                             ("other", "only answer in English")])
async def test_another_language_gets_the_english_only_notice_in_it_with_the_clinics_contact(
        runtime, domain, tracker_factory, language, words):
    from actions.language import ActionOtherLanguage

    tracker = tracker_factory("bonjour", "other_language", 1.0)
    tracker.latest_message["safety"] = {"language": language}
    dispatcher = CollectingDispatcher()
    assert await ActionOtherLanguage(runtime).run(dispatcher, tracker, domain) == []
    [message] = dispatcher.messages
    assert words in message["text"]
    clinic = runtime.kb.clinic
    assert clinic.name in message["text"] and clinic.phone in message["text"] and clinic.email in message["text"]
    assert message["custom"] == {"language": language}


def test_every_supported_language_has_every_reply(domain):
    from bot.safety.languages import SUPPORTED

    for code in SUPPORTED:
        for name in ("utter_english_only", "utter_red_flag_emergency", "utter_red_flag_crisis",
                     "utter_emergency_number_default", "utter_crisis_line_default"):
            assert f"{name}_{code}" in domain["responses"], (name, code)
        for level in ("emergency", "crisis"):
            english = set(re.findall(r"\{(\w+)\}", domain["responses"][f"utter_red_flag_{level}"][0]["text"]))
            translated = set(re.findall(r"\{(\w+)\}", domain["responses"][f"utter_red_flag_{level}_{code}"][0]["text"]))
            assert translated == english & {"emergency", "crisis_line"}, (level, code)

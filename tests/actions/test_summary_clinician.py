"""The consultation summary a clinician can use (actions/summary.py, bot/dialogue/summary_parts.py):
what comes first, the answers given, what is kept for staff, and what it never says."""

from __future__ import annotations

import datetime as dt
import itertools
import re
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.summary import ActionConsultationSummary
from bot.dialogue import details
from bot.kb.decision import CHECKLIST_IDS, OPTION_IDS
from bot.kb.runtime import Runtime

NOW = dt.datetime(2026, 11, 29, 10, 15, tzinfo=dt.timezone.utc)

# A verdict about the person, in any of the usual wordings.
VERDICT = re.compile(
    r"\byou (?:should|must|ought to|need to) (?:not )?(?:have|get|go ahead|choose|pick|try|start|stop|avoid)\b"
    r"|\byou(?:'re| are) (?:not )?(?:a |an )?(?:good|suitable|ideal|great|perfect|poor|bad) (?:candidate|fit)"
    r"|\byou(?:'re| are) (?:not )?(?:suitable|eligible)\b|\b(?:suitable|eligible|safe|unsafe) for you\b"
    r"|\b(?:the )?(?:best|right) (?:option|treatment) for you\b|\b(?:I|we) recommend\b|\brecommended for you\b",
    re.IGNORECASE,
)
# A dose: an amount or strength of a medicine, or how often to take it.
DOSE = re.compile(
    r"\d+(?:[.,]\d+)?\s*(?:mg|mcg|µg|ug|ml|millilit\w*|milligram\w*|microgram\w*|iu|cc)\b"
    r"|\d+(?:[.,]\d+)?\s*(?:%|percent|per cent)\s*(?:minoxidil|finasteride|solution|foam|lotion|topical|strength)"
    r"|\b(?:once|twice|two times|three times)\s+(?:a|per|each)\s+(?:day|daily|week)\b|\b(?:once|twice) daily\b"
    r"|\bdaily dose\b|\bapply (?:it )?(?:once|twice)\b",
    re.IGNORECASE,
)

FIRST = "Raise these first"
HAIR = "About your hair loss"
OPTIONS = "The options you looked at"
OTHER = "Your other checklist answers"
VALUES = "What matters most to you"
SURE = "How ready you feel to decide"
ASKED = "What you asked about"
QUESTIONS = "Questions to ask the clinician"


def tracker(slots: dict[str, Any], events: list[dict[str, Any]] | None = None) -> Tracker:
    latest = {"text": "/get_summary", "intent": {"name": "get_summary", "confidence": 1.0}, "entities": []}
    return Tracker("test", dict(slots), latest, [*(events or []), {"event": "user", "parse_data": latest}],
                   False, None, {}, "action_listen")


def red_flag(level: str) -> dict[str, Any]:
    """The bot event of a red-flag reply, as Rasa stores it (the red_flag block)."""
    return {"event": "bot", "text": "Call now.", "data": {"custom": {"red_flag": {"level": level, "flags": ["x"]}}}}


def compare(choice: str) -> dict[str, Any]:
    return {"event": "user", "text": f'/compare_options{{"choice":"{choice}"}}',
            "parse_data": {"intent": {"name": "compare_options"}, "entities": [{"entity": "choice", "value": choice}]}}


def asked(entry_id: str, topic: str) -> dict[str, Any]:
    return {"event": "bot", "text": "An answer.", "data": {"custom": {"entry_id": entry_id, "topic": topic}}}


def headings(summary: dict[str, Any]) -> list[str]:
    return [s["heading"] for s in summary["sections"]]


def texts(summary: dict[str, Any], heading: str) -> list[str]:
    found = next((s for s in summary["sections"] if s["heading"] == heading), None)
    return [i["text"] for i in found["items"]] if found else []


async def summary_message(runtime: Runtime, domain: dict, slots: dict[str, Any],
                          events: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    dispatcher = CollectingDispatcher()
    await ActionConsultationSummary(runtime).run(dispatcher, tracker(slots, events), domain)
    return dispatcher.messages[0]


CHECKLIST = {f"check_{i}": "no" for i in CHECKLIST_IDS} | {
    "check_blood_thinners": "not_sure", "check_allergies": "yes", "check_age": "prefer_not_to_say"}
DETAILS = {"hair_pattern": "top", "hair_duration": "1_to_5_years", "treatments_tried": ["minoxidil", "supplements"],
           "treatments_done": True, "option_leaning": "nothing"}
OTHER_SLOTS = {"important_values": ["cost"], "sure_sure": "yes", "sure_informed": "no", "sure_values": "yes",
               "sure_support": "not_sure", "sure_result": "2 of 4"}
EVENTS = [asked("cost-course", "cost"), red_flag("prompt"), compare("prp"), compare("harms"), red_flag("same_day"),
          red_flag("crisis")]
FULL = {"checklist_consent": True, **CHECKLIST, **DETAILS, **OTHER_SLOTS}


# --- what comes first ------------------------------------------------------------------------

@pytest.mark.asyncio
async def test_a_clinician_reads_red_flags_and_yes_answers_first_then_the_hair_loss_options_and_the_rest(
        runtime: Runtime, domain: dict) -> None:
    summary = ActionConsultationSummary(runtime).build(tracker(FULL, EVENTS), domain, NOW)
    order = headings(summary)
    mine = [h for h in order if h in (FIRST, HAIR, OPTIONS, OTHER, VALUES, SURE, ASKED, QUESTIONS)]
    assert mine == [FIRST, HAIR, OPTIONS, OTHER, VALUES, SURE, ASKED, QUESTIONS]
    assert order[0] == FIRST and order[-1] == QUESTIONS

    decision = runtime.kb.decision
    # Red flags (most severe first, never a crisis), then yes, then not sure.
    assert texts(summary, FIRST) == [
        "In this chat, you described symptoms that need a clinician the same day.",
        "In this chat, you described symptoms to show a clinician soon.",
        f"{decision.item('allergies').title}: Yes",
        f"{decision.item('blood_thinners').title}: Not sure",
    ]
    assert texts(summary, HAIR) == ["Where: Thinning on top", "How long: 1 to 5 years",
                                    "Tried or using now: Minoxidil, Vitamins for hair"]
    assert texts(summary, OPTIONS) == ["Looked at one by one: PRP (platelet-rich plasma)",
                                       "Compared across all options: Harms and side effects",
                                       "You lean toward: No treatment"]
    other = texts(summary, OTHER)
    assert other[0] == f"{decision.item('pregnancy').title}: No"
    assert other[-1] == f"{decision.item('age').title}: Prefer not to say"
    assert len(other) == len(CHECKLIST_IDS) - 2
    questions = texts(summary, QUESTIONS)
    assert questions[:2] == [decision.item("blood_thinners").ask, decision.item("allergies").ask]
    assert "crisis" not in str(summary).lower()


@pytest.mark.asyncio
async def test_skipped_and_unanswered_questions_leave_no_line(runtime: Runtime, domain: dict) -> None:
    slots = {"checklist_consent": True, "hair_pattern": "prefer_not_to_say", "hair_duration": "not_sure",
             "treatments_tried": ["prefer_not_to_say"], "option_leaning": "prefer_not_to_say"}
    summary = ActionConsultationSummary(runtime).build(tracker(slots), domain, NOW)
    assert texts(summary, HAIR) == ["How long: Not sure"]
    assert OPTIONS not in headings(summary) and FIRST not in headings(summary)


@pytest.mark.asyncio
async def test_all_no_has_no_raise_first_section_and_keeps_the_plain_heading(runtime: Runtime, domain: dict) -> None:
    slots = {"checklist_consent": True, **{f"check_{i}": "no" for i in CHECKLIST_IDS}}
    summary = ActionConsultationSummary(runtime).build(tracker(slots), domain, NOW)
    assert headings(summary)[0] == "Your checklist answers"


# --- what is kept -----------------------------------------------------------------------------

@pytest.mark.asyncio
async def test_answers_not_kept_are_in_the_chat_but_never_in_the_stored_summary(runtime: Runtime, domain: dict) -> None:
    decision = runtime.kb.decision
    slots = {**FULL, "checklist_consent": False}
    message = await summary_message(runtime, domain, slots, EVENTS)
    stored = message["custom"]["summary"]
    stored_text = str(stored)
    # The stored document (printable page, staff): no answer, no question made from one.
    assert [h for h in headings(stored) if h in (FIRST, HAIR, OPTIONS, OTHER, "Your checklist answers")] == []
    for item in decision.checklist:
        assert f"{item.title}:" not in stored_text and item.ask not in stored_text
    for word in ("Thinning on top", "1 to 5 years", "Minoxidil, Vitamins for hair", "You lean toward", "Looked at one by one",
                 "In this chat, you described"):
        assert word not in stored_text
    # What may be kept without that consent is still there.
    assert VALUES in headings(stored) and SURE in headings(stored) and QUESTIONS in headings(stored)
    # The chat's own copy has every answer, marked as not kept.
    chat = message["text"]
    for line in ("RAISE THESE FIRST", f"- {decision.item('allergies').title}: Yes", "- Where: Thinning on top",
                 "- You lean toward: No treatment", f"- {decision.item('pregnancy').title}: No",
                 decision.item("allergies").ask, "In this chat, you described symptoms to show a clinician soon."):
        assert line in chat
    assert "You asked me not to keep these answers. So they are only in this chat, not on the printable page." in chat
    assert chat.rstrip().endswith("You asked me not to keep them, so they are not on the printable page.")


@pytest.mark.asyncio
async def test_with_consent_the_chat_and_the_stored_summary_agree(runtime: Runtime, domain: dict) -> None:
    message = await summary_message(runtime, domain, FULL, EVENTS)
    stored = message["custom"]["summary"]
    assert FIRST in headings(stored) and HAIR in headings(stored)
    assert "only in this chat" not in message["text"]
    for section in stored["sections"]:
        assert section["heading"].upper() in message["text"]
        assert all(item["text"] in message["text"] for item in section["items"])


@pytest.mark.asyncio
@pytest.mark.parametrize(("consent", "transcript", "stored"), [
    (True, "no", True), (None, "yes", True), (False, "yes", True), (None, "no", False), (False, "no", False)])
async def test_red_flags_are_stored_only_where_the_patient_agreed_to_keep_something(
        runtime: Runtime, domain: dict, consent: bool | None, transcript: str, stored: bool) -> None:
    slots = {"checklist_consent": consent, "transcript_consent": transcript}
    message = await summary_message(runtime, domain, slots, [red_flag("emergency")])
    line = "In this chat, you described symptoms that need emergency help."
    assert (line in str(message["custom"]["summary"])) is stored
    assert line in message["text"]  # the person always gets it in the chat


# --- every variant: no verdict, no dose, the API's shape ----------------------------------------

def _variants(runtime: Runtime, domain: dict) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    decision = runtime.kb.decision
    every_entry = [asked(e.id, e.topic) for e in runtime.kb.entries.values()]
    views = [compare(o) for o in OPTION_IDS] + [compare("cost"), compare("evidence")]
    flags = [red_flag(level) for level in ("emergency", "same_day", "prompt", "crisis")]
    out: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    for consent, transcript, answer in itertools.product((True, False, None), ("yes", "no"),
                                                         ("yes", "no", "not_sure", "prefer_not_to_say")):
        slots = {"checklist_consent": consent, "transcript_consent": transcript,
                 **{f"check_{i}": answer for i in CHECKLIST_IDS}, **DETAILS,
                 "important_values": [v.id for v in decision.values][:3],
                 **{s: answer if answer != "prefer_not_to_say" else "no"
                    for s in ("sure_sure", "sure_informed", "sure_values", "sure_support")}}
        out.append((slots, every_entry + views + flags))
    for slot in (details.PATTERN, details.DURATION, details.LEANING):
        for value in details.slot_choices(domain, decision, slot):
            out.append(({"checklist_consent": True, slot: value}, []))
    for value in details.slot_choices(domain, decision, details.TREATMENTS):
        out.append(({"checklist_consent": True, "treatments_tried": [value]}, views))
    for value in decision.values:
        out.append(({"important_values": [value.id]}, []))
    return out


@pytest.mark.asyncio
async def test_no_summary_variant_gives_a_verdict_or_a_dose(runtime: Runtime, domain: dict) -> None:
    action = ActionConsultationSummary(runtime)
    variants = _variants(runtime, domain)
    assert len(variants) > 50
    for slots, events in variants:
        dispatcher = CollectingDispatcher()
        await action.run(dispatcher, tracker(slots, events), domain)
        message = dispatcher.messages[0]
        stored = message["custom"]["summary"]
        chat = action.build(tracker(slots, events), domain, NOW, for_chat=True)
        for text in (message["text"], str(stored), str(chat)):
            assert not VERDICT.search(text), (slots, VERDICT.search(text))
            assert not DOSE.search(text), (slots, DOSE.search(text))
        # The stored document stays within the API's limits.
        assert len(stored["sections"]) <= 50
        assert all(1 <= len(i["text"]) <= 4000 for s in stored["sections"] for i in s["items"])
        assert all(sid in runtime.kb.sources for s in stored["sections"] for i in s["items"] for sid in i["sources"])


def test_the_scans_catch_what_they_are_for() -> None:
    for verdict in ("You should have it.", "you are a good candidate", "It is safe for you.",
                    "the best option for you is PRP", "We recommend mesotherapy"):
        assert VERDICT.search(verdict), verdict
    for dose in ("a 5% minoxidil solution", "1 mg a day", "2 ml per session", "twice daily", "once a day",
                 "apply it twice"):
        assert DOSE.search(dose), dose
    for fine in ("88 out of 100 people", "The source's own figure: 88%", "$250 to $400 per session",
                 "Sure about the best choice for you", "Questions to ask the clinician"):
        assert not VERDICT.search(fine) and not DOSE.search(fine), fine

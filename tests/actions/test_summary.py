"""action_consultation_summary (actions/summary.py) with the real knowledge base."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.summary import ActionConsultationSummary
from bot.kb.runtime import Runtime
from contract import payloads

NOW = dt.datetime(2026, 11, 29, 10, 15, tzinfo=dt.timezone.utc)


def tracker(slots: dict[str, Any] | None = None, events: list[dict[str, Any]] | None = None) -> Tracker:
    latest = {"text": "summary please", "intent": {"name": "get_summary", "confidence": 1.0}, "entities": []}
    return Tracker("test", dict(slots or {}), latest, [*(events or []), {"event": "user", "parse_data": latest}],
                   False, None, {}, "action_listen")


def answered(entry_id: str, topic: str) -> dict[str, Any]:
    """A bot event as Rasa stores an answer from the knowledge base."""
    return {"event": "bot", "text": "An answer.",
            "data": {"buttons": None, "custom": {"entry_id": entry_id, "topic": topic, "sources": []}}}


def section(summary: dict[str, Any], heading_start: str) -> dict[str, Any] | None:
    return next((s for s in summary["sections"] if s["heading"].startswith(heading_start)), None)


def assert_api_shape(summary: dict[str, Any], kb: Any) -> None:
    """The limits of api/schemas.py Summary (the bot runtime cannot import the API's pydantic 2)."""
    assert set(summary) == {"title", "generated_at", "sections", "footer"}
    assert 1 <= len(summary["title"]) <= 200
    assert dt.datetime.fromisoformat(summary["generated_at"].replace("Z", "+00:00")).tzinfo is not None
    assert len(summary["sections"]) <= 50
    assert summary["footer"] is None or len(summary["footer"]) <= 4000
    for sec in summary["sections"]:
        assert set(sec) == {"heading", "intro", "items"}
        assert 1 <= len(sec["heading"]) <= 200
        assert sec["intro"] is None or len(sec["intro"]) <= 4000
        assert len(sec["items"]) <= 100
        for item in sec["items"]:
            assert set(item) in ({"text", "sources"}, {"text", "sources", "figures"})
            assert 1 <= len(item["text"]) <= 4000
            assert 1 <= len(item.get("figures", [None])) <= 10
            for figure in item.get("figures", []):  # api/schemas.py SummaryFigure
                assert isinstance(figure["per_100"], int) and 0 <= figure["per_100"] <= 100
                assert 1 <= len(figure["label"]) <= 300 and 1 <= len(figure["alt"]) <= 1000
                assert 1 <= len(figure["text"]) <= 2000
            assert len(item["sources"]) <= 20
            assert all(isinstance(s, str) and s in kb.sources for s in item["sources"])


FULL_SLOTS = {
    "checklist_consent": True, "check_pregnancy": "no", "check_blood_thinners": "yes",
    "check_allergies": "not_sure", "check_age": "prefer_not_to_say",
    "important_values": ["cost", "evidence"],
    "sure_sure": "yes", "sure_informed": "no", "sure_values": "yes", "sure_support": "not_sure",
    "sure_result": "2 of 4",
}


@pytest.mark.asyncio
async def test_summary_has_every_section_in_the_shape_the_api_accepts(runtime: Runtime, domain: dict) -> None:
    kb = runtime.kb
    events = [answered("cost-course", "cost"), {"event": "slot", "name": "last_entry", "value": "cost-course"},
              answered("pain-does-it-hurt", "pain"), answered("cost-course", "cost")]
    dispatcher = CollectingDispatcher()
    await ActionConsultationSummary(runtime).run(dispatcher, tracker(FULL_SLOTS, events), domain)
    [message] = dispatcher.messages
    summary = message["custom"]["summary"]
    assert_api_shape(summary, kb)

    asked = section(summary, "What you asked")
    assert [i["text"] for i in asked["items"]] == [kb.entries["cost-course"].title, kb.entries["pain-does-it-hurt"].title]
    assert asked["items"][0]["sources"] == list(kb.entries["cost-course"].sources)

    decision = kb.decision
    # Flagged first: yes, then not sure; the other answers after the clinician's sections.
    first = [i["text"] for i in section(summary, "Raise these first")["items"]]
    assert first == [f"{decision.item('blood_thinners').title}: Yes", f"{decision.item('allergies').title}: Not sure"]
    others = [i["text"] for i in section(summary, "Your other checklist answers")["items"]]
    assert others == [f"{decision.item('pregnancy').title}: No", f"{decision.item('age').title}: Prefer not to say"]

    values = [i["text"] for i in section(summary, "What matters")["items"]]
    assert values == [decision.value("cost").title, decision.value("evidence").title]

    sure = section(summary, "How ready")
    assert "2 of 4" in sure["intro"] and len(sure["items"]) == 4

    questions = [i["text"] for i in section(summary, "Questions")["items"]]
    assert questions[0] == decision.item("blood_thinners").ask
    assert decision.item("allergies").ask in questions
    assert decision.item("pregnancy").ask not in questions  # answered no
    assert decision.item("age").ask not in questions  # prefer not to say: not turned into a question
    for value in ("cost", "evidence"):
        assert all(q.text in questions for q in decision.value_questions(value))
    assert all(q.text not in questions for q in decision.value_questions("needles_pain"))
    assert all(q.text in questions for q in decision.general_questions())
    assert len(questions) == len(set(questions))

    assert "not medical advice" in summary["footer"]
    # The chat gets the same in plain text, and is told about the printable page.
    text = message["text"]
    for sec in summary["sections"]:
        assert sec["heading"].upper() in text
        assert all(item["text"] in text for item in sec["items"])
    assert "print" in text
    assert {s["id"] for s in message["custom"]["sources"]} <= set(kb.sources)


@pytest.mark.asyncio
async def test_checklist_answers_only_with_consent(runtime: Runtime, domain: dict) -> None:
    slots = {**FULL_SLOTS, "checklist_consent": False}
    summary = ActionConsultationSummary(runtime).build(tracker(slots), domain, NOW)
    assert section(summary, "Your checklist") is None and section(summary, "Raise these first") is None
    text = str(summary)
    assert runtime.kb.decision.item("blood_thinners").ask not in text
    titles = tuple(item.title for item in runtime.kb.decision.checklist)
    assert not [i for s in summary["sections"] for i in s["items"] if i["text"].startswith(titles)]


@pytest.mark.asyncio
async def test_an_empty_conversation_still_gets_general_questions_and_the_footer(runtime: Runtime, domain: dict) -> None:
    summary = ActionConsultationSummary(runtime).build(tracker(), domain, NOW)
    assert_api_shape(summary, runtime.kb)
    assert [s["heading"] for s in summary["sections"]] == ["Questions to ask the clinician"]
    assert summary["generated_at"] == "2026-11-29T10:15:00Z"
    assert runtime.kb.clinic.name in summary["footer"]


@pytest.mark.asyncio
async def test_unknown_values_and_entries_are_ignored(runtime: Runtime, domain: dict) -> None:
    slots = {"important_values": ["cost", "free lunch"], "sure_sure": "maybe"}
    events = [answered("no-such-entry", "cost"), {"event": "slot", "name": "last_entry", "value": "pain-does-it-hurt"}]
    summary = ActionConsultationSummary(runtime).build(tracker(slots, events), domain, NOW)
    assert [i["text"] for i in section(summary, "What matters")["items"]] == [runtime.kb.decision.value("cost").title]
    assert [i["text"] for i in section(summary, "What you asked")["items"]] == [runtime.kb.entries["pain-does-it-hurt"].title]
    assert section(summary, "How ready") is None


@pytest.mark.asyncio
async def test_all_four_sure_yes_does_not_suggest_more_support(runtime: Runtime, domain: dict) -> None:
    slots = {s: "yes" for s in ("sure_sure", "sure_informed", "sure_values", "sure_support")}
    summary = ActionConsultationSummary(runtime).build(tracker(slots), domain, NOW)
    intro = section(summary, "How ready")["intro"]
    assert "4 of 4" in intro and "Fewer than four" not in intro


def shown_option(option_id: str, dimension: str) -> dict[str, Any]:
    """A bot event as Rasa stores one cell of the options side by side."""
    return {"event": "bot", "text": "A cell.", "data": {"buttons": None, "custom": {
        "decision": {"option": option_id, "dimension": dimension, "silent": False}, "sources": []}}}


@pytest.mark.asyncio
async def test_numbers_out_of_100_come_with_their_icon_arrays_and_in_words(runtime: Runtime, domain: dict) -> None:
    kb = runtime.kb
    events = [answered("side-effects-minoxidil-trial", "side_effects"), shown_option("mesotherapy", "harms")]
    dispatcher = CollectingDispatcher()
    await ActionConsultationSummary(runtime).run(dispatcher, tracker({}, events), domain)
    [message] = [m for m in dispatcher.messages if (m.get("custom") or {}).get("summary")]
    summary = message["custom"]["summary"]
    assert_api_shape(summary, kb)
    assert payloads.check_custom(message["custom"])[1] == [], "within the contract both runtimes check"

    [asked] = section(summary, "What you asked")["items"]
    [redness] = asked["figures"]
    assert redness["per_100"] == 88
    assert redness["alt"] == "88 out of 100 men who had mesotherapy in one trial: red skin for a few hours after a visit."
    for words in ("88%", "Group size: 25 people", "Time: 8 weekly visits", "How sure:"):
        assert words in redness["text"], words

    numbers = section(summary, "Numbers from the options")
    assert [i["text"] for i in numbers["items"]] == ["Mesotherapy: How it can help", "Mesotherapy: Harms and side effects"]
    assert [[f["per_100"] for f in i["figures"]] for i in numbers["items"]] == [[93, 7], [88]]
    assert numbers["items"][0]["sources"] == ["critical-review"]

    # The chat's plain text states every number in words, under its point.
    text = message["text"]
    for item in (asked, *numbers["items"]):
        for figure in item["figures"]:
            assert f"- {item['text']}" in text and "  " + figure["text"] in text


@pytest.mark.asyncio
async def test_no_option_numbers_when_the_options_were_not_compared(runtime: Runtime, domain: dict) -> None:
    dispatcher = CollectingDispatcher()
    await ActionConsultationSummary(runtime).run(
        dispatcher, tracker({}, [answered("cost-course", "cost")]), domain)
    summary = next(m for m in dispatcher.messages if (m.get("custom") or {}).get("summary"))["custom"]["summary"]
    assert section(summary, "Numbers from the options") is None
    assert "out of 100" not in str(summary)

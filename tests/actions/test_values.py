"""What matters most: values_form's questions, its answers, and the reflection (actions/values.py)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions.values import (
    MAX_VALUES, ActionAskValuesDone, ActionReflectValues, ActionResetValues, ValidateValuesForm,
)
from bot.dialogue.decision import match_ordinal, match_values

ADVICE = re.compile(r"\b(?:recommend\w*|you should|we suggest|best (?:option|choice) for you|"
                    r"go for|the winner|top choice|ranks? (?:first|highest))\b", re.I)


def _form_tracker(tracker_factory, text: str, intent: str, picked: list[str] | None = None,
                  choice: str | None = None, paused: str | None = None):
    entities = [{"entity": "choice", "value": choice}] if choice else []
    slots: dict[str, Any] = {"requested_slot": "values_done", "important_values": picked, "paused_form": paused}
    return tracker_factory(text, intent, 0.9, entities=entities, slots=slots)


async def _validate(runtime, domain, tracker) -> tuple[dict[str, Any], list[dict]]:
    dispatcher = CollectingDispatcher()
    events = await ValidateValuesForm(runtime).run(dispatcher, tracker, domain)
    return {e["name"]: e["value"] for e in events if e["event"] == "slot"}, dispatcher.messages


# --- matching typed words ------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("cost matters most", ["cost"]),
    ("i hate needles", ["needles_pain"]),
    ("the money side", ["cost"]),
    ("quick results matter most", ["speed"]),
    ("fewer visits", ["time_commitment"]),
    ("Side effects worry me most", ["side_effects"]),
    ("whether it's proven", ["evidence"]),
    ("evidence then safety", ["evidence", "side_effects"]),
    ("safety first, then the price", ["side_effects", "cost"]),
    ("i don't care about cost, needles matter most", ["needles_pain"]),
    ("cost isn't important but safety is", ["side_effects"]),
    ("the weather", []),
])
def test_typed_words_map_to_values_in_the_order_written(runtime, text, expected):
    assert match_values(text, runtime.kb.decision.values) == expected


def test_every_value_is_found_by_its_own_title(runtime):
    for value in runtime.kb.decision.values:
        assert match_values(value.title, runtime.kb.decision.values)[:1] == [value.id], value.title


def test_ordinals_pick_from_the_buttons_shown():
    shown = ["cost", "speed", "evidence"]
    assert match_ordinal("the second one", shown) == "speed"
    assert match_ordinal("3", shown) == "evidence"
    assert match_ordinal("option 5", shown) is None
    assert match_ordinal("second thoughts about it", shown) is None


# --- the form's answers ----------------------------------------------------------------------

@pytest.mark.asyncio
async def test_a_button_adds_its_value(runtime, domain, tracker_factory):
    slots, _ = await _validate(runtime, domain, _form_tracker(
        tracker_factory, '/choose{"choice":"cost"}', "choose", choice="cost"))
    assert slots == {"important_values": ["cost"], "values_done": None}


@pytest.mark.asyncio
async def test_typed_words_add_values_after_those_picked(runtime, domain, tracker_factory):
    slots, _ = await _validate(runtime, domain, _form_tracker(
        tracker_factory, "i hate needles", "ask_pain", picked=["evidence"]))
    assert slots == {"important_values": ["evidence", "needles_pain"], "values_done": None}


@pytest.mark.asyncio
async def test_a_value_picked_twice_is_kept_once(runtime, domain, tracker_factory):
    slots, _ = await _validate(runtime, domain, _form_tracker(
        tracker_factory, '/choose{"choice":"cost"}', "choose", picked=["cost"], choice="cost"))
    assert slots["important_values"] == ["cost"] and slots["values_done"] is None


@pytest.mark.asyncio
async def test_the_third_value_ends_the_step_and_no_more_are_kept(runtime, domain, tracker_factory):
    slots, _ = await _validate(runtime, domain, _form_tracker(
        tracker_factory, "speed and safety", "choose", picked=["cost", "evidence"]))
    assert slots == {"important_values": ["cost", "evidence", "speed"], "values_done": True}
    assert MAX_VALUES == 3


@pytest.mark.asyncio
@pytest.mark.parametrize("text, intent", [("/deny", "deny"), ("that's all", "goodbye"),
                                          ("nothing else", "nlu_fallback"), ("no thats it", "deny")])
async def test_thats_all_ends_the_step_with_what_was_picked(runtime, domain, tracker_factory, text, intent):
    slots, _ = await _validate(runtime, domain, _form_tracker(tracker_factory, text, intent, picked=["speed"]))
    assert slots == {"important_values": ["speed"], "values_done": True}


@pytest.mark.asyncio
@pytest.mark.parametrize("text, intent", [
    ("stop", "stop_form"), ("i want to change my answer", "change_answer"),
    ("my lips are swelling and i hate needles", "red_flag_emergency"),
    ("i want to hurt myself", "red_flag_crisis"),
    ("what does it cost?", "ask_cost"), ("how much does it hurt", "ask_pain"),
    ("can someone call me", "request_callback"),
])
async def test_interruptions_and_questions_are_not_taken_as_answers(runtime, domain, tracker_factory, text, intent):
    """Nothing extracted: the form is rejected and the intent's own rule answers."""
    slots, messages = await _validate(runtime, domain, _form_tracker(tracker_factory, text, intent, picked=["cost"]))
    assert slots == {} and messages == []


@pytest.mark.asyncio
async def test_an_unclear_answer_asks_again_without_losing_picks(runtime, domain, tracker_factory):
    slots, messages = await _validate(runtime, domain, _form_tracker(
        tracker_factory, "hmm the purple one", "choose", picked=["cost"]))
    assert slots == {"important_values": ["cost"], "values_done": None}
    assert "didn't catch" in messages[0]["text"]


@pytest.mark.asyncio
async def test_nothing_is_read_when_the_form_is_not_asking(runtime, domain, tracker_factory):
    tracker = tracker_factory("cost matters most", "choose", slots={"requested_slot": None})
    slots, _ = await _validate(runtime, domain, tracker)
    assert slots == {}


@pytest.mark.asyncio
async def test_resuming_after_a_red_flag_ends_the_pause(runtime, domain, tracker_factory):
    tracker = tracker_factory("continue", "continue_form", slots={"paused_form": "values_form",
                                                                  "important_values": ["cost"]})
    slots, _ = await _validate(runtime, domain, tracker)
    assert slots == {"paused_form": None}
    other = tracker_factory("continue", "continue_form", slots={"paused_form": "checklist_form"})
    assert (await _validate(runtime, domain, other))[0] == {}


@pytest.mark.asyncio
async def test_reset_clears_the_step(tracker_factory, domain):
    events = await ActionResetValues().run(CollectingDispatcher(), tracker_factory("/explore_values", "explore_values"),
                                           domain)
    assert {e["name"]: e["value"] for e in events} == {"important_values": None, "values_done": None}


# --- the question ------------------------------------------------------------------------------

@pytest.mark.asyncio
async def test_first_question_offers_every_value(runtime, domain, tracker_factory):
    dispatcher = CollectingDispatcher()
    await ActionAskValuesDone(runtime).run(dispatcher, tracker_factory("/explore_values", "explore_values"), domain)
    [message] = dispatcher.messages
    assert [b["payload"] for b in message["buttons"]] == [
        '/choose{"choice":"%s"}' % v.id for v in runtime.kb.decision.values]
    assert "matters most" in message["text"]


@pytest.mark.asyncio
async def test_next_question_leaves_out_what_was_picked_and_offers_thats_all(runtime, domain, tracker_factory):
    dispatcher = CollectingDispatcher()
    tracker = tracker_factory("cost", "choose", slots={"important_values": ["cost", "speed"]})
    await ActionAskValuesDone(runtime).run(dispatcher, tracker, domain)
    [message] = dispatcher.messages
    payloads = [b["payload"] for b in message["buttons"]]
    assert '/choose{"choice":"cost"}' not in payloads and '/choose{"choice":"speed"}' not in payloads
    assert payloads[-1] == "/deny" and len(payloads) == len(runtime.kb.decision.values) - 2 + 1
    assert "Cost, How fast it works" in message["text"]


# --- the reflection ------------------------------------------------------------------------------

@pytest.mark.asyncio
async def test_reflection_shows_each_value_against_every_option_without_ranking(runtime, domain, tracker_factory):
    aid = runtime.kb.decision
    picked = ["side_effects", "cost", "needles_pain"]
    dispatcher = CollectingDispatcher()
    events = await ActionReflectValues(runtime).run(
        dispatcher, tracker_factory("/deny", "deny", slots={"important_values": picked}), domain)
    assert events == [{"event": "slot", "timestamp": None, "name": "important_values", "value": picked}]
    per_value = [m for m in dispatcher.messages if (m.get("custom") or {}).get("decision", {}).get("value")]
    assert [m["custom"]["decision"]["value"] for m in per_value] == picked
    for rank, (message, value_id) in enumerate(zip(per_value, picked), start=1):
        value = aid.value(value_id)
        text = message["text"]
        assert value.title in text and str(rank) in text.split(":")[0]
        # every option, once, in the fixed order of the knowledge (never sorted by the value)
        positions = [text.index(f"\n\n{o.title}: ") for o in aid.options]
        assert positions == sorted(positions)
        for option in aid.options:
            cell = option.cells[value.dimension]
            assert (cell.text or "Our sources don't say anything about this.") in text
        cited = {s["id"] for s in message["custom"]["sources"]}
        assert cited == {s for o in aid.options for s in o.cells[value.dimension].sources}
    glue = [m["text"] for m in dispatcher.messages if m not in per_value]
    assert any("not a ranking" in t for t in glue)
    assert not [t for t in (m["text"] for m in dispatcher.messages) if ADVICE.search(t)]
    payloads = [b["payload"] for b in dispatcher.messages[-1]["buttons"]]
    assert "/explore_values" in payloads and "/check_readiness" in payloads and "/get_summary" in payloads


@pytest.mark.asyncio
async def test_reflection_with_nothing_picked_says_so(runtime, domain, tracker_factory):
    dispatcher = CollectingDispatcher()
    events = await ActionReflectValues(runtime).run(
        dispatcher, tracker_factory("/deny", "deny", slots={"important_values": []}), domain)
    assert len(dispatcher.messages) == 1 and "didn't pick" in dispatcher.messages[0]["text"]
    assert events[0]["value"] == []


@pytest.mark.asyncio
async def test_reflection_reads_at_or_below_grade_8(runtime, domain, tracker_factory):
    textstat = pytest.importorskip("textstat")
    ids = [v.id for v in runtime.kb.decision.values]
    texts = []
    for picked in (ids[:3], ids[3:]):
        dispatcher = CollectingDispatcher()
        await ActionReflectValues(runtime).run(dispatcher, tracker_factory("/deny", "deny",
                                                                        slots={"important_values": picked}), domain)
        texts += [m["text"] for m in dispatcher.messages]
    grades = {t[:60]: textstat.flesch_kincaid_grade(" ".join(t.split())) for t in texts}
    assert {t: g for t, g in grades.items() if g > 8} == {}


@pytest.mark.asyncio
async def test_side_effects_reflection_gives_the_counted_harm_out_of_100(runtime, domain, tracker_factory):
    dispatcher = CollectingDispatcher()
    await ActionReflectValues(runtime).run(
        dispatcher, tracker_factory("/deny", "deny", slots={"important_values": ["side_effects"]}), domain)
    [message] = [m for m in dispatcher.messages if (m.get("custom") or {}).get("decision", {}).get("value")]
    assert "88 out of 100 men who had mesotherapy in one trial" in message["text"]
    assert "Group size: 25 people" in message["text"] and "How sure:" in message["text"]
    assert "none of our sources count this out of 100 people" in message["text"]
    assert [f["per_100"] for f in message["custom"]["figures"]] == [88]

"""The decision menu and the options side by side (actions/decision.py, actions/options.py)."""

from __future__ import annotations

import json
import re

import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions.decision import ActionDecisionMenu
from actions.options import ActionCompareOptions
from bot.kb.decision import OPTION_DIMENSIONS, OPTION_IDS
from contract import payloads

# Words that would tell the person what to pick, or rank the options for them.
ADVICE = re.compile(r"\b(?:recommend\w*|you should|we suggest|best (?:option|choice) for you|"
                    r"right (?:option|choice) for you is|go for|choose \w+ because)\b", re.I)


def _choice(tracker_factory, value: str):
    payload = '/compare_options{"choice":"%s"}' % value
    return tracker_factory(payload, "compare_options", 1.0, entities=[{"entity": "choice", "value": value}])


async def _run(action, tracker, domain) -> list[dict]:
    dispatcher = CollectingDispatcher()
    await action.run(dispatcher, tracker, domain)
    return dispatcher.messages


def _payload_choice(payload: str) -> str | None:
    match = re.fullmatch(r"/compare_options(\{.*\})?", payload)
    assert match, payload
    return json.loads(match.group(1))["choice"] if match.group(1) else None


# --- the menu ------------------------------------------------------------------------------

@pytest.mark.asyncio
async def test_menu_states_the_decision_declines_to_choose_and_offers_every_step(runtime, domain, tracker_factory):
    [message] = await _run(ActionDecisionMenu(runtime), tracker_factory("help me decide", "decision_help"), domain)
    text = message["text"]
    assert "mesotherapy" in text and "do nothing" in text and "another option" in text
    assert "can't tell you what to choose" in text
    assert runtime.kb.clinic.name in text and "offers mesotherapy" in text, "the clinic's interest is disclosed"
    assert "{" not in text
    payloads = [b["payload"] for b in message["buttons"]]
    assert payloads == ["/start_checklist", "/describe_hair_loss", "/compare_options", "/explore_values",
                        "/check_readiness", "/estimate_cost", "/get_summary", "/request_callback"]
    assert all(b["title"].strip() for b in message["buttons"])


# --- options side by side --------------------------------------------------------------------

@pytest.mark.asyncio
async def test_overview_names_all_five_options_and_offers_each_point_and_option(runtime, domain, tracker_factory):
    [message] = await _run(ActionCompareOptions(runtime), tracker_factory("compare the options", "compare_options"),
                           domain)
    aid = runtime.kb.decision
    for option in aid.options:
        assert option.title in message["text"]
    assert "say nothing" in message["text"]
    choices = [_payload_choice(b["payload"]) for b in message["buttons"]]
    assert choices == list(OPTION_DIMENSIONS) + list(OPTION_IDS)


@pytest.mark.asyncio
@pytest.mark.parametrize("dimension", OPTION_DIMENSIONS)
async def test_each_point_shows_every_option_once_in_the_same_order_with_its_sources(
        runtime, domain, tracker_factory, dimension):
    messages = await _run(ActionCompareOptions(runtime), _choice(tracker_factory, dimension), domain)
    aid = runtime.kb.decision
    cells = [m for m in messages if (m.get("custom") or {}).get("decision", {}).get("dimension") == dimension]
    assert [m["custom"]["decision"]["option"] for m in cells] == [o.id for o in aid.options]
    for message, option in zip(cells, aid.options):
        cell = option.cells[dimension]
        assert message["text"].startswith(option.title + ": ")
        if cell.text is None:
            assert message["text"].endswith("Our sources don't say anything about this.")
            assert message["custom"]["sources"] == [] and message["custom"]["decision"]["silent"] is True
        else:
            assert cell.text in message["text"]
            assert [s["id"] for s in message["custom"]["sources"]] == list(cell.sources)
            assert all(s["title"] for s in message["custom"]["sources"])
    # a heading first (with the review date), the next steps last
    assert runtime.kb.decision.reviewed[:4] in messages[0]["text"]
    assert messages[-1]["buttons"] and not ADVICE.search(messages[-1]["text"])
    shown = [_payload_choice(b["payload"]) for b in messages[-1]["buttons"] if b["payload"].startswith("/compare")]
    assert dimension not in shown and set(OPTION_IDS) <= set(shown)


@pytest.mark.asyncio
@pytest.mark.parametrize("option_id", OPTION_IDS)
async def test_each_option_in_full_gets_every_point(runtime, domain, tracker_factory, option_id):
    messages = await _run(ActionCompareOptions(runtime), _choice(tracker_factory, option_id), domain)
    option = runtime.kb.decision.option(option_id)
    cells = [m for m in messages if (m.get("custom") or {}).get("decision", {}).get("option") == option_id]
    assert [m["custom"]["decision"]["dimension"] for m in cells] == list(OPTION_DIMENSIONS)
    silent = [d for d in OPTION_DIMENSIONS if option.cells[d].text is None]
    assert [m["custom"]["decision"]["dimension"] for m in cells if m["custom"]["decision"]["silent"]] == silent
    assert option.title in messages[0]["text"]


@pytest.mark.asyncio
async def test_silent_cells_are_said_plainly(runtime, domain, tracker_factory):
    """The shipped knowledge has gaps (PRP's harms); each one is stated, not skipped."""
    aid = runtime.kb.decision
    gaps = [(o.id, d) for o in aid.options for d in OPTION_DIMENSIONS if o.cells[d].text is None]
    assert ("prp", "harms") in gaps
    messages = await _run(ActionCompareOptions(runtime), _choice(tracker_factory, "harms"), domain)
    prp = next(m for m in messages if (m.get("custom") or {}).get("decision", {}).get("option") == "prp")
    assert "don't say" in prp["text"]


@pytest.mark.asyncio
async def test_unknown_choice_falls_back_to_the_overview(runtime, domain, tracker_factory):
    messages = await _run(ActionCompareOptions(runtime), _choice(tracker_factory, "taste"), domain)
    assert len(messages) == 1 and len(messages[0]["buttons"]) == len(OPTION_DIMENSIONS) + len(OPTION_IDS)


@pytest.mark.asyncio
async def test_no_message_tells_the_person_what_to_choose(runtime, domain, tracker_factory):
    texts = []
    for choice in (None, *OPTION_DIMENSIONS, *OPTION_IDS):
        tracker = _choice(tracker_factory, choice) if choice else tracker_factory("compare", "compare_options")
        texts += [m["text"] for m in await _run(ActionCompareOptions(runtime), tracker, domain)]
    assert not [t for t in texts if ADVICE.search(t)]
    assert not [t for t in texts if "{" in t]


@pytest.mark.asyncio
async def test_every_message_reads_at_or_below_grade_8(runtime, domain, tracker_factory):
    """The cells read well alone (eval.readability); they must still read well with their label."""
    textstat = pytest.importorskip("textstat")
    texts = []
    for choice in (None, *OPTION_DIMENSIONS, *OPTION_IDS):
        tracker = _choice(tracker_factory, choice) if choice else tracker_factory("compare", "compare_options")
        texts += [m["text"] for m in await _run(ActionCompareOptions(runtime), tracker, domain)]
    texts += [m["text"] for m in await _run(ActionDecisionMenu(runtime), tracker_factory("decide", "decision_help"),
                                            domain)]
    too_hard = {t[:60]: textstat.flesch_kincaid_grade(" ".join(t.split())) for t in texts}
    assert {t: g for t, g in too_hard.items() if g > 8} == {}


# --- the options none of the sources cover ------------------------------------------------

@pytest.mark.asyncio
@pytest.mark.parametrize("choice", [None, "harms", "minoxidil"])
async def test_the_view_ends_with_the_options_the_sources_do_not_cover(runtime, domain, tracker_factory, choice):
    """Overview, one point or one option: the last message ends with options.yml's line on
    transplants, wigs and camouflage, and who can explain them."""
    tracker = _choice(tracker_factory, choice) if choice else tracker_factory("compare", "compare_options")
    messages = await _run(ActionCompareOptions(runtime), tracker, domain)
    line = runtime.kb.decision.not_covered
    assert line and "transplant" in line and "dermatologist" in line
    assert messages[-1]["text"].endswith("\n\n" + line)
    assert sum(line in m["text"] for m in messages) == 1


# --- numbers out of 100, with who, how many, over what time and how sure -------------------

def _cell_message(messages: list[dict], option_id: str, dimension: str) -> dict:
    def shows(m: dict) -> bool:
        decision = (m.get("custom") or {}).get("decision") or {}
        return decision.get("option") == option_id and decision.get("dimension") == dimension

    return next(m for m in messages if shows(m))


@pytest.mark.asyncio
async def test_mesotherapy_benefits_and_harms_are_counted_out_of_100_with_icon_arrays(
        runtime, domain, tracker_factory):
    messages = await _run(ActionCompareOptions(runtime), _choice(tracker_factory, "mesotherapy"), domain)
    harms = _cell_message(messages, "mesotherapy", "harms")
    assert ("88 out of 100 men who had mesotherapy in one trial: red skin for a few hours after a visit. "
            "The source's own figure: 88% (skincare guide). Group size: 25 people. Time: 8 weekly visits.") \
        in harms["text"]
    assert "How sure: One small trial" in harms["text"]
    assert "No source says how many people get these other harms" in harms["text"]
    [figure] = harms["custom"]["figures"]
    assert figure["per_100"] == 88 and figure["value"] == "88%" and figure["source"] == "skincare-guide"
    assert figure["alt"] == "88 out of 100 men who had mesotherapy in one trial: red skin for a few hours after a visit."
    assert figure["label"].startswith("88 out of 100")
    assert figure["alt"].rstrip(".") in harms["text"], "the icon array and the text come from one fact"
    assert payloads.check_custom(harms["custom"])[1] == [], "within the contract both runtimes check"

    benefits = _cell_message(messages, "mesotherapy", "benefits")
    assert [f["per_100"] for f in benefits["custom"]["figures"]] == [93, 7]
    for words in ("93 out of 100 people given dutasteride injections", "92.9%", "7 out of 100 people given a "
                  "dummy treatment", "7.1%", "Group size: 14 people", "Time: 7 weekly injections", "How sure:"):
        assert words in benefits["text"], words
    assert benefits["text"].count("How sure:") == 1, "one note shown once for the two groups of one study"
    # Benefits and harms of one option on the same denominator.
    assert "out of 100" in benefits["text"] and "out of 100" in harms["text"]


@pytest.mark.asyncio
@pytest.mark.parametrize("dimension", ["benefits", "harms"])
async def test_an_uncounted_benefit_or_harm_says_so_and_a_silent_one_stays_silent(
        runtime, domain, tracker_factory, dimension):
    messages = await _run(ActionCompareOptions(runtime), _choice(tracker_factory, dimension), domain)
    for option in runtime.kb.decision.options:
        message = next(m for m in messages if (m.get("custom") or {}).get("decision", {}).get("option") == option.id)
        cell = option.cells[dimension]
        if cell.text is None:
            assert "out of 100" not in message["text"] and "figures" not in message["custom"]
        elif cell.frequencies:
            assert len(message["custom"]["figures"]) == len(cell.frequencies)
            assert "none of our sources count this" not in message["text"]
        else:
            assert message["text"].endswith("In numbers: none of our sources count this out of 100 people.")
            assert "figures" not in message["custom"]


@pytest.mark.asyncio
async def test_other_points_carry_no_counts(runtime, domain, tracker_factory):
    messages = await _run(ActionCompareOptions(runtime), _choice(tracker_factory, "cost"), domain)
    assert not any("out of 100" in m["text"] or (m.get("custom") or {}).get("figures") for m in messages)

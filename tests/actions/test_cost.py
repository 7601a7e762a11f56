"""The cost estimate: published ranges and the clinic's own prices (actions/cost.py)."""

from __future__ import annotations

import copy
import dataclasses
import re
from decimal import Decimal

import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions.cost import ActionEstimateCost
from bot.dialogue.decision import clinic_sum, published_sums
from bot.kb.model import Clinic


def _with_clinic(runtime, clinic: Clinic):
    kb = copy.copy(runtime.kb)
    kb.clinic = clinic
    return dataclasses.replace(runtime, kb=kb)


async def _estimate(runtime, domain, tracker_factory) -> list[dict]:
    dispatcher = CollectingDispatcher()
    assert await ActionEstimateCost(runtime).run(dispatcher, tracker_factory("cost calculator", "estimate_cost"),
                                                 domain) == []
    return dispatcher.messages


def _money(currency: str, amount: float) -> str:
    value = Decimal(str(amount))
    number = f"{int(value):,}" if value == value.to_integral() else f"{value.quantize(Decimal('0.01')):,}"
    return f"{currency} {number}"


def _whole(amount: float) -> int:
    return int(Decimal(str(amount)).quantize(Decimal(1), rounding="ROUND_HALF_UP"))


def _expected_published(costs):
    price_low = min(p.low for p in costs.per_session)
    price_high = max(p.high for p in costs.per_session)
    course = (min(c.low for c in costs.first_course_sessions), max(c.high for c in costs.first_course_sessions))
    upkeep = (min(c.low for c in costs.maintenance_sessions_per_year),
              max(c.high for c in costs.maintenance_sessions_per_year))
    return {
        "course": (course[0] * price_low, course[1] * price_high),
        "upkeep": (upkeep[0] * price_low, upkeep[1] * price_high),
        "year": (course[0] * price_low + upkeep[0] * price_low, course[1] * price_high + upkeep[1] * price_high),
        "price": (price_low, price_high), "course_sessions": course, "upkeep_sessions": upkeep,
    }


def test_published_sums_are_sessions_times_price(runtime):
    costs = runtime.kb.decision.costs
    [usd] = published_sums(costs)
    expected = _expected_published(costs)
    for key in ("course", "upkeep", "year", "price", "course_sessions", "upkeep_sessions"):
        span = getattr(usd, key)
        assert (float(span.low), float(span.high)) == pytest.approx(expected[key]), key
    assert usd.currency == "USD"


@pytest.mark.asyncio
async def test_published_estimate_names_each_figure_and_shows_the_sums(runtime, domain, tracker_factory):
    messages = await _estimate(runtime, domain, tracker_factory)
    aid = runtime.kb.decision
    costs = aid.costs
    published = next(m for m in messages if (m.get("custom") or {}).get("cost_estimate", {}).get("published"))
    text = published["text"]
    # every published figure, with the name of its source
    for r in (*costs.per_session, *costs.first_course_sessions, *costs.maintenance_sessions_per_year):
        name = costs.source_names.get(r.source, runtime.kb.sources[r.source].title)
        assert f"({name})" in text, (r, name)
    assert {s["id"] for s in published["custom"]["sources"]} == {
        r.source for r in (*costs.per_session, *costs.first_course_sessions, *costs.maintenance_sessions_per_year)}
    e = _expected_published(costs)
    course = f"{_money('USD', e['course'][0])} to {_money('USD', e['course'][1])[4:]}"
    upkeep = f"{_money('USD', e['upkeep'][0])} to {_money('USD', e['upkeep'][1])[4:]}"
    year = f"USD {_whole(e['year'][0]):,} to {_whole(e['year'][1]):,}"
    assert f"× USD {e['price'][0]:,.0f} to {e['price'][1]:,.0f} = {course}." in text
    assert f"= {upkeep}." in text
    assert f"{course} + {upkeep} = about {year}." in text
    assert aid.reviewed[:4] in messages[0]["text"] and "not a quote" in messages[0]["text"]


@pytest.mark.asyncio
async def test_a_clinic_without_prices_is_said_to_have_none(runtime, domain, tracker_factory):
    rt = _with_clinic(runtime, Clinic(name="Plain Clinic", currency="GBP"))
    assert clinic_sum(rt.kb.clinic, rt.kb.decision.costs) is None
    messages = await _estimate(rt, domain, tracker_factory)
    clinic_message = next(m for m in messages if "clinic" in (m.get("custom") or {}).get("cost_estimate", {}))
    assert clinic_message["custom"]["cost_estimate"]["clinic"] is None
    assert "Plain Clinic has not set its own prices" in clinic_message["text"]
    assert "GBP" not in " ".join(m["text"] for m in messages), "no clinic figure is invented"


@pytest.mark.asyncio
async def test_a_clinic_with_a_course_price_and_a_session_price(runtime, domain, tracker_factory):
    rt = _with_clinic(runtime, Clinic(name="Priced Clinic", currency="GBP", price_per_session=150.0,
                                      price_course=900.0, sessions_in_course=6))
    costs = rt.kb.decision.costs
    messages = await _estimate(rt, domain, tracker_factory)
    clinic_message = next(m for m in messages if "clinic" in (m.get("custom") or {}).get("cost_estimate", {}))
    text = clinic_message["text"]
    upkeep_low = min(c.low for c in costs.maintenance_sessions_per_year) * 150
    upkeep_high = max(c.high for c in costs.maintenance_sessions_per_year) * 150
    assert "GBP 900 (6 visits), from its own price list" in text
    upkeep = f"{_money('GBP', upkeep_low)} to {_money('GBP', upkeep_high)[4:]}"
    assert f"× GBP 150 = {upkeep}." in text
    assert f"GBP 900 + {upkeep} = about GBP {_whole(900 + upkeep_low):,} to {_whole(900 + upkeep_high):,}." in text
    figures = clinic_message["custom"]["cost_estimate"]["clinic"]
    assert figures["course"] == {"low": 900.0, "high": 900.0}
    assert figures["year"]["high"] == pytest.approx(900 + upkeep_high)
    assert "don't convert" in text, "USD and GBP are never mixed"


@pytest.mark.asyncio
async def test_a_clinic_with_only_a_session_price_uses_the_published_counts(runtime, domain, tracker_factory):
    rt = _with_clinic(runtime, Clinic(name="Session Clinic", currency="USD", price_per_session=200.0))
    costs = rt.kb.decision.costs
    own = clinic_sum(rt.kb.clinic, costs)
    low = min(c.low for c in costs.first_course_sessions)
    high = max(c.high for c in costs.first_course_sessions)
    assert (float(own.course.low), float(own.course.high)) == (low * 200, high * 200)
    messages = await _estimate(rt, domain, tracker_factory)
    text = next(m for m in messages if "clinic" in (m.get("custom") or {}).get("cost_estimate", {}))["text"]
    assert f"{low:g} to {high:g} visits (the published counts) × USD 200 = USD {low * 200:,.0f} to {high * 200:,.0f}." in text
    assert "don't convert" not in text


@pytest.mark.asyncio
async def test_a_clinic_with_only_a_course_price_cannot_price_top_ups(runtime, domain, tracker_factory):
    rt = _with_clinic(runtime, Clinic(name="Course Clinic", currency="GBP", price_course=1200.0))
    messages = await _estimate(rt, domain, tracker_factory)
    message = next(m for m in messages if "clinic" in (m.get("custom") or {}).get("cost_estimate", {}))
    assert "GBP 1,200, from its own price list" in message["text"]
    assert "no price for one visit is set here" in message["text"]
    assert "in all" not in message["text"]
    assert message["custom"]["cost_estimate"]["clinic"]["year"] is None


@pytest.mark.asyncio
async def test_every_number_shown_comes_from_the_knowledge_the_clinic_or_a_sum(runtime, domain, tracker_factory):
    """No invented figure: each number in the text is a published figure, a clinic price or a sum of them."""
    messages = await _estimate(runtime, domain, tracker_factory)
    costs = runtime.kb.decision.costs
    allowed = set()
    for r in (*costs.per_session, *costs.first_course_sessions, *costs.maintenance_sessions_per_year):
        allowed |= {Decimal(str(r.low)), Decimal(str(r.high))}
    for s in published_sums(costs):
        for span in (s.course, s.upkeep, s.year):
            allowed |= {span.low, span.high, span.low.quantize(Decimal(1), rounding="ROUND_HALF_UP"),
                        span.high.quantize(Decimal(1), rounding="ROUND_HALF_UP")}
    text = " ".join(m["text"] for m in messages)
    text = re.sub(r"\b\d{1,2} \w+ 20\d\d\b", "", text)  # the review date
    for number in re.findall(r"\d[\d,]*(?:\.\d+)?", text):
        assert Decimal(number.replace(",", "")) in allowed, number


@pytest.mark.asyncio
async def test_the_estimate_offers_the_other_options_costs_and_a_callback(runtime, domain, tracker_factory):
    messages = await _estimate(runtime, domain, tracker_factory)
    payloads = [b["payload"] for b in messages[-1]["buttons"]]
    assert '/compare_options{"choice":"cost"}' in payloads and "/request_callback" in payloads


@pytest.mark.asyncio
@pytest.mark.parametrize("clinic", [None, Clinic(name="Priced Clinic", currency="GBP", price_per_session=150.0,
                                                 price_course=900.0, sessions_in_course=6)])
async def test_the_estimate_reads_at_or_below_grade_8(runtime, domain, tracker_factory, clinic):
    textstat = pytest.importorskip("textstat")
    rt = _with_clinic(runtime, clinic) if clinic else runtime
    texts = [m["text"] for m in await _estimate(rt, domain, tracker_factory)]
    grades = {t[:60]: textstat.flesch_kincaid_grade(" ".join(t.split())) for t in texts}
    assert {t: g for t, g in grades.items() if g > 8} == {}

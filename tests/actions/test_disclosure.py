"""action_disclosure: who runs and pays for the assistant, its sources, review dates."""

from __future__ import annotations

from dataclasses import replace

import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions.disclosure import ActionDisclosure, review_dates
from bot.dialogue.replies import readable_date
from bot.kb.runtime import Runtime
from eval import readability


async def disclose(runtime: Runtime, domain: dict, tracker_factory) -> dict:
    dispatcher = CollectingDispatcher()
    events = await ActionDisclosure(runtime).run(dispatcher, tracker_factory("who made you", "ask_disclosure"),
                                                 domain)
    assert events == []
    assert len(dispatcher.messages) == 1
    return dispatcher.messages[0]


@pytest.mark.asyncio
async def test_says_the_clinic_runs_it_offers_the_treatment_and_pays_for_it(runtime, domain, tracker_factory):
    runtime = replace(runtime, kb=replace(runtime.kb, clinic=replace(runtime.kb.clinic, name="Northgate Hair")))
    message = await disclose(runtime, domain, tracker_factory)
    first = message["text"].split("\n\n")[0]
    assert "run by Northgate Hair" in first
    assert "offers mesotherapy" in first and "pays for this assistant" in first


@pytest.mark.asyncio
async def test_lists_every_source_with_its_publisher_and_whether_it_sells(runtime, domain, tracker_factory):
    message = await disclose(runtime, domain, tracker_factory)
    lines = message["text"].splitlines()
    sources = runtime.kb.sources.values()
    assert any(s.sells_treatment for s in sources) and any(not s.sells_treatment for s in sources)
    for source in sources:
        line = next(line for line in lines if source.title in line)
        assert source.publisher in line
        says_sells = "It sells the treatment" in line
        says_not = "does not sell the treatment" in line
        assert (says_sells, says_not) == (source.sells_treatment, not source.sells_treatment), source.id
    assert [s["id"] for s in message["custom"]["sources"]] == list(runtime.kb.sources)
    for payload in message["custom"]["sources"]:
        assert {"id", "title", "url", "publisher", "sells_treatment"} <= set(payload)


@pytest.mark.asyncio
async def test_gives_the_last_review_and_the_next_one(runtime, domain, tracker_factory):
    message = await disclose(runtime, domain, tracker_factory)
    reviewed, due = review_dates(runtime.kb)
    assert readable_date(reviewed) in message["text"] and readable_date(due) in message["text"]
    assert message["custom"]["reviewed"] == reviewed and message["custom"]["review_due"] == due
    assert reviewed < due


def test_review_dates_are_the_latest_review_and_the_earliest_due_date(runtime):
    kb = runtime.kb
    entries = dict(kb.entries)
    first, second = list(entries)[:2]
    entries[first] = replace(entries[first], reviewed="2030-01-05")
    entries[second] = replace(entries[second], review_due="2027-02-03")
    changed = replace(kb, entries=entries, decision=None)
    assert review_dates(changed) == ("2030-01-05", "2027-02-03")


def test_review_dates_include_the_decision_aid(runtime):
    kb = runtime.kb
    if kb.decision is None:
        pytest.fail("the real knowledge base has a decision aid (knowledge/decision/)")
    later = max(e.reviewed for e in kb.entries.values()).replace("20", "21", 1)
    earlier = "2000-01-01"
    changed = replace(kb, decision=replace(kb.decision, reviewed=later, review_due=earlier))
    assert review_dates(changed) == (later, earlier)


@pytest.mark.asyncio
async def test_the_disclosure_is_plain_language(runtime, domain, tracker_factory):
    message = await disclose(runtime, domain, tracker_factory)
    parts = message["text"].split("\n\n")
    # The clinic's part and the review dates (the source list is titles and publishers).
    assert readability.grade(parts[0]) <= 8
    assert readability.grade(parts[-1]) <= 8

"""Accountability: who reviewed the information (clinic.yml ``reviewer``), or that no clinician
has yet, and how often it is reviewed. In the disclosure, the consultation summary's footer and
the answer to "who checked this information"."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.disclosure import ActionDisclosure
from actions.summary import ActionConsultationSummary
from bot.dialogue.replies import answer_reply
from bot.kb.model import Reviewer
from bot.kb.runtime import Runtime
from eval import readability

NOT_REVIEWED = "This information has not yet been reviewed by a clinician."
POLICY = "once a year, and sooner if safety information changes"
REVIEWER = Reviewer(name="Dr Test Reviewer", role="consultant dermatologist", credentials="GMC 0000000",
                    reviewed_on="2026-11-30")


def _with_reviewer(runtime: Runtime, reviewer: Reviewer | None) -> Runtime:
    return replace(runtime, kb=replace(runtime.kb, clinic=replace(runtime.kb.clinic, reviewer=reviewer)))


async def _disclosure(runtime: Runtime, domain: dict, tracker_factory: Any) -> str:
    dispatcher = CollectingDispatcher()
    await ActionDisclosure(runtime).run(dispatcher, tracker_factory("who runs this", "ask_disclosure"), domain)
    [message] = dispatcher.messages
    return message["text"]


def _summary_footer(runtime: Runtime, domain: dict) -> str:
    latest = {"text": "summary please", "intent": {"name": "get_summary", "confidence": 1.0}, "entities": []}
    tracker = Tracker("test", {}, latest, [{"event": "user", "parse_data": latest}], False, None, {}, "action_listen")
    now = dt.datetime(2026, 12, 5, 9, 0, tzinfo=dt.timezone.utc)
    return ActionConsultationSummary(runtime).build(tracker, domain, now)["footer"]


@pytest.mark.asyncio
async def test_the_disclosure_says_plainly_when_no_clinician_has_reviewed_it(runtime, domain, tracker_factory):
    text = await _disclosure(_with_reviewer(runtime, None), domain, tracker_factory)
    assert text.split("\n\n")[-1] == NOT_REVIEWED
    assert "Dr " not in text.split("\n\n")[-1]


@pytest.mark.asyncio
async def test_the_disclosure_names_the_reviewer_their_role_credentials_and_date(runtime, domain, tracker_factory):
    text = await _disclosure(_with_reviewer(runtime, REVIEWER), domain, tracker_factory)
    last = text.split("\n\n")[-1]
    for part in ("Dr Test Reviewer", "consultant dermatologist", "GMC 0000000", "30 November 2026"):
        assert part in last, part
    assert "not yet been reviewed" not in text
    without_credentials = await _disclosure(
        _with_reviewer(runtime, replace(REVIEWER, credentials=None)), domain, tracker_factory)
    assert "Dr Test Reviewer, consultant dermatologist." in without_credentials and "(" not in without_credentials.split("\n\n")[-1]


@pytest.mark.asyncio
async def test_the_disclosure_states_the_update_policy_in_plain_language(runtime, domain, tracker_factory):
    parts = (await _disclosure(runtime, domain, tracker_factory)).split("\n\n")
    review = next(p for p in parts if "last checked this information" in p)
    assert POLICY in review
    assert readability.grade(review) <= 8 and readability.grade(parts[-1]) <= 8


def test_the_summary_footer_names_the_reviewer_or_says_there_is_none(runtime, domain):
    footer = _summary_footer(_with_reviewer(runtime, None), domain)
    assert footer.endswith(NOT_REVIEWED) and POLICY in footer
    footer = _summary_footer(_with_reviewer(runtime, REVIEWER), domain)
    assert "Dr Test Reviewer, consultant dermatologist (GMC 0000000)" in footer and "30 November 2026" in footer
    assert "not yet been reviewed" not in footer


@pytest.mark.parametrize("reviewer", [None, REVIEWER])
def test_the_sources_answer_says_who_reviewed_it(runtime, domain, reviewer):
    """'who checked this information' is answered by about-sources, with the reviewer line."""
    kb = _with_reviewer(runtime, reviewer).kb
    text = answer_reply(domain, kb, kb.entries["about-sources"]).text
    assert POLICY.replace("once a year", "every answer once a year") in text
    if reviewer is None:
        assert NOT_REVIEWED in text
    else:
        assert "Dr Test Reviewer" in text and NOT_REVIEWED not in text

"""Requests to decline (contract/safety/limits.py): the dev set's `refuse` cases and general questions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from contract.safety.limits import KINDS, detect_limit, load_limits

PHRASINGS = Path(__file__).resolve().parent / "phrasings.yml"
DATA: dict[str, list[dict[str, Any]]] = yaml.safe_load(PHRASINGS.read_text(encoding="utf-8"))


def test_refusals_are_recognised_with_their_kind() -> None:
    cases = DATA["refuse"]
    wrong = [(c["text"], c["kind"], detect_limit(c["text"])) for c in cases
             if (detect_limit(c["text"]) or None) is None or detect_limit(c["text"]).kind != c["kind"]]
    assert 1 - len(wrong) / len(cases) >= 0.9, wrong


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_has_cases_and_most_are_recognised(kind: str) -> None:
    cases = [c for c in DATA["refuse"] if c["kind"] == kind]
    assert len(cases) >= 10
    found = [c for c in cases if (r := detect_limit(c["text"])) and r.kind == kind]
    assert len(found) / len(cases) >= 0.9, [c["text"] for c in cases if c not in found]


def test_general_questions_are_not_refused() -> None:
    cases = DATA["no_flag"]
    refused = [(c["text"], detect_limit(c["text"]).kind) for c in cases if detect_limit(c["text"])]
    assert len(refused) / len(cases) <= 0.05, refused


@pytest.mark.parametrize("text, kind", [
    ("do I have alopecia?", "diagnosis"),
    ("what is wrong with my scalp", "diagnosis"),
    ("how many mg of minoxidil should I take", "dose"),
    ("how much dutasteride do they inject", "dose"),
    ("should I stop my warfarin before the session", "stop_medicine"),
    ("can I buy a meso kit and do it at home", "self_injection"),
    ("where can I get dermaroller serum to inject myself", "self_injection"),
    ("is 5% minoxidil ok for me", "dose"),
])
def test_the_briefs_examples(text: str, kind: str) -> None:
    request = detect_limit(text)
    assert request is not None and request.kind == kind


@pytest.mark.parametrize("text", [
    "what is in the injection", "does it work for alopecia", "how much is it", "how many sessions do I need",
    "what causes hair loss", "can it cause an infection?", "im on warfarin, is that a problem",
    "can I stop the treatment if I dont like it", "how much does minoxidil cost", "what is alopecia areata",
    "do I have to shave my head", "/ask_dose",
])
def test_general_questions_and_payloads_are_answered(text: str) -> None:
    assert detect_limit(text) is None


def test_rules_are_compiled_once() -> None:
    assert load_limits() is load_limits()
    assert [r.kind for r in load_limits().rules] and {r.kind for r in load_limits().rules} == set(KINDS)


@pytest.mark.parametrize("text, kind", [
    ("should i begin finasteride", "stop_medicine"),
    ("do i keep taking it or drop it", "stop_medicine"),
    ("should i skip it the week before", "stop_medicine"),
    ("whats the right mg of finasteride", "dose"),
])
def test_start_keep_or_skip_and_the_right_amount_are_declined(text: str, kind: str) -> None:
    request = detect_limit(text)
    assert request is not None and request.kind == kind, (text, request)


@pytest.mark.parametrize("text", ["which one is right for me", "should i start with meso or minoxidil",
                                  "should i skip the gym the day after"])
def test_choosing_between_options_is_not_declined(text: str) -> None:
    assert detect_limit(text) is None

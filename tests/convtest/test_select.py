"""Choosing test cases by name (substring or glob) and tag (any of them)."""

from __future__ import annotations

from pathlib import Path

from convtest.__main__ import select
from convtest.spec import Step, TestCase


def _case(name: str, *tags: str) -> TestCase:
    return TestCase(name=name, file=Path("x.yml"), steps=[Step("user", "hi")], tags=list(tags))


CASES = [_case("cost_estimate", "cost", "guided"), _case("red_flag_crisis", "safety"),
         _case("the clinic's price", "cost")]


def names(chosen: list[TestCase]) -> list[str]:
    return [c.name for c in chosen]


def test_names_match_as_substring_or_glob_and_tags_as_any_of() -> None:
    assert names(select(CASES, [], [])) == names(CASES)
    assert names(select(CASES, ["cost"], [])) == ["cost_estimate"]
    assert names(select(CASES, ["*price"], [])) == ["the clinic's price"]
    assert names(select(CASES, ["red_*", "clinic's"], [])) == ["red_flag_crisis", "the clinic's price"]
    assert names(select(CASES, [], ["guided,safety"])) == ["cost_estimate", "red_flag_crisis"]
    assert names(select(CASES, ["price"], ["cost"])) == ["the clinic's price"]
    assert select(CASES, ["nothing"], []) == []

"""The update policy the assistant states ("we check it once a year, and sooner if safety
information changes") holds for the shipped knowledge: no next check is more than a year
after the last one."""

from __future__ import annotations

import datetime as dt
from typing import Any

import yaml

from bot import paths
from bot.kb.decision import DECISION_FILES, parse_date

A_YEAR = dt.timedelta(days=366)


def test_every_entry_is_due_for_its_next_check_within_a_year(runtime: Any) -> None:
    late = [e.id for e in runtime.kb.entries.values()
            if dt.date.fromisoformat(e.review_due) - dt.date.fromisoformat(e.reviewed) > A_YEAR]
    assert not late, late


def test_every_decision_file_is_due_for_its_next_check_within_a_year() -> None:
    late = []
    for name in DECISION_FILES:
        data = yaml.safe_load((paths.knowledge_dir() / "decision" / name).read_text(encoding="utf-8"))
        reviewed, due = parse_date(data["reviewed"]), parse_date(data["review_due"])
        if due - reviewed > A_YEAR:
            late.append(name)
    assert not late, late

"""clinic.yml's ``reviewer``: the clinician who reviewed the information, or nobody yet."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot import paths
from bot.kb.build import validate
from bot.kb.loader import KnowledgeError, load_clinic
from bot.kb.model import REVIEWER_FIELDS, KnowledgeBase, Reviewer

REVIEWER = {"name": "Dr Test Reviewer", "role": "consultant dermatologist",
            "credentials": "GMC 0000000", "reviewed_on": "2026-11-30"}


def _load(tmp_path: Path, reviewer: Any, drop: bool = False) -> Any:
    data: dict[str, Any] = {"name": "Test Clinic"}
    if not drop:
        data["reviewer"] = reviewer
    path = tmp_path / "clinic.yml"
    path.write_text(yaml.safe_dump(data))
    return load_clinic(path)


def _problems(tmp_path: Path, reviewer: Any) -> list[str]:
    with pytest.raises(KnowledgeError) as info:
        _load(tmp_path, reviewer)
    return info.value.problems


def test_the_shipped_clinic_file_has_every_reviewer_field_and_names_nobody() -> None:
    """The example clinic has no clinician reviewer: the fields are there, all empty."""
    raw = yaml.safe_load(paths.clinic_file().read_text(encoding="utf-8"))
    assert set(raw["reviewer"]) == set(REVIEWER_FIELDS)
    assert all(value is None for value in raw["reviewer"].values())
    assert load_clinic(paths.clinic_file()).reviewer is None


def test_a_reviewer_is_loaded_with_every_field(tmp_path: Path) -> None:
    clinic = _load(tmp_path, REVIEWER)
    assert clinic.reviewer == Reviewer(name="Dr Test Reviewer", role="consultant dermatologist",
                                       credentials="GMC 0000000", reviewed_on="2026-11-30")


def test_credentials_are_optional_and_a_yaml_date_is_read(tmp_path: Path) -> None:
    path = tmp_path / "clinic.yml"
    path.write_text("name: Test Clinic\nreviewer:\n  name: Dr Test Reviewer\n  role: GP\n"
                    "  credentials: null\n  reviewed_on: 2026-11-30\n")
    assert load_clinic(path).reviewer == Reviewer(name="Dr Test Reviewer", role="GP", reviewed_on="2026-11-30")


@pytest.mark.parametrize("reviewer", [None, {}, {k: None for k in REVIEWER_FIELDS}, {"name": "", "role": None}])
def test_no_reviewer_or_all_empty_means_not_yet_reviewed(tmp_path: Path, reviewer: Any) -> None:
    assert _load(tmp_path, reviewer).reviewer is None
    assert _load(tmp_path, None, drop=True).reviewer is None


@pytest.mark.parametrize("missing", ["name", "role"])
def test_a_reviewer_without_a_name_or_role_is_rejected(tmp_path: Path, missing: str) -> None:
    problems = _problems(tmp_path, {**REVIEWER, missing: None})
    assert any("'reviewer'" in p and f"needs a {missing}" in p for p in problems), problems


@pytest.mark.parametrize("reviewed_on", [None, "last week", "2026-13-01"])
def test_a_reviewer_without_a_valid_date_is_rejected(tmp_path: Path, reviewed_on: Any) -> None:
    problems = _problems(tmp_path, {**REVIEWER, "reviewed_on": reviewed_on})
    assert any("'reviewer'" in p and "'reviewed_on'" in p for p in problems), problems


def test_a_review_date_in_the_future_is_rejected(tmp_path: Path) -> None:
    tomorrow = (dt.date.today() + dt.timedelta(days=1)).isoformat()
    problems = _problems(tmp_path, {**REVIEWER, "reviewed_on": tomorrow})
    assert any("in the future" in p for p in problems), problems


def test_unknown_fields_and_a_non_mapping_are_rejected(tmp_path: Path) -> None:
    problems = _problems(tmp_path, {**REVIEWER, "signature": "yes"})
    assert any("unknown field(s) signature" in p for p in problems), problems
    problems = _problems(tmp_path, "Dr Test Reviewer")
    assert any("'reviewer' must have the fields" in p for p in problems), problems
    problems = _problems(tmp_path, {**REVIEWER, "role": 42})
    assert any("'role' must be text" in p for p in problems), problems


def test_the_reviewer_round_trips_through_kb_json() -> None:
    kb = validate(paths.knowledge_dir(), paths.clinic_file(), paths.rules_dir())
    reviewed = replace(kb, clinic=replace(kb.clinic, reviewer=Reviewer(**REVIEWER)))
    for original in (kb, reviewed):
        again = KnowledgeBase.from_dict(json.loads(json.dumps(original.to_dict())))
        assert again.clinic == original.clinic

"""The bot's data blocks on their own: severity ranking, red flags, record, callback checks."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from api.bot_data import (
    MAX_RECORD_BYTES,
    Callback,
    RedFlag,
    merge_record,
    validate_record,
)
from api.models import sql_check
from contract.levels import LEVELS, most_severe, severity

# --- severity ------------------------------------------------------------------------------


def test_levels_are_ranked_prompt_same_day_emergency_crisis() -> None:
    assert LEVELS == ("prompt", "same_day", "emergency", "crisis")
    assert [severity(level) for level in LEVELS] == [0, 1, 2, 3]
    with pytest.raises(ValueError):
        severity("urgent")


@pytest.mark.parametrize(
    ("levels", "expected"),
    [
        ((), None),
        ((None, None), None),
        (("prompt",), "prompt"),
        (("emergency", "prompt"), "emergency"),
        ((None, "same_day"), "same_day"),
        (("crisis", "emergency", "same_day"), "crisis"),
        (("same_day", "emergency"), "emergency"),
    ],
)
def test_most_severe(levels: tuple[str | None, ...], expected: str | None) -> None:
    assert most_severe(*levels) == expected


def test_sql_check_lists_every_level() -> None:
    assert sql_check("x") == (
        "x IS NULL OR x IN ('prompt', 'same_day', 'emergency', 'crisis')"
    )


# --- red flag ------------------------------------------------------------------------------


def test_red_flag_keeps_the_level_even_when_the_names_are_malformed() -> None:
    assert RedFlag.model_validate({"level": "same_day", "flags": "pus"}).flags == []
    flag = RedFlag.model_validate(
        {"level": "emergency", "flags": [" breathing ", 3, None, "", "x" * 100] + ["a"] * 30}
    )
    assert flag.level == "emergency"
    assert flag.flags[:2] == ["breathing", "x" * 64]
    assert len(flag.flags) == 20
    assert RedFlag.model_validate({"level": "crisis"}).flags == []


@pytest.mark.parametrize(
    ("sent", "level"),
    [
        ("emergency", "emergency"),
        (" EMERGENCY ", "emergency"),
        ("Same-Day", "same_day"),
        ("same day", "same_day"),
        ("Crisis", "crisis"),
    ],
)
def test_red_flag_levels_are_read_whatever_their_case_or_separator(sent: str, level: str) -> None:
    assert RedFlag.model_validate({"level": sent}).level == level


@pytest.mark.parametrize("level", ["urgent", "emergency!", "", None, 3, ["crisis"]])
def test_red_flag_with_an_unknown_level_is_refused(level: Any) -> None:
    with pytest.raises(ValidationError):
        RedFlag.model_validate({"level": level, "flags": ["x"]})


# --- record --------------------------------------------------------------------------------


def test_merge_record_sets_replaces_and_deletes_key_by_key() -> None:
    record = {"values": {"cost": 3}, "sure": [True, False], "checklist": {"pregnant": False}}
    merged = merge_record(record, {"sure": [True, True, True, True], "checklist": None, "new": 1})
    assert merged == {"values": {"cost": 3}, "sure": [True, True, True, True], "new": 1}
    assert record["checklist"] == {"pregnant": False}  # the original is untouched
    assert merge_record({}, {"gone": None}) == {}


@pytest.mark.parametrize(
    "block",
    [[1, 2], "values", {"": 1}, {"k" * 65: 1}, {"big": "x" * MAX_RECORD_BYTES}],
    ids=["list", "string", "empty key", "long key", "too large"],
)
def test_malformed_record_blocks_are_refused(block: Any) -> None:
    with pytest.raises(ValueError):
        validate_record(block)


def test_record_block_may_hold_any_json() -> None:
    block = {"values": {"cost": 5, "needles": None}, "sure": [True], "note": "ok", "n": 1.5}
    assert validate_record(block) == block


# --- callback ------------------------------------------------------------------------------

GOOD: dict[str, Any] = {
    "name": "Ann O'Neil",
    "phone": "+44 (0)20 7946-0958",
    "email": None,
    "consent": True,
    "preferred_time": "weekday mornings",
}


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"phone": None, "email": "ann.oneil+meso@example.co.uk"},
        {"email": "ann@example.org"},
        {"phone": "0123456", "preferred_time": None},
        {"phone": "123456789012345"},
        {"name": "  Ann  ", "phone": "  "},  # blank phone counts as absent...
    ],
)
def test_valid_callbacks_are_accepted(changes: dict[str, Any]) -> None:
    data = {**GOOD, **changes}
    if data.get("phone") == "  ":
        data["email"] = "ann@example.org"  # ...so an email is needed
    callback = Callback.model_validate(data)
    assert callback.name == data["name"].strip()
    assert callback.consent is True


BAD_CALLBACKS: list[tuple[str, dict[str, Any]]] = [
    ("no name", {"name": ""}),
    ("blank name", {"name": "   "}),
    ("name too long", {"name": "a" * 101}),
    ("name not a string", {"name": 42}),
    ("name with a control character", {"name": "Ann\x00"}),
    ("no contact", {"phone": None, "email": None}),
    ("blank contact", {"phone": " ", "email": ""}),
    ("phone too short", {"phone": "12345 6"}),
    ("phone too long", {"phone": "1234567890123456"}),
    ("phone with letters", {"phone": "0800 CALL NOW"}),
    ("phone with a slash", {"phone": "020/7946/0958"}),
    ("email without @", {"phone": None, "email": "ann.example.org"}),
    ("email without domain dot", {"phone": None, "email": "ann@localhost"}),
    ("email with space", {"phone": None, "email": "ann o@example.org"}),
    ("email with two @", {"phone": None, "email": "a@b@example.org"}),
    ("email with markup", {"phone": None, "email": "<script>@example.org"}),
    ("consent false", {"consent": False}),
    ("consent missing", {"consent": None}),
    ("consent as a string", {"consent": "true"}),
    ("consent as 1", {"consent": 1}),
    ("preferred time too long", {"preferred_time": "x" * 201}),
]


@pytest.mark.parametrize(("case", "changes"), BAD_CALLBACKS, ids=[c[0] for c in BAD_CALLBACKS])
def test_invalid_callbacks_are_refused(case: str, changes: dict[str, Any]) -> None:
    data = {key: value for key, value in {**GOOD, **changes}.items() if value is not None}
    with pytest.raises(ValidationError):
        Callback.model_validate(data)

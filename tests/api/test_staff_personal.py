"""Masking of personal details in exports: emails and phone numbers inside free text, names
given in callback requests; dates, prices and counts left alone."""

from __future__ import annotations

import pytest

from api.staff.personal import mask_email, mask_name, mask_phone, mask_text, mask_value


MASKED: list[tuple[str, str]] = [
    # Email addresses keep their first letters and the top-level domain.
    ("write to john@example.com please", "write to j***@e***.com please"),
    ("John.Smith+hair@mail.example.co.uk", "J***@m***.uk"),
    ("(ann_b@clinic-mail.org)", "(a***@c***.org)"),
    ("two: a@b.io, c.d@e.fr.", "two: a***@b***.io, c***@e***.fr."),
    # Phone numbers (UK, US, international) keep only their last two digits.
    ("call me on 07700 900123 after 5", "call me on *** ** 23 after 5"),
    ("+44 20 7946 0958", "*** ** 58"),
    ("+44 (0)20 7946 0958", "*** ** 58"),
    ("(020) 7946 0958", "*** ** 58"),
    ("my number is 07700900123.", "my number is *** ** 23."),
    ("US (555) 123-4567 or 555-123-4567", "US *** ** 67 or *** ** 67"),
    ("555.123.4567", "*** ** 67"),
    ("1-800-555-0199", "*** ** 99"),
    ("+1 555 123 4567", "*** ** 67"),
    ("France +33 1 23 45 67 89", "France *** ** 89"),
    ("Berlin +49 30 1234567", "Berlin *** ** 67"),
]


@pytest.mark.parametrize(("text", "masked"), MASKED)
def test_emails_and_phone_numbers_in_free_text_are_masked(text: str, masked: str) -> None:
    assert mask_text(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "it costs £250 to £350 a session",
        "usually 8 to 12 sessions, 4-6 weeks apart",
        "I started on 2024-03-12",
        "on 01.03.2024 and 12/03/2024",
        "between 9 and 5, or 10:30-11:30",
        "in 2019 2020 2021 it got worse",
        "£1,200 for 0.5 ml",
        "order 12345678",
        "version 1.2345678",
        "a 3x3 grid and 100000 hairs",
        "nothing personal here",
    ],
)
def test_dates_prices_and_counts_are_not_masked(text: str) -> None:
    assert mask_text(text) == text


def test_given_names_are_masked_as_whole_words_ignoring_case() -> None:
    text = "Ann Example here, ann example again; Annie and Joanne stay"
    assert mask_text(text, ["Ann Example"]) == "A*** here, a*** again; Annie and Joanne stay"


def test_the_longer_name_wins_over_a_part_of_it() -> None:
    assert mask_text("Ann Example and Ann", ["Ann", "Ann Example"]) == "A*** and A***"


def test_field_masks() -> None:
    assert mask_email("john@example.com") == "j***@e***.com"
    assert mask_email("not an email") == "***"
    assert mask_phone("+44 20 7946 0934") == "*** ** 34"
    assert mask_phone("") == "***"
    assert mask_name("  Ann Example ") == "A***"
    assert mask_name("") == "***"


def test_json_values_are_masked_everywhere_but_keys_and_other_types_stay() -> None:
    value = {
        "contact": "ann@example.com",
        "answers": ["yes", "ring 07700 900123", 3, None, True],
        "nested": {"ann@example.com": {"n": 1.5}},
    }
    assert mask_value(value) == {
        "contact": "a***@e***.com",
        "answers": ["yes", "ring *** ** 23", 3, None, True],
        "nested": {"ann@example.com": {"n": 1.5}},
    }

"""The API-facing Rasa channel never lets typed text act as an intent command."""

from __future__ import annotations

import pytest

from bot.channels.meso import as_words


@pytest.mark.parametrize(
    "typed, expected",
    [
        ('/inform{"x": 1}', 'inform{"x": 1}'),
        ("  //ask_cost", "ask_cost"),
        ("/ /restart", "restart"),
        ("how much is it?", "how much is it?"),
        ("price / session", "price / session"),
    ],
)
def test_leading_slashes_are_dropped(typed: str, expected: str) -> None:
    assert as_words(typed) == expected
    assert not as_words(typed).startswith("/")

"""The contract's English word list is spaCy's, as the bot's pinned spaCy has it."""

from __future__ import annotations

from bot.safety.english_words import encoded, spacy_words
from contract.safety.red_flags import ENGLISH_WORDS_FILE


def test_the_shipped_word_list_is_spacys() -> None:
    assert ENGLISH_WORDS_FILE.read_bytes() == encoded(spacy_words()), (
        "run `python -m bot.safety.english_words` in the bot environment")

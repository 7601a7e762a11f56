"""Writes the English word list the contract's red-flag rules never read as typos.

The rule engine (``contract/safety/red_flags.py``) runs in the API too, which has no spaCy,
so it reads the words from ``contract/safety/english_words.txt.gz``. They are spaCy's English
lemma table plus its stop words, as the bot's pinned spaCy has them. After upgrading spaCy
or spacy-lookups-data, run ``python -m bot.safety.english_words`` (bot environment);
``tests/safety/test_english_words.py`` fails while the file and spaCy disagree.
"""

from __future__ import annotations

import gzip
import io

from contract.safety.red_flags import ENGLISH_WORDS_FILE


def spacy_words() -> frozenset[str]:
    """spaCy's English lemma table and stop words, lower case."""
    from spacy.lang.en.stop_words import STOP_WORDS

    from bot.nlu.gibberish import english_words

    return english_words() | frozenset(STOP_WORDS)


def encoded(words: frozenset[str]) -> bytes:
    """The file's bytes: sorted words, one per line, gzip with no timestamp (reproducible)."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=9, mtime=0) as handle:
        handle.write(("\n".join(sorted(words)) + "\n").encode("utf-8"))
    return buffer.getvalue()


def main() -> None:
    words = spacy_words()
    ENGLISH_WORDS_FILE.write_bytes(encoded(words))
    print(f"{ENGLISH_WORDS_FILE}: {len(words)} words")


if __name__ == "__main__":
    main()

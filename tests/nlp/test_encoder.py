"""The NumPy MiniLM encoder: normalised vectors that put paraphrases close together."""

from __future__ import annotations

import numpy as np
import pytest

from bot.nlp.encoder import SentenceEncoder, shared_encoder


@pytest.fixture(scope="module")
def encoder() -> SentenceEncoder:
    return shared_encoder()


def test_vectors_are_unit_length_and_deterministic(encoder: SentenceEncoder) -> None:
    first = encoder.encode(["how much does mesotherapy cost", "does it hurt"])
    again = encoder.encode(["how much does mesotherapy cost", "does it hurt"])
    assert first.shape == (2, SentenceEncoder.dimensions)
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(first, again)


def test_paraphrases_are_closer_than_other_topics(encoder: SentenceEncoder) -> None:
    price, fee, pain = encoder.encode([
        "how much is one session", "what's the fee for a single treatment", "will the injections hurt",
    ])
    assert float(price @ fee) > float(price @ pain) + 0.2


def test_empty_input_and_very_long_text(encoder: SentenceEncoder) -> None:
    assert encoder.encode([]).shape == (0, SentenceEncoder.dimensions)
    long = encoder.encode_one("hair " * 2000)  # truncated to the model's window, not an error
    assert long.shape == (SentenceEncoder.dimensions,)

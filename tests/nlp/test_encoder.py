"""The MiniLM encoder's contract, kept by the NumPy reference and by the shared encoder
every process uses (ONNX Runtime, int8): normalised vectors that put paraphrases close
together, batches that give each text its own vector."""

from __future__ import annotations

import numpy as np
import pytest

from bot.nlp.encoder import BaseEncoder, SentenceEncoder, shared_encoder


@pytest.fixture(scope="module", params=["numpy-reference", "shared"])
def encoder(request: pytest.FixtureRequest) -> BaseEncoder:
    return SentenceEncoder() if request.param == "numpy-reference" else shared_encoder()


def test_vectors_are_unit_length_and_deterministic(encoder: BaseEncoder) -> None:
    first = encoder.encode(["how much does mesotherapy cost", "does it hurt"])
    again = encoder.encode(["how much does mesotherapy cost", "does it hurt"])
    assert first.shape == (2, SentenceEncoder.dimensions)
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(first, again)


def test_paraphrases_are_closer_than_other_topics(encoder: BaseEncoder) -> None:
    price, fee, pain = encoder.encode([
        "how much is one session", "what's the fee for a single treatment", "will the injections hurt",
    ])
    assert float(price @ fee) > float(price @ pain) + 0.2


def test_empty_input_and_very_long_text(encoder: BaseEncoder) -> None:
    assert encoder.encode([]).shape == (0, SentenceEncoder.dimensions)
    long = encoder.encode_one("hair " * 2000)  # truncated to the model's window, not an error
    assert long.shape == (SentenceEncoder.dimensions,)


def test_a_batch_gives_each_text_what_it_gets_alone(encoder: BaseEncoder) -> None:
    texts = ["my hair started thinning after a bad year", "how much is one session?", "ok",
             "does it hurt and how long does a session take " * 3]
    batch = encoder.encode(texts)
    for text, row in zip(texts, batch):
        assert np.allclose(row, encoder.encode_one(text), atol=1e-5), text
    # Attention stays within each text: a neighbour in the batch changes nothing.
    assert np.allclose(encoder.encode(["ok", texts[0]])[1], batch[0], atol=1e-5)


def test_more_texts_than_one_batch_keep_their_order(encoder: BaseEncoder) -> None:
    from bot.nlp.encoder import BATCH

    texts = [f"question number {i} about the cost" for i in range(BATCH + 5)]
    vectors = encoder.encode(texts)
    assert vectors.shape == (BATCH + 5, SentenceEncoder.dimensions)
    assert np.allclose(vectors[BATCH + 2], encoder.encode_one(texts[BATCH + 2]), atol=1e-5)


class _Counting:
    """The encoder's contract (encode, encode_one), counting the texts it is asked for."""

    def __init__(self, encoder: BaseEncoder) -> None:
        self.encoder, self.asked = encoder, []

    def encode(self, texts: list[str]) -> np.ndarray:
        self.asked.append(list(texts))
        return self.encoder.encode(texts)

    def encode_one(self, text: str) -> np.ndarray:
        self.asked.append([text])
        return self.encoder.encode_one(text)


def test_prepared_texts_are_encoded_once_in_one_batch(encoder: BaseEncoder) -> None:
    from bot.nlp.encoder import RecentEncodings

    counting = _Counting(encoder)
    recent = RecentEncodings(counting, size=3)
    recent.prepare(["does it hurt", "how much is it", "does it hurt"])
    assert counting.asked == [["does it hurt", "how much is it"]]
    vector = recent.encode(["how much is it"])[0]
    assert counting.asked == [["does it hurt", "how much is it"]]  # no new encoding
    assert np.allclose(vector, encoder.encode_one("how much is it"), atol=1e-5)
    recent.prepare(["a", "b", "c"])  # the oldest are let go beyond the size
    recent.encode(["does it hurt"])
    assert counting.asked[-1] == ["does it hurt"]

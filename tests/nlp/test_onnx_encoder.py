"""The ONNX Runtime encoders (the files ``make encoder`` builds) against the NumPy reference.

Bounds, from measurements over all 4,939 training texts in data/nlu and the 469 texts of
both evaluation sets: the float32 file gives the reference's vectors to float rounding
(cosine >= 0.9999998 for every text); the int8 file gives cosine >= 0.989 for every text,
0.998 on average (0.991 and 0.998 on the texts below). The int8 bounds (0.98 each, 0.995 on
average) leave room for texts outside those sets and still fail on a real fault: int8
with each call's inputs quantised as one block (DynamicQuantizeMatMul) gave 0.95 at worst
and 0.99 on average (0.959 and 0.986 below), and a wrong scale or layout gives far less.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bot.nlp.encoder import SentenceEncoder, load_weights, shared_encoder
from bot.nlp.onnx_build import build_model
from bot.nlp.onnx_encoder import (FP32_FILE, INT8_FILE, SHARED_FILE, EncoderNotBuilt, OnnxSentenceEncoder,
                                  encoder_dir)

# Short and long, typos, odd and even token counts, another language, one past the
# 128-token window.
TEXTS = [
    "ok", "hurt?", "sources?", "thanks so much", "what is mesotherapy",
    "how much does one session cost in london", "wat even is mesotheraphy",
    "is it basically loads of tiny jabs in ur head or what",
    "my barber mentioned 'meso' for thinning hair, what is that exactly",
    "never had anything like this done before and im quite anxious about the unknown, could you "
    "just tell me step by step what they do to your scalp on the day",
    "I have a fever and my scalp is red and swollen after the injections",
    "¿cuánto cuesta una sesión de mesoterapia?", "💇‍♀️ does it work??? 😬",
    "can you help me think this over", "is it evidence based or a gimmick",
    "finasteride vs minoxidil vs meso, which one", "hair " * 200,
]


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return SentenceEncoder().encode(TEXTS)


@pytest.fixture(scope="module", params=[FP32_FILE, INT8_FILE])
def onnx_encoder(request: pytest.FixtureRequest) -> OnnxSentenceEncoder:
    return OnnxSentenceEncoder(encoder_dir() / request.param)


def test_the_float32_file_gives_the_reference_vectors(reference: np.ndarray) -> None:
    cosines = np.sum(OnnxSentenceEncoder(encoder_dir() / FP32_FILE).encode(TEXTS) * reference, axis=1)
    assert cosines.min() > 0.99999, TEXTS[int(cosines.argmin())]


def test_the_int8_file_stays_close_to_the_reference(reference: np.ndarray) -> None:
    cosines = np.sum(OnnxSentenceEncoder(encoder_dir() / INT8_FILE).encode(TEXTS) * reference, axis=1)
    assert cosines.min() > 0.98, TEXTS[int(cosines.argmin())]
    assert cosines.mean() > 0.995


def test_a_padded_batch_gives_each_text_its_vector_alone(onnx_encoder: OnnxSentenceEncoder) -> None:
    batch = onnx_encoder.encode(TEXTS)
    alone = np.stack([onnx_encoder.encode_one(text) for text in TEXTS])
    assert np.abs(batch - alone).max() < 1e-5
    # Whatever else is in the batch: a text with an odd number of tokens beside a longer one.
    assert np.abs(onnx_encoder.encode(["ok", TEXTS[9]])[0] - alone[0]).max() < 1e-5


def test_every_process_shares_one_single_threaded_int8_session() -> None:
    encoder = shared_encoder()
    assert encoder is shared_encoder()
    assert isinstance(encoder, OnnxSentenceEncoder) and encoder.model_file == encoder_dir() / INT8_FILE
    options = encoder._session.get_session_options()
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (1, 1)


def test_a_missing_file_names_the_make_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESO_ENCODER_DIR", str(tmp_path))
    with pytest.raises(EncoderNotBuilt, match="run `make encoder`") as missing:
        OnnxSentenceEncoder()
    assert str(tmp_path / SHARED_FILE) in str(missing.value)


@pytest.mark.parametrize("name, int8", [(FP32_FILE, False), (INT8_FILE, True)])
def test_the_built_files_are_what_the_code_builds(name: str, int8: bool) -> None:
    """A file older than bot/nlp/onnx_build.py (or the weights) fails here: `make encoder`."""
    assert (encoder_dir() / name).read_bytes() == build_model(load_weights(), int8), f"{name} is stale"

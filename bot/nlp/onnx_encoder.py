"""The MiniLM encoder on ONNX Runtime: the same network as the NumPy reference
(bot.nlp.encoder.SentenceEncoder), from the file ``make encoder`` builds (bot.nlp.onnx_build).

One thread per session and no inter-op parallelism: the bot's processes share two cores
and serve requests concurrently, so each encoding keeps to the thread that asked for it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnxruntime as ort

from bot import paths
from bot.nlp.encoder import BaseEncoder

FP32_FILE = "minilm.onnx"
INT8_FILE = "minilm-int8.onnx"
"""The dense layers in int8: weights and each call's inputs quantised in blocks (bot.nlp.onnx_build)."""
SHARED_FILE = INT8_FILE
"""The file each process's encoder loads (bot.nlp.encoder.shared_encoder)."""
MAKE_TARGET = "make encoder"

# The graph's interface (bot.nlp.onnx_build writes it).
INPUT_IDS, ATTENTION_MASK, POOLED = "input_ids", "attention_mask", "pooled"


class EncoderNotBuilt(RuntimeError):
    """The ONNX file is missing: ``make encoder`` has not run."""


def encoder_dir() -> Path:
    """Where ``make encoder`` writes the ONNX files (``MESO_ENCODER_DIR``; not under
    ``MESO_BUILD_DIR``, which names one knowledge build: the files depend on the weights only)."""
    return Path(os.environ.get("MESO_ENCODER_DIR", paths.REPO_ROOT / "build" / "encoder"))


def session_options() -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only
    return options


class OnnxSentenceEncoder(BaseEncoder):
    """Texts of one call run as one padded batch; padding is masked out of attention and of
    the mean, so each text gets what it gets alone (to float rounding)."""

    def __init__(self, model_file: Path | None = None, tokenizer_dir: Path | None = None) -> None:
        model_file = model_file or encoder_dir() / SHARED_FILE
        if not model_file.is_file():
            raise EncoderNotBuilt(f"no ONNX sentence encoder at {model_file}: run `{MAKE_TARGET}`")
        super().__init__(tokenizer_dir)
        self.model_file = model_file
        self._session = ort.InferenceSession(str(model_file), session_options(),
                                             providers=["CPUExecutionProvider"])

    def _pool(self, ids: list[list[int]]) -> np.ndarray:
        # An even number of token rows per text: ONNX Runtime 1.23's int8 kernel takes rows
        # two at a time, and a row left over on its own comes out slightly different (up
        # to 0.04), so an odd-length text would get another vector alone than in a batch.
        longest = max(map(len, ids))
        tokens = np.zeros((len(ids), longest + longest % 2), dtype=np.int64)
        mask = np.zeros_like(tokens)
        for row, one in enumerate(ids):
            tokens[row, :len(one)] = one
            mask[row, :len(one)] = 1
        return self._session.run([POOLED], {INPUT_IDS: tokens, ATTENTION_MASK: mask})[0]

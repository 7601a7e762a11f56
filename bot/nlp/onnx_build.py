"""Write the MiniLM encoder as ONNX files, from the weights the NumPy reference reads
(``make encoder``; build time only):

    python -m bot.nlp.onnx_build [--out DIR]

Two files (names in bot.nlp.onnx_encoder): float32, and one whose 24 dense layers run in
int8 (ONNX Runtime's MatMulNBits with 8 bits): each weight column in blocks of BLOCK inputs
with a scale each, and each call's inputs quantised the same way, per token and block, so a
text's vector does not depend on the others in its batch. The dense layers' weights are
most of what is read per message; int8 reads a quarter of float32's bytes.

The graph is the reference's network on a padded batch: ``input_ids`` and
``attention_mask`` (batch, tokens) in, ``pooled`` (batch, 384) out, the mean of the last
layer over the unmasked tokens; the caller normalises.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import numpy as np

from bot.nlp.encoder import Layer, Weights, load_weights
from bot.nlp.onnx_encoder import ATTENTION_MASK, FP32_FILE, INPUT_IDS, INT8_FILE, POOLED, encoder_dir
from bot.nlp.onnx_proto import ATTR_FLOAT, ATTR_INT, ATTR_INTS, FLOAT, INT8, INT64, IR_VERSION, UINT8, messages

OPSET = 17  # LayerNormalization
CONTRIB = "com.microsoft"  # ONNX Runtime's own operators: MatMulNBits
BLOCK = 128  # inputs per quantisation block (int8 file): a divisor of 384 and 1536
INT8_COMPUTE = 4  # MatMulNBits' accuracy_level: inputs quantised to int8 per block, int8 products
MASKED = -10000.0  # added to the attention scores of padding: exp() of it is 0 in float32
_DTYPES = {np.dtype(np.float32): FLOAT, np.dtype(np.uint8): UINT8, np.dtype(np.int8): INT8,
           np.dtype(np.int64): INT64}


class _Graph:
    """Nodes and initialisers; each node's output is named after the node."""

    def __init__(self) -> None:
        self.proto = messages().GraphProto(name="all-MiniLM-L6-v2")
        self._nodes = 0
        self._consts: set[str] = set()

    def const(self, name: str, value: np.ndarray) -> str:
        """An initialiser, stored once however often it is named."""
        if name not in self._consts:
            self._consts.add(name)
            tensor = self.proto.initializer.add(name=name, data_type=_DTYPES[value.dtype],
                                                raw_data=value.astype(value.dtype.newbyteorder("<")).tobytes())
            tensor.dims.extend(value.shape)
        return name

    def ints(self, name: str, values: list[int]) -> str:
        """An int64 vector: a shape, axes, sizes."""
        return self.const(name, np.array(values, dtype=np.int64))

    def scalar(self, name: str, value: float) -> str:
        return self.const(name, np.array(value, dtype=np.float32))

    def op(self, op_type: str, *inputs: str, domain: str = "", outputs: int = 1, **attributes: Any) -> Any:
        """The output's name (a list of ``outputs`` names when more than one)."""
        self._nodes += 1
        name = f"{op_type}_{self._nodes}"
        names = [name] if outputs == 1 else [f"{name}_{i}" for i in range(outputs)]
        node = self.proto.node.add(op_type=op_type, domain=domain, name=name, input=inputs, output=names)
        for key, value in attributes.items():
            attribute = node.attribute.add(name=key)
            if isinstance(value, float):
                attribute.type, attribute.f = ATTR_FLOAT, value
            elif isinstance(value, int):
                attribute.type, attribute.i = ATTR_INT, value
            else:
                attribute.type = ATTR_INTS
                attribute.ints.extend(value)
        return names[0] if outputs == 1 else names

    def io(self, name: str, elem_type: int, dims: list[str], output: bool = False) -> None:
        m = messages()
        shape = m.TensorShapeProto(dim=[m.Dimension(dim_param=d) for d in dims])
        info = m.ValueInfoProto(name=name, type=m.TypeProto(tensor_type=m.TensorType(elem_type=elem_type, shape=shape)))
        (self.proto.output if output else self.proto.input).append(info)


def _blockwise_int8(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MatMulNBits' 8-bit layout of a (K, N) weight: per output column, blocks of BLOCK inputs,
    each ``(q - 128) * scale`` with a symmetric scale of its own; q as uint8 (N, K / BLOCK,
    BLOCK), scales (N * K / BLOCK)."""
    k, n = weight.shape
    blocks = weight.T.reshape(n, k // BLOCK, BLOCK)
    scale = np.maximum(np.abs(blocks).max(axis=-1), 1e-12) / 127.0
    q = np.clip(np.rint(blocks / scale[..., None]), -127, 127) + 128
    return q.astype(np.uint8), scale.astype(np.float32).reshape(-1)


def _dense(g: _Graph, x: str, weight: np.ndarray, bias: np.ndarray, name: str, int8: bool) -> str:
    if int8:
        q, scale = _blockwise_int8(weight)
        k, n = weight.shape
        return g.op("MatMulNBits", x, g.const(name, q), g.const(name + ".scale", scale), "", "",
                    g.const(name + ".bias", bias), domain=CONTRIB, K=k, N=n, bits=8, block_size=BLOCK,
                    accuracy_level=INT8_COMPUTE)
    return g.op("Add", g.op("MatMul", x, g.const(name, weight)), g.const(name + ".bias", bias))


def _words(g: _Graph, ids: str, words: np.ndarray, int8: bool) -> str:
    """The tokens' embeddings; in the int8 file each row of the table is int8 with a scale
    of its own (a quarter of the 47 MB, and no measurable change in the vectors)."""
    if not int8:
        return g.op("Gather", g.const("words", words), ids)
    scale = np.maximum(np.abs(words).max(axis=1, keepdims=True), 1e-12) / 127.0
    q = np.clip(np.rint(words / scale), -127, 127).astype(np.int8)
    rows = g.op("Cast", g.op("Gather", g.const("words", q), ids), to=FLOAT)
    return g.op("Mul", rows, g.op("Gather", g.const("words.scale", scale.astype(np.float32)), ids))


def _norm(g: _Graph, x: str, norm: tuple[np.ndarray, np.ndarray], name: str, eps: float) -> str:
    return g.op("LayerNormalization", x, g.const(name + ".gamma", norm[0]), g.const(name + ".beta", norm[1]),
                axis=-1, epsilon=eps)


def _layer(g: _Graph, x: str, mask_bias: str, layer: Layer, w: Weights, name: str, int8: bool) -> str:
    hidden, heads = w.hidden, w.heads
    size = hidden // heads
    # 1/sqrt(head size) folded into the query's weights and bias.
    scale = np.ones(3 * hidden, dtype=np.float32)
    scale[:hidden] = 1.0 / math.sqrt(size)
    qkv = _dense(g, x, layer.qkv * scale, layer.qkv_bias * scale, name + ".qkv", int8)
    q, k, v = (g.op("Reshape", part, g.ints("heads", [0, 0, heads, size]))
               for part in g.op("Split", qkv, g.ints("qkv", [hidden] * 3), outputs=3, axis=-1))
    q = g.op("Transpose", q, perm=[0, 2, 1, 3])  # batch, head, token, size
    k = g.op("Transpose", k, perm=[0, 2, 3, 1])  # batch, head, size, token
    v = g.op("Transpose", v, perm=[0, 2, 1, 3])
    probs = g.op("Softmax", g.op("Add", g.op("MatMul", q, k), mask_bias), axis=-1)
    context = g.op("Transpose", g.op("MatMul", probs, v), perm=[0, 2, 1, 3])
    context = g.op("Reshape", context, g.ints("merged", [0, 0, hidden]))
    attended = _dense(g, context, layer.out, layer.out_bias, name + ".out", int8)
    x = _norm(g, g.op("Add", x, attended), layer.out_norm, name + ".out_norm", w.eps)
    inner = _dense(g, x, layer.inner, layer.inner_bias, name + ".inner", int8)
    # GELU, erf form (ONNX Runtime fuses the pattern into one kernel).
    erf = g.op("Erf", g.op("Div", inner, g.scalar("sqrt2", math.sqrt(2.0))))
    gelu = g.op("Mul", g.op("Mul", inner, g.op("Add", erf, g.scalar("one", 1.0))), g.scalar("half", 0.5))
    down = _dense(g, gelu, layer.down, layer.down_bias, name + ".down", int8)
    return _norm(g, g.op("Add", x, down), layer.down_norm, name + ".down_norm", w.eps)


def build_model(w: Weights, int8: bool) -> bytes:
    """The serialised ONNX model of the encoder (see the module's docstring)."""
    g = _Graph()
    g.io(INPUT_IDS, INT64, ["batch", "tokens"])
    g.io(ATTENTION_MASK, INT64, ["batch", "tokens"])
    g.io(POOLED, FLOAT, ["batch", "hidden"], output=True)
    tokens = g.op("Slice", g.op("Shape", INPUT_IDS), g.ints("tokens.start", [1]), g.ints("tokens.end", [2]))
    # Every token is of segment 0: its embedding folded into the positions'.
    positions = g.op("Slice", g.const("positions", w.positions + w.type0), g.ints("positions.start", [0]), tokens)
    x = _norm(g, g.op("Add", _words(g, INPUT_IDS, w.words, int8), positions), w.embed_norm, "embeddings", w.eps)
    mask = g.op("Cast", ATTENTION_MASK, to=FLOAT)  # batch, token
    mask_bias = g.op("Mul", g.op("Sub", g.scalar("one", 1.0), mask), g.scalar("masked", MASKED))
    mask_bias = g.op("Unsqueeze", mask_bias, g.ints("head_and_query", [1, 2]))  # batch, 1, 1, token
    for i, layer in enumerate(w.layers):
        x = _layer(g, x, mask_bias, layer, w, f"layer{i}", int8)
    kept = g.op("Mul", x, g.op("Unsqueeze", mask, g.ints("last", [2])))
    summed = g.op("ReduceSum", kept, g.ints("token_axis", [1]), keepdims=0)
    count = g.op("ReduceSum", mask, g.ints("token_axis", [1]), keepdims=1)
    g.proto.node.add(op_type="Div", name=POOLED, input=[summed, count], output=[POOLED])
    m = messages()
    model = m.ModelProto(ir_version=IR_VERSION, producer_name="meso-assistant bot.nlp.onnx_build", graph=g.proto,
                         opset_import=[m.OperatorSetIdProto(domain="", version=OPSET),
                                       m.OperatorSetIdProto(domain=CONTRIB, version=1)])
    return model.SerializeToString()


def build(out_dir: Path, weights_dir: Path | None = None) -> list[Path]:
    """Write both files (each atomically) into ``out_dir``."""
    w = load_weights(weights_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, int8 in ((INT8_FILE, True), (FP32_FILE, False)):
        tmp = out_dir / (name + ".tmp")
        tmp.write_bytes(build_model(w, int8))
        tmp.replace(out_dir / name)
        written.append(out_dir / name)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description="Write the MiniLM encoder's ONNX files.")
    parser.add_argument("--out", type=Path, help="folder (default: bot.nlp.onnx_encoder.encoder_dir())")
    args = parser.parse_args()
    for path in build(args.out or encoder_dir()):
        print(f"{path} ({path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()

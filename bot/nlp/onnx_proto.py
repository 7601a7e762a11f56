"""The part of the ONNX file format (onnx.proto) that bot.nlp.onnx_build writes.

The ``onnx`` package is not used: the releases that install beside the protobuf Rasa pins
(4.23.3) are 1.17.0 and older, with open advisories fixed only in 1.21 (CVE-2025-51480
among them), and writing a graph needs no more than the messages below. They are declared
here with onnx.proto's field numbers, so what they serialise is an ONNX model (``onnx``'s
own checker passes both files; checked in a scratch environment). Build time only.
"""

from __future__ import annotations

from functools import lru_cache
from types import SimpleNamespace
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

IR_VERSION = 8  # ONNX 1.12-1.13: the standard opsets up to 17

# TensorProto.DataType
FLOAT, UINT8, INT8, INT64 = 1, 2, 3, 7
# AttributeProto.AttributeType
ATTR_FLOAT, ATTR_INT, ATTR_INTS = 1, 2, 7

_F = descriptor_pb2.FieldDescriptorProto
_SCALARS = {"string": _F.TYPE_STRING, "bytes": _F.TYPE_BYTES, "int64": _F.TYPE_INT64,
            "int32": _F.TYPE_INT32, "float": _F.TYPE_FLOAT}

# message: (field, number, type, repeated); a type that is not a scalar names a message.
_MESSAGES: dict[str, list[tuple[str, int, str, bool]]] = {
    "OperatorSetIdProto": [("domain", 1, "string", False), ("version", 2, "int64", False)],
    "Dimension": [("dim_value", 1, "int64", False), ("dim_param", 2, "string", False)],
    "TensorShapeProto": [("dim", 1, "Dimension", True)],
    "TensorType": [("elem_type", 1, "int32", False), ("shape", 2, "TensorShapeProto", False)],
    "TypeProto": [("tensor_type", 1, "TensorType", False)],
    "ValueInfoProto": [("name", 1, "string", False), ("type", 2, "TypeProto", False)],
    "TensorProto": [("dims", 1, "int64", True), ("data_type", 2, "int32", False),
                    ("name", 8, "string", False), ("raw_data", 9, "bytes", False)],
    "AttributeProto": [("name", 1, "string", False), ("f", 2, "float", False), ("i", 3, "int64", False),
                       ("s", 4, "bytes", False), ("floats", 7, "float", True), ("ints", 8, "int64", True),
                       ("type", 20, "int32", False)],
    "NodeProto": [("input", 1, "string", True), ("output", 2, "string", True), ("name", 3, "string", False),
                  ("op_type", 4, "string", False), ("attribute", 5, "AttributeProto", True),
                  ("domain", 7, "string", False)],
    "GraphProto": [("node", 1, "NodeProto", True), ("name", 2, "string", False),
                   ("initializer", 5, "TensorProto", True), ("input", 11, "ValueInfoProto", True),
                   ("output", 12, "ValueInfoProto", True)],
    "ModelProto": [("ir_version", 1, "int64", False), ("producer_name", 2, "string", False),
                   ("producer_version", 3, "string", False), ("graph", 7, "GraphProto", False),
                   ("opset_import", 8, "OperatorSetIdProto", True)],
}
_PACKAGE = "meso_onnx"  # its own name, so it never meets a real ``onnx`` package's classes


@lru_cache(maxsize=1)
def messages() -> Any:
    """The message classes, by name (``messages().ModelProto``)."""
    file = descriptor_pb2.FileDescriptorProto(name="meso_onnx.proto", package=_PACKAGE, syntax="proto2")
    for name, fields in _MESSAGES.items():
        message = file.message_type.add(name=name)
        for field, number, kind, repeated in fields:
            spec = message.field.add(name=field, number=number,
                                     label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL)
            if kind in _SCALARS:
                spec.type = _SCALARS[kind]
            else:
                spec.type, spec.type_name = _F.TYPE_MESSAGE, f".{_PACKAGE}.{kind}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    classes = message_factory.GetMessageClassesForFiles([file.name], pool)
    return SimpleNamespace(**{name: classes[f"{_PACKAGE}.{name}"] for name in _MESSAGES})

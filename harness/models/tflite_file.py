"""Reading a .tflite file safely.

The Python flatbuffer accessors and the TFLM runtime trust their input; a truncated or foreign file
can raise deep inside them or crash the process. `read_model` walks every table bench relies on,
with explicit bounds checks, so bad input fails here with the file's name and what to do next.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tflite

from benchcore.tflite_model import OPERATOR_NAMES, operator_name  # noqa: F401  (shared with the devices)
from harness.errors import ModelError

FILE_IDENTIFIER = b"TFL3"


@dataclass(frozen=True)
class ModelFile:
    path: Path
    data: bytes
    sha256: str
    model: tflite.Model


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_model(path: str | Path) -> ModelFile:
    """Read and structurally check a .tflite file; raise `ModelError` naming the file otherwise."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelError(
            f"model file {str(path)!r} does not exist.",
            hint="Check the path in bench.toml [sweep] models or the --model flag.",
        ) from None
    except OSError as exc:
        raise ModelError(f"model file {str(path)!r} cannot be read: {exc.strerror}.") from None
    return parse_model(data, path)


def parse_model(data: bytes, path: Path) -> ModelFile:
    if len(data) < 8 or data[4:8] != FILE_IDENTIFIER:
        raise ModelError(
            f"{str(path)!r} is not a TFLite model (no 'TFL3' file identifier at byte 4).",
            hint="Give a .tflite flatbuffer, for example one written by tf.lite.TFLiteConverter.",
        )
    try:
        model = tflite.Model.GetRootAs(data, 0)
        _walk(model, len(data))
    except (struct.error, ValueError, IndexError, TypeError) as exc:
        raise ModelError(
            f"{str(path)!r} is a damaged TFLite model ({len(data)} bytes; {exc}); it looks truncated.",
            hint="Copy or export the model again and compare its size with the original.",
        ) from None
    return ModelFile(path=path, data=data, sha256=sha256_bytes(data), model=model)


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


# --- Helpers shared by inspect, prune and evaluate -------------------------------------------------
# They read tensors the way TFLite does, so every tool agrees on names, dtypes and what "zero" means.

TYPE_NAMES: dict[int, str] = {
    v: k for k, v in vars(tflite.TensorType).items() if not k.startswith("_") and isinstance(v, int)
}
NUMPY_DTYPES: dict[str, type[np.generic]] = {
    "FLOAT32": np.float32,
    "FLOAT16": np.float16,
    "FLOAT64": np.float64,
    "INT8": np.int8,
    "UINT8": np.uint8,
    "INT16": np.int16,
    "UINT16": np.uint16,
    "INT32": np.int32,
    "UINT32": np.uint32,
    "INT64": np.int64,
    "UINT64": np.uint64,
    "BOOL": np.bool_,
}


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


def buffer_array(model: tflite.Model, data: bytes | bytearray, index: int) -> np.ndarray | None:
    """Raw bytes of buffer `index` as uint8, or None when the buffer is empty (not a constant).

    The array is a view into `data`: writable when `data` is a bytearray, which is how pruning
    edits weights without re-serialising the flatbuffer. Buffers stored past the flatbuffer
    (models over 2 GB use `offset`/`size`) are viewed the same way.
    """
    buf = model.Buffers(index)
    if buf.DataLength():
        return buf.DataAsNumpy()
    if buf.Offset() > 1 and buf.Size():
        return np.frombuffer(data, dtype=np.uint8, count=buf.Size(), offset=buf.Offset())
    return None


def constant_array(model: tflite.Model, data: bytes | bytearray, tensor: tflite.Tensor) -> np.ndarray | None:
    """The constant contents of `tensor` typed and shaped, or None if it has no constant buffer."""
    raw = buffer_array(model, data, tensor.Buffer())
    dtype = NUMPY_DTYPES.get(type_name(tensor))
    if raw is None or dtype is None:
        return None
    shape = tensor_shape(tensor)
    n = int(np.prod(shape)) if shape else 1
    itemsize = np.dtype(dtype).itemsize
    if raw.size != n * itemsize:
        return None  # packed (INT4) or inconsistent: not something bench reads element-wise
    return raw.view(dtype).reshape(shape)

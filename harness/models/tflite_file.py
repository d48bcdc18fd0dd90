"""Reading a .tflite file safely.

The Python flatbuffer accessors and the TFLM runtime trust their input; a truncated or foreign file
can raise deep inside them or crash the process. `read_model` walks every table bench relies on
(`benchcore.tflite_model.load_model`, which the drivers use too), with explicit bounds checks, so bad
input fails here with the file's name and what to do next.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tflite

# The structural check and the tensor readers are the core's (the mlperf driver reads a model's
# inputs and outputs too); re-exported here for the harness's model tools.
from benchcore.tflite_model import (  # noqa: F401
    FILE_IDENTIFIER,
    OPERATOR_NAMES,
    TYPE_NAMES,
    Quantization,
    load_model,
    operator_name,
    quantization,
    tensor_shape,
    type_name,
)
from harness.errors import ModelError


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
    """Structurally check model bytes (benchcore.tflite_model.load_model); `path` names them in errors."""
    return ModelFile(path=path, data=data, sha256=sha256_bytes(data), model=load_model(data, str(path)))


# --- Helpers shared by inspect, prune and evaluate -------------------------------------------------
# They read tensors the way TFLite does, so every tool agrees on names, dtypes and what "zero" means.

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


def tensor_name(tensor: tflite.Tensor) -> str:
    return (tensor.Name() or b"").decode(errors="replace")


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

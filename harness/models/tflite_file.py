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

import tflite

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

"""Labelled datasets (.npz) checked against the model they will be fed to.

A dataset is a NumPy .npz with `x_test` and `y_test` (and optionally `x_train`/`y_train`).
Inputs in real units (any float or non-int8 integer dtype) are quantized with the model input's
scale and zero point, so one dataset serves a float model and its int8 conversion alike; int8
arrays are taken as already quantized. Labels are class indices, or one-hot rows (argmax taken).
Every mismatch is a `DatasetError` naming the file and the key, found before any inference runs.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.errors import DatasetError, ModelError
from harness.models.tflite_file import (
    NUMPY_DTYPES,
    ModelFile,
    quantization,
    tensor_name,
    tensor_shape,
    type_name,
)

SPLITS = ("test", "train")


@dataclass(frozen=True)
class InputSpec:
    """What the model's (single) input accepts."""

    name: str
    shape: tuple[int, ...]  # including the batch dimension, usually 1
    dtype: np.dtype
    scale: float | None
    zero_point: int | None


@dataclass(frozen=True)
class Dataset:
    path: Path
    split: str
    x: np.ndarray  # (n, *input_shape[1:]) in the model input's dtype
    y: np.ndarray  # (n,) int64 class indices

    def __len__(self) -> int:
        return len(self.y)


def input_spec(mf: ModelFile) -> InputSpec:
    graph = mf.model.Subgraphs(0)
    if graph.InputsLength() != 1:
        raise ModelError(
            f"{str(mf.path)!r} has {graph.InputsLength()} inputs; bench evaluates single-input models.",
            hint="Evaluate such a model with its own script and record the accuracy in the manifest.",
        )
    tensor = graph.Tensors(graph.Inputs(0))
    dtype = NUMPY_DTYPES.get(type_name(tensor))
    if dtype is None:
        raise ModelError(f"{str(mf.path)!r}: input type {type_name(tensor)} is not supported for evaluation.")
    q = quantization(tensor)
    return InputSpec(
        name=tensor_name(tensor),
        shape=tensor_shape(tensor),
        dtype=np.dtype(dtype),
        scale=float(q.scale[0]) if q else None,
        zero_point=int(q.zero_point[0]) if q else None,
    )


def load_dataset(
    path: str | Path, spec: InputSpec, *, split: str = "test", samples: int | None = None
) -> Dataset:
    """Load split `split` of an .npz and fit it to `spec`; `samples` keeps the first n."""
    path = Path(path)
    if split not in SPLITS:
        raise DatasetError(f"unknown dataset split {split!r}; use one of {', '.join(SPLITS)}.")
    arrays = _read_npz(path, (f"x_{split}", f"y_{split}"))
    x_key, y_key = f"x_{split}", f"y_{split}"
    x, y = arrays[x_key], arrays[y_key]
    expected = tuple(spec.shape[1:])
    if x.ndim != len(expected) + 1 or tuple(x.shape[1:]) != expected:
        raise DatasetError(
            f"{str(path)!r}: {x_key} has shape {tuple(x.shape)}, but model input {spec.name!r} takes "
            f"{spec.shape}; expected (n, {', '.join(map(str, expected))}).",
            hint="Reshape the array before saving it (np.savez) so each sample matches the model input.",
        )
    labels = _labels(path, y_key, y, len(x))
    if samples is not None:
        if samples < 1:
            raise DatasetError(f"samples must be at least 1 (got {samples}).")
        x, labels = x[:samples], labels[:samples]
    return Dataset(path=path, split=split, x=quantize(x, spec, source=path, key=x_key), y=labels)


def _read_npz(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in keys if k not in npz.files]
            if missing:
                raise DatasetError(
                    f"{str(path)!r} has no {' or '.join(repr(k) for k in missing)} "
                    f"(it holds {sorted(npz.files) or 'nothing'}).",
                    hint="Save the arrays as np.savez(path, x_test=..., y_test=...).",
                )
            return {k: npz[k] for k in keys}
    except FileNotFoundError:
        raise DatasetError(f"dataset {str(path)!r} does not exist.", hint="Check --data.") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DatasetError(
            f"dataset {str(path)!r} is not a readable NumPy .npz ({exc}).",
            hint="Write it with np.savez; object arrays (pickles) are refused.",
        ) from None


def _labels(path: Path, key: str, y: np.ndarray, n: int) -> np.ndarray:
    if y.ndim == 2:
        y = y.argmax(axis=1)  # one-hot rows
    if y.ndim != 1 or len(y) != n:
        raise DatasetError(
            f"{str(path)!r}: {key} has shape {tuple(y.shape)}; expected ({n},) class indices "
            f"(one per sample in x) or ({n}, classes) one-hot rows."
        )
    if not np.issubdtype(y.dtype, np.integer) and not np.all(np.equal(np.mod(y, 1), 0)):
        raise DatasetError(f"{str(path)!r}: {key} holds non-integer labels; give class indices.")
    return y.astype(np.int64)


def quantize(x: np.ndarray, spec: InputSpec, *, source: Path, key: str = "x") -> np.ndarray:
    """Fit real-valued inputs to the model input (int8 inputs pass through); errors name `source`."""
    path = source
    if x.dtype == spec.dtype:  # int8 for an int8 model: already quantized
        return np.ascontiguousarray(x)
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise DatasetError(f"{str(path)!r}: {key} has dtype {x.dtype}; give numbers.")
    if spec.dtype.kind == "f":
        return x.astype(spec.dtype)
    if spec.scale is None or spec.zero_point is None or spec.scale == 0:
        raise DatasetError(
            f"{str(path)!r}: {key} is {x.dtype} but model input {spec.name!r} is {spec.dtype} without "
            "quantization parameters, so bench cannot convert it.",
            hint=f"Store {key} as {spec.dtype} already.",
        )
    info = np.iinfo(spec.dtype)
    q = np.round(x.astype(np.float64) / spec.scale + spec.zero_point)
    return np.clip(q, info.min, info.max).astype(spec.dtype)

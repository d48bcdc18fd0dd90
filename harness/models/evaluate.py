"""Accuracy of a model on a labelled dataset, and how far TFLM's answers are from LiteRT's.

Accuracy comes from LiteRT (batched when the model allows it) because it is fast; the boards run
TFLM, so the same samples also go through the TFLM runtime and the report says how often the two
agree. They are not bit-identical: FULLY_CONNECTED may differ by 1 LSB. For a model LiteRT rejects
(person_detect's per-channel bias axis) the accuracy is TFLM's own and the report says so.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from harness.defaults import KERNELS
from harness.errors import ConfigError, DatasetError
from harness.models.dataset import input_spec, load_dataset
from harness.models.tflite_file import read_model

log = logging.getLogger(__name__)

Kernels = Literal["reference", "builtin"]
# Big enough that TFLM never segfaults in-process (that happens only on tiny arenas); doubled on
# a clean "failed to allocate" until LIMIT.
_TFLM_ARENA_FLOOR = 1 << 20
_TFLM_ARENA_LIMIT = 256 << 20


@dataclass(frozen=True)
class Agreement:
    """TFLM against LiteRT on the same samples (output 0)."""

    samples: int
    identical_outputs: float  # fraction of samples whose whole output tensor is bit-identical
    identical_argmax: float
    max_lsb_diff: int  # largest absolute difference of any output element, in quantized steps


@dataclass
class EvalReport:
    model: str
    sha256: str
    dataset: str
    samples: int
    kernels: str
    accuracy: float | None  # top-1 from `accuracy_runtime`; None when the output is not a class score
    accuracy_runtime: str
    litert_accuracy: float | None
    tflm_accuracy: float | None
    agreement: Agreement | None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate(
    path: str | Path, dataset_npz: str | Path, *, kernels: Kernels = "reference", samples: int | None = None
) -> EvalReport:
    """Top-1 accuracy on `x_test`/`y_test`, plus TFLM/LiteRT agreement on the same samples."""
    if kernels not in KERNELS:
        raise ConfigError(f"unknown kernels {kernels!r}; use one of {', '.join(KERNELS)}.")
    mf = read_model(path)
    data = load_dataset(dataset_npz, input_spec(mf), samples=samples)
    notes: list[str] = []
    tflm = tflm_outputs(mf.data, data.x)
    try:
        lite: np.ndarray | None = litert_outputs(mf.data, data.x, kernels=kernels)
    except (ValueError, RuntimeError) as exc:
        lite = None
        notes.append(f"LiteRT rejects this model ({_first_line(exc)}); accuracy is from the TFLM runtime only.")
    classes = int(np.prod(tflm.shape[1:]))
    tflm_acc = _top1(tflm, data.y, data.path, classes)
    lite_acc = _top1(lite, data.y, data.path, classes) if lite is not None else None
    if classes < 2:
        notes.append("the output has a single value, so top-1 accuracy is not defined; agreement still is.")
    return EvalReport(
        model=str(mf.path),
        sha256=mf.sha256,
        dataset=str(data.path),
        samples=len(data),
        kernels=kernels,
        accuracy=lite_acc if lite is not None else tflm_acc,
        accuracy_runtime=f"litert-{kernels}" if lite is not None else "tflite-micro",
        litert_accuracy=lite_acc,
        tflm_accuracy=tflm_acc,
        agreement=agreement(lite, tflm) if lite is not None else None,
        notes=notes,
    )


def agreement(reference: np.ndarray, other: np.ndarray) -> Agreement:
    a = reference.reshape(len(reference), -1).astype(np.int64)
    b = other.reshape(len(other), -1).astype(np.int64)
    diff = np.abs(a - b)
    return Agreement(
        samples=len(a),
        identical_outputs=float(np.mean(diff.max(axis=1) == 0)) if len(a) else 0.0,
        identical_argmax=float(np.mean(a.argmax(axis=1) == b.argmax(axis=1))) if len(a) else 0.0,
        max_lsb_diff=int(diff.max()) if diff.size else 0,
    )


def tflm_outputs(model_bytes: bytes, samples: np.ndarray, *, arena_size: int | None = None) -> np.ndarray:
    """Output 0 of the TFLM Python runtime for each sample (axis 0 of `samples`), stacked.

    The interpreter is reset between samples so stateful models (LSTM, SVDF) see each sample fresh,
    as a board that runs one inference per request would.
    """
    from tflite_micro import runtime  # imported here: only evaluation and the sweep need it

    interp = _tflm_interpreter(runtime, bytes(model_bytes), arena_size)
    shape = tuple(interp.get_input_details(0)["shape"])
    outputs = []
    for sample in samples:
        interp.reset()
        interp.set_input(np.ascontiguousarray(sample).reshape(shape), 0)
        interp.invoke()
        outputs.append(np.array(interp.get_output(0)))
    out = np.stack(outputs) if outputs else np.empty((0,))
    return out.reshape(len(outputs), *out.shape[2:]) if out.ndim > 1 and out.shape[1] == 1 else out


def litert_outputs(model_bytes: bytes, samples: np.ndarray, *, kernels: Kernels = "reference") -> np.ndarray:
    """Output 0 of LiteRT for each sample: one batched call when the graph allows it.

    Stateful and fixed-batch graphs (LSTM, SVDF, a RESHAPE to batch 1) refuse a larger batch; they
    are run one sample at a time with their variables reset in between.
    """
    try:
        return _litert_batched(bytes(model_bytes), samples, kernels)
    except (ValueError, RuntimeError) as exc:
        if "quantized_dimension" in str(exc):
            raise  # the model itself is refused, batch size has nothing to do with it
        log.debug("LiteRT refused a batch of %d (%s); running one sample at a time", len(samples), exc)
    return _litert_single(bytes(model_bytes), samples, kernels)


def _litert_interpreter(model: bytes, kernels: str) -> Any:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = {
        "reference": OpResolverType.BUILTIN_REF,
        "builtin": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    }[kernels]
    return Interpreter(model_content=model, experimental_op_resolver_type=resolver, num_threads=1)


def _litert_batched(model: bytes, samples: np.ndarray, kernels: str) -> np.ndarray:
    interp = _litert_interpreter(model, kernels)
    inp = interp.get_input_details()[0]
    interp.resize_tensor_input(inp["index"], [len(samples), *inp["shape"][1:]])
    interp.allocate_tensors()
    interp.set_tensor(inp["index"], np.ascontiguousarray(samples))
    interp.invoke()
    return np.array(interp.get_tensor(interp.get_output_details()[0]["index"]))


def _litert_single(model: bytes, samples: np.ndarray, kernels: str) -> np.ndarray:
    interp = _litert_interpreter(model, kernels)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    out_index = interp.get_output_details()[0]["index"]
    outputs = []
    for sample in samples:
        interp.reset_all_variables()
        interp.set_tensor(inp["index"], np.ascontiguousarray(sample).reshape(inp["shape"]))
        interp.invoke()
        outputs.append(np.array(interp.get_tensor(out_index))[0])
    return np.stack(outputs)


def _tflm_interpreter(runtime: Any, model: bytes, arena_size: int | None) -> Any:
    size = arena_size or max(_TFLM_ARENA_FLOOR, 10 * len(model))
    while True:
        try:
            return runtime.Interpreter.from_bytes(model, arena_size=size)
        except RuntimeError:
            if arena_size is not None or size >= _TFLM_ARENA_LIMIT:
                raise
            size *= 2


def _top1(outputs: np.ndarray | None, labels: np.ndarray, dataset: Path, classes: int) -> float | None:
    if outputs is None or classes < 2:
        return None
    bad = (labels < 0) | (labels >= classes)
    if bad.any():
        raise DatasetError(
            f"{str(dataset)!r}: y_test holds label {int(labels[bad][0])}, but the model has {classes} classes.",
            hint="Labels must be class indices 0..classes-1 in the model's output order.",
        )
    pred = outputs.reshape(len(outputs), -1).argmax(axis=1)
    return float(np.mean(pred == labels)) if len(labels) else 0.0


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.split(".Tensor")[0].splitlines()[0][:200] if text else type(exc).__name__

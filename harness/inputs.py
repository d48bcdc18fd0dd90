"""The inputs every cell of a variant shares: the model bytes, a timing input, labelled samples
quantized to the model's input, and the TFLM runtime's outputs as the agreement reference."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from devices.base import ModelBinary
from harness.cell import CellInputs
from harness.errors import DatasetError
from harness.models.variant import ModelVariant

log = logging.getLogger(__name__)

#: Generous on purpose: the reference run must not fail for want of arena; TFLM crashes on tiny ones.
REFERENCE_ARENA_BYTES = 16 * 1024 * 1024


def prepare_inputs(variant: ModelVariant, accuracy_samples: int | str) -> CellInputs:
    data = variant.path.read_bytes()
    model = ModelBinary(name=variant.name, sha256=variant.sha256, data=data)
    spec = _input_spec(data)
    samples = labels = reference = None
    if variant.dataset is not None and accuracy_samples != 0:
        limit = None if accuracy_samples == "all" else int(accuracy_samples)
        samples, labels = load_labelled(variant.dataset, spec, limit)
        reference = reference_outputs(data, samples)
    if samples is not None and len(samples):
        timing_input = samples[0]
    else:
        # No data: a fixed pseudo-random input, so every device times the same bytes.
        rng = np.random.default_rng(0)
        info = np.iinfo(spec.dtype) if np.issubdtype(spec.dtype, np.integer) else None
        timing_input = (rng.integers(info.min, info.max + 1, spec.shape).astype(spec.dtype) if info
                        else rng.standard_normal(spec.shape).astype(spec.dtype))
    return CellInputs(model=model, timing_input=timing_input, samples=samples, labels=labels,
                      reference_outputs=reference)


class InputSpec:
    """The model's first input as the flatbuffer declares it."""

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype, scale: float | None, zero_point: int) -> None:
        self.shape, self.dtype, self.scale, self.zero_point = shape, dtype, scale, zero_point


_DTYPES = {0: np.float32, 2: np.int32, 3: np.uint8, 7: np.int16, 9: np.int8}


def _input_spec(data: bytes) -> InputSpec:
    import tflite

    model = tflite.Model.GetRootAs(data, 0)
    graph = model.Subgraphs(0)
    tensor = graph.Tensors(graph.Inputs(0))
    dtype = np.dtype(_DTYPES.get(tensor.Type(), np.float32))
    q = tensor.Quantization()
    scale = float(q.ScaleAsNumpy()[0]) if q is not None and q.ScaleLength() else None
    zp = int(q.ZeroPointAsNumpy()[0]) if q is not None and q.ZeroPointLength() else 0
    return InputSpec(tuple(int(d) for d in tensor.ShapeAsNumpy()), dtype, scale, zp)


def load_labelled(path: Path, spec: InputSpec, limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    """x_test/y_test from a .npz, quantized to the model's input; errors name the file and key."""
    try:
        with np.load(path) as npz:
            missing = [k for k in ("x_test", "y_test") if k not in npz.files]
            if missing:
                raise DatasetError(f"dataset {str(path)!r} has no {', '.join(missing)}.",
                                   hint="A labelled dataset holds x_test (inputs) and y_test (integer labels).")
            x, y = npz["x_test"], npz["y_test"]
    except (OSError, ValueError) as exc:
        raise DatasetError(f"dataset {str(path)!r} is not a readable .npz: {exc}.") from None
    if limit is not None:
        x, y = x[:limit], y[:limit]
    per_sample = int(np.prod(spec.shape[1:])) if len(spec.shape) > 1 else int(np.prod(spec.shape))
    if x.size != len(x) * per_sample or len(x) != len(y):
        raise DatasetError(
            f"dataset {str(path)!r}: x_test has shape {x.shape} and y_test {y.shape}, which do not fit the "
            f"model input {spec.shape}.",
        )
    x = x.reshape((len(x), *spec.shape[1:]))
    if np.issubdtype(spec.dtype, np.integer) and not np.issubdtype(x.dtype, np.integer):
        if spec.scale is None:
            raise DatasetError(f"dataset {str(path)!r} is float but the model input is not quantized.")
        info = np.iinfo(spec.dtype)
        x = np.clip(np.round(x / spec.scale + spec.zero_point), info.min, info.max)
    return x.astype(spec.dtype), y.astype(np.int64).reshape(-1)


def reference_outputs(data: bytes, samples: np.ndarray) -> np.ndarray | None:
    """Outputs of the TFLM runtime (the kernels a board runs); None when TFLM cannot run the model."""
    from tflite_micro.python.tflite_micro import runtime

    try:
        interp = runtime.Interpreter.from_bytes(data, arena_size=REFERENCE_ARENA_BYTES)
    except (RuntimeError, ValueError) as exc:
        log.info("no TFLM reference outputs: %s", exc)
        return None
    outputs = []
    for sample in samples:
        interp.set_input(sample.reshape(interp.get_input_details(0)["shape"]), 0)
        interp.invoke()
        outputs.append(interp.get_output(0).reshape(-1).copy())
    return np.stack(outputs)

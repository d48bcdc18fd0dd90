"""The inputs every cell of a variant shares: the model bytes, a timing input, labelled samples
fitted to the model's input, and the TFLM runtime's outputs as the reference for output agreement."""

from __future__ import annotations

import logging

import numpy as np

from devices.base import ModelBinary
from harness.cell import CellInputs
from harness.models.dataset import InputSpec, input_spec, load_dataset
from harness.models.evaluate import tflm_outputs
from harness.models.tflite_file import read_model
from harness.models.variant import ModelVariant

log = logging.getLogger(__name__)


def prepare_inputs(variant: ModelVariant, accuracy_samples: int | str) -> CellInputs:
    model_file = read_model(variant.path)
    model = ModelBinary(name=variant.name, sha256=model_file.sha256, data=model_file.data)
    spec = input_spec(model_file)
    if variant.dataset is None or accuracy_samples == 0:
        return CellInputs(model=model, timing_input=_synthetic_input(spec))
    limit = None if accuracy_samples == "all" else int(accuracy_samples)
    data = load_dataset(variant.dataset, spec, samples=limit)
    try:
        reference = tflm_outputs(model.data, data.x)
    except RuntimeError as exc:  # TFLM lacks an op LiteRT has: agreement stays unknown, not wrong
        log.warning("no TFLM reference outputs for %s: %s", variant.name, exc)
        reference = None
    return CellInputs(model=model, timing_input=data.x[0], samples=data.x, labels=data.y,
                      reference_outputs=reference)


def _synthetic_input(spec: InputSpec) -> np.ndarray:
    """No data: a fixed pseudo-random input, so every device times the same bytes."""
    rng = np.random.default_rng(0)
    shape = spec.shape[1:] if len(spec.shape) > 1 else spec.shape
    if np.issubdtype(spec.dtype, np.integer):
        info = np.iinfo(spec.dtype)
        return rng.integers(info.min, info.max + 1, shape).astype(spec.dtype)
    return rng.standard_normal(shape).astype(spec.dtype)

"""benchcore.tflite_model's safe reading and graph inputs/outputs: what a driver (mlperf) reads from a model."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchcore.errors import ModelError
from benchcore.tflite_model import graph_io, load_model

DIGITS = Path(__file__).resolve().parents[1] / "harness" / "models" / "data" / "digits" / "digits_dense.tflite"


def test_graph_io_gives_a_driver_the_models_inputs_and_outputs() -> None:
    inputs, outputs = graph_io(DIGITS.read_bytes(), "digits")
    assert [(t.shape, t.dtype, t.zero_point) for t in inputs] == [((1, 8, 8, 1), "INT8", -128)]
    assert [(t.shape, t.dtype, t.scale) for t in outputs] == [((1, 10), "INT8", 0.00390625)]
    with pytest.raises(ModelError, match=r"'variant-x' is not a TFLite model"):
        graph_io(b"not a model at all", "variant-x")


def test_a_truncated_model_is_named_and_not_read() -> None:
    data = DIGITS.read_bytes()
    with pytest.raises(ModelError, match=r"'cut' is a damaged TFLite model .* it looks truncated"):
        load_model(data[: len(data) // 3], "cut")

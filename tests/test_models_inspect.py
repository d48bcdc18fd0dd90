"""`bench models inspect` on TFLite Micro's own example models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from harness.cli.models import models_app
from harness.errors import ModelError
from harness.models.inspect import inspect_model, zero_mask
from harness.models.tflite_file import Quantization

SHARED_MODELS = Path(__file__).resolve().parents[2] / "shared" / "models"
MODELS = sorted(SHARED_MODELS.glob("*.tflite"))

pytestmark = pytest.mark.skipif(not MODELS, reason=f"no example models in {SHARED_MODELS}")


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.stem)
def test_inspect_reads_every_example_model(path: Path) -> None:
    report = inspect_model(path, arena=False)
    assert report.size_bytes == path.stat().st_size
    assert 0 < report.gzip_bytes < report.size_bytes
    assert report.params > 0 and report.macs > 0
    assert report.inputs and report.outputs
    assert 0.0 <= report.zero_fraction < 0.05  # trained, unpruned weights
    assert sum(report.operators.values()) == len(report.ops)
    json.dumps(report.as_dict())  # the --json output must serialise as it is


def test_micro_speech_figures_match_a_hand_count() -> None:
    r = inspect_model(SHARED_MODELS / "micro_speech_quantized.tflite", arena=False)
    assert r.operators == {"RESHAPE": 1, "DEPTHWISE_CONV_2D": 1, "FULLY_CONNECTED": 1, "SOFTMAX": 1}
    macs = {op.op: op.macs for op in r.ops}
    assert macs["DEPTHWISE_CONV_2D"] == 25 * 20 * 8 * 10 * 8  # output elements × 10×8 kernel
    assert macs["FULLY_CONNECTED"] == 4 * 4000
    assert r.ops_without_macs == ["RESHAPE", "SOFTMAX"]
    assert r.params == 640 + 8 + 16000 + 4  # weights and biases; the reshape's shape operand is not one
    dw = next(t for t in r.tensors if t.name == "first_weights/read")
    assert dw.quantized_dimension == 3 and len(dw.scale) == 8
    assert r.inputs[0].shape == [1, 1960] and r.inputs[0].dtype == "INT8" and r.inputs[0].zero_point == [-128]


def test_arena_search_finds_the_working_minimum() -> None:
    model = SHARED_MODELS / "hello_world_int8.tflite"
    arena = inspect_model(model, arena=True).arena
    assert arena is not None and arena.granularity_bytes == 16
    assert arena.minimum_bytes % 16 == 0 and arena.tflm_total_bytes and arena.tflm_total_bytes > 0
    # The minimum must work and 16 bytes less must not; each check in its own process, as TFLM may crash.
    check = (
        "import sys; from tflite_micro import runtime\n"
        "try: runtime.Interpreter.from_bytes(open(sys.argv[1],'rb').read(), arena_size=int(sys.argv[2]))\n"
        "except RuntimeError: sys.exit(1)\n"
    )
    ok = subprocess.run([sys.executable, "-c", check, str(model), str(arena.minimum_bytes)], check=False)
    small = subprocess.run([sys.executable, "-c", check, str(model), str(arena.minimum_bytes - 16)],
                           check=False, capture_output=True)
    assert ok.returncode == 0 and small.returncode != 0


def test_zero_weights_respect_per_channel_zero_points() -> None:
    values = np.array([[3, 0], [3, 0]], dtype=np.int8)  # channels on axis 1
    q = Quantization(scale=np.array([0.1, 0.2]), zero_point=np.array([3, 0]), axis=1)
    assert zero_mask(values, q).all()
    assert zero_mask(values, None).sum() == 2


def test_corrupt_flatbuffer_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "cut.tflite"
    bad.write_bytes((SHARED_MODELS / "micro_speech_quantized.tflite").read_bytes()[:600])
    with pytest.raises(ModelError, match=r"cut\.tflite.*damaged"):
        inspect_model(bad, arena=False)


def test_cli_inspect_json() -> None:
    result = CliRunner().invoke(models_app, ["inspect", str(SHARED_MODELS / "person_detect.tflite"),
                                             "--json", "--no-arena"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["operators"]["CONV_2D"] == 14 and doc["arena"] is None
    assert doc["inputs"][0]["shape"] == [1, 96, 96, 1]


def test_inspect_says_which_runtimes_accept_the_model() -> None:
    """person_detect runs in TFLM but LiteRT rejects it: say so before a sweep fails every local cell."""
    person = SHARED_MODELS / "person_detect.tflite"
    result = CliRunner().invoke(models_app, ["inspect", str(person), "--no-arena"])
    assert result.exit_code == 0, result.output
    assert "runs in: TFLite Micro" in result.output
    assert "LiteRT rejected: ValueError: quantized_dimension must be in range [0, 1)" in result.output
    assert "local and ssh cells will fail" in result.output
    doc = json.loads(CliRunner().invoke(models_app, ["inspect", str(person), "--no-arena", "--json"]).output)
    assert doc["runtimes"]["tflite-micro"] == "ok" and doc["runtimes"]["litert"].startswith("rejected: ")
    hello = inspect_model(SHARED_MODELS / "hello_world_int8.tflite", arena=False, runtimes=True)
    assert hello.runtimes == {"litert": "ok", "tflite-micro": "ok"}

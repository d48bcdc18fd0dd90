"""`bench models eval`: accuracy from a labelled .npz, and TFLM's agreement with LiteRT."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from harness.cli.models import models_app
from harness.errors import DatasetError
from harness.models.dataset import input_spec, load_dataset
from harness.models.evaluate import evaluate, tflm_outputs
from harness.models.tflite_file import read_model
from harness.models.zoo import EXAMPLE_DATASET, EXAMPLE_DIR

SHARED_MODELS = Path(__file__).resolve().parents[2] / "shared" / "models"
INPUTS = SHARED_MODELS / "inputs"
SPEECH = SHARED_MODELS / "micro_speech_quantized.tflite"
PERSON = SHARED_MODELS / "person_detect.tflite"
DIGITS = EXAMPLE_DIR / "digits_dense.tflite"
WORDS = {"yes": 2, "no": 3, "silence": 0, "noise": 0}  # labels: silence, unknown, yes, no

pytestmark = pytest.mark.skipif(not SPEECH.exists(), reason=f"no example models in {SHARED_MODELS}")


def speech_features() -> np.ndarray:
    return np.stack([np.fromfile(INPUTS / f"{w}_1000ms_features_int8_49x40.bin", np.int8) for w in WORDS])


@pytest.fixture
def speech_npz(tmp_path: Path) -> Path:
    path = tmp_path / "speech.npz"
    np.savez(path, x_test=speech_features(), y_test=np.array(list(WORDS.values())))
    return path


def test_tflm_outputs_match_tflite_micros_own_test() -> None:
    out = tflm_outputs(SPEECH.read_bytes(), speech_features()[:2])
    np.testing.assert_array_equal(out, [[-128, -128, 127, -128], [-128, -114, -128, 114]])


def test_micro_speech_accuracy_and_agreement(speech_npz: Path) -> None:
    report = evaluate(SPEECH, speech_npz)
    assert report.accuracy == 1.0 and report.accuracy_runtime == "litert-reference"
    assert report.tflm_accuracy == report.litert_accuracy == 1.0
    assert report.agreement is not None and report.agreement.samples == 4
    assert report.agreement.identical_argmax == 1.0 and report.agreement.max_lsb_diff <= 1


def test_person_detect_is_scored_by_tflm_alone(tmp_path: Path) -> None:
    npz = tmp_path / "person.npz"
    x = np.stack([np.fromfile(INPUTS / f"{n}_int8_96x96x1.bin", np.int8).reshape(96, 96, 1)
                  for n in ("person", "no_person")])
    np.savez(npz, x_test=x, y_test=np.array([1, 0]))
    report = evaluate(PERSON, npz)
    assert report.accuracy == report.tflm_accuracy == 1.0
    assert report.accuracy_runtime == "tflite-micro" and report.litert_accuracy is None
    assert report.agreement is None and "LiteRT rejects this model" in report.notes[0]


@pytest.mark.parametrize("kernels", ["reference", "builtin"])
def test_digits_float_inputs_are_quantized(kernels: str) -> None:
    report = evaluate(DIGITS, EXAMPLE_DATASET, kernels=kernels, samples=60)
    assert report.samples == 60 and report.accuracy is not None and report.accuracy > 0.9
    assert report.agreement is not None and report.agreement.identical_argmax >= 0.98


def test_float_inputs_use_the_models_scale_and_zero_point(tmp_path: Path) -> None:
    spec = input_spec(read_model(SPEECH))  # scale 0.1017, zero point -128
    npz = tmp_path / "f.npz"
    x = np.zeros((2, 1960), np.float32)
    x[1] = 1000.0  # saturates
    np.savez(npz, x_test=x, y_test=np.array([0, 1]))
    data = load_dataset(npz, spec)
    assert data.x.dtype == np.int8 and (data.x[0] == -128).all() and (data.x[1] == 127).all()


@pytest.mark.parametrize(("arrays", "message"), [
    ({"x_test": np.zeros((2, 1960), np.int8)}, r"has no 'y_test'"),
    ({"x_test": np.zeros((2, 49, 40), np.int8), "y_test": np.zeros(2)}, r"x_test has shape \(2, 49, 40\)"),
    ({"x_test": np.zeros((2, 1960), np.int8), "y_test": np.zeros(3)}, r"y_test has shape \(3,\)"),
    ({"x_test": np.zeros((1, 1960), np.int8), "y_test": np.array([7])}, r"y_test holds label 7.*4 classes"),
])
def test_bad_datasets_name_the_file_and_key(tmp_path: Path, arrays: dict, message: str) -> None:
    npz = tmp_path / "bad.npz"
    np.savez(npz, **arrays)
    with pytest.raises(DatasetError, match=message) as err:
        evaluate(SPEECH, npz)
    assert "bad.npz" in str(err.value)


def test_a_file_that_is_not_an_npz(tmp_path: Path) -> None:
    bogus = tmp_path / "data.npz"
    bogus.write_text("x_test,y_test\n1,2\n")
    with pytest.raises(DatasetError, match=r"data\.npz.*not a readable NumPy \.npz"):
        evaluate(SPEECH, bogus)


def test_cli_eval_json(speech_npz: Path) -> None:
    result = CliRunner().invoke(models_app, ["eval", str(SPEECH), "--data", str(speech_npz), "--kernels",
                                             "builtin", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output[result.output.index("{"):])
    assert doc["accuracy"] == 1.0 and doc["kernels"] == "builtin"

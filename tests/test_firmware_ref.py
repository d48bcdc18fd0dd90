"""The C reference backend (firmware/backends/ref), built for the host, is bit-identical to TFLM.

The oracle is the tflite-micro Python runtime (real TFLM kernels). Every variant of the bundled digits
family runs on its test set plus random inputs; the TFLM example models too. Also: models the backend
cannot run are refused by name, and a too-small arena answers the bytes required.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from harness.models.evaluate import tflm_outputs as tflm_reference

ROOT = Path(__file__).resolve().parents[1]
FAMILY = ROOT / "harness" / "models" / "data" / "digits"
SHARED = ROOT.parent / "shared" / "models"

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a host C compiler")


@pytest.fixture(scope="module")
def ref_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    build = tmp_path_factory.mktemp("fw-host")
    subprocess.run(["make", "-s", "-C", str(ROOT / "firmware" / "host"), f"BUILD={build}", "ref_run"], check=True)
    return build / "ref_run"


def run_ref(binary: Path, model: Path, xs: np.ndarray, arena: int = 1 << 20) -> tuple[dict, np.ndarray]:
    r = subprocess.run([str(binary), str(model), str(arena)], input=xs.tobytes(), capture_output=True, timeout=120)
    meta = json.loads(r.stderr.decode().strip().splitlines()[0])
    return meta, np.frombuffer(r.stdout, np.int8)


def oracle(data: bytes, xs: np.ndarray) -> np.ndarray:
    """The TFLM runtime's int8 outputs, one flat row per input: the oracle the firmware must match."""
    return tflm_reference(data, xs, arena_size=1 << 20).reshape(len(xs), -1)


def quantized_test_set(model: bytes) -> np.ndarray:
    from tflite_micro import runtime

    q = runtime.Interpreter.from_bytes(model, arena_size=1 << 20).get_input_details(0)["quantization_parameters"]
    x = np.load(FAMILY / "digits_test.npz")["x_test"]
    xq = np.round(x / q["scales"][0]) + q["zero_points"][0]
    return np.clip(xq, -128, 127).astype(np.int8).reshape(len(x), -1)


@pytest.mark.parametrize("path", sorted(FAMILY.glob("*.tflite")), ids=lambda p: p.stem)
def test_family_variant_is_bit_identical_to_tflm(ref_run: Path, path: Path) -> None:
    data = path.read_bytes()
    xq = quantized_test_set(data)
    xs = np.concatenate([xq, np.random.default_rng(0).integers(-128, 128, (100, xq.shape[1]), dtype=np.int8)])
    meta, got = run_ref(ref_run, path, xs)
    assert meta["status"] == 0 and meta["ops"] == 8
    expected = oracle(data, xs)
    np.testing.assert_array_equal(got.reshape(expected.shape), expected)


@pytest.mark.parametrize(("name", "inputs", "n_random"), [
    ("hello_world_int8", [], 64),
    ("micro_speech_quantized", ["yes_1000ms_features_int8_49x40", "no_1000ms_features_int8_49x40",
                                "silence_1000ms_features_int8_49x40", "noise_1000ms_features_int8_49x40"], 16),
    ("person_detect", ["person_int8_96x96x1", "no_person_int8_96x96x1"], 2),
])  # fmt: skip
def test_tflm_example_model_is_bit_identical(ref_run: Path, name: str, inputs: list[str], n_random: int) -> None:
    path = SHARED / f"{name}.tflite"
    if not path.exists():
        pytest.skip(f"{path} not available")
    data = path.read_bytes()
    xs = [np.fromfile(SHARED / "inputs" / f"{i}.bin", np.int8) for i in inputs]
    size = xs[0].size if xs else 1
    xs = np.stack(xs + list(np.random.default_rng(1).integers(-128, 128, (n_random, size), dtype=np.int8)))
    meta, got = run_ref(ref_run, path, xs)
    assert meta["status"] == 0
    expected = oracle(data, xs)
    np.testing.assert_array_equal(got.reshape(expected.shape), expected)
    if name == "person_detect":
        assert int(np.argmax(got[:2])) == 1  # person.bin scores "person"


@pytest.mark.parametrize(("name", "op"), [("trained_lstm_int8", "UNIDIRECTIONAL_SEQUENCE_LSTM")])
def test_unsupported_operator_is_named(ref_run: Path, name: str, op: str) -> None:
    path = SHARED / f"{name}.tflite"
    if not path.exists():
        pytest.skip(f"{path} not available")
    meta, _ = run_ref(ref_run, path, np.zeros(0, np.int8))
    assert meta["status"] == 9 and meta["op"] == op  # E_UNSUPPORTED_OP


def test_small_arena_reports_the_bytes_required(ref_run: Path) -> None:
    path = FAMILY / "digits_dense.tflite"
    ok, _ = run_ref(ref_run, path, np.zeros(0, np.int8))
    meta, _ = run_ref(ref_run, path, np.zeros(0, np.int8), arena=1000)
    assert meta["status"] == 10 and meta["required"] == ok["arena_used"]  # E_ARENA_TOO_SMALL
    exact, _ = run_ref(ref_run, path, np.zeros(0, np.int8), arena=ok["arena_used"])
    assert exact["status"] == 0


def test_damaged_models_are_refused_not_crashed(ref_run: Path, tmp_path: Path) -> None:
    data = bytearray((FAMILY / "digits_dense.tflite").read_bytes())
    rng = np.random.default_rng(2)
    for k in range(40):
        bad = bytearray(data[: int(rng.integers(8, len(data)))] if k % 4 == 0 else data)
        for pos in rng.integers(0, len(bad), 8):
            bad[pos] = int(rng.integers(0, 256))
        path = tmp_path / "bad.tflite"
        path.write_bytes(bytes(bad))
        r = subprocess.run([str(ref_run), str(path), "100000"], input=bytes(64), capture_output=True, timeout=30)
        assert r.returncode in (0, 3), r.stderr  # ran (garbage weights) or refused; never a crash

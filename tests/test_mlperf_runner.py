"""MLCommons' MLPerf Tiny runner (benchmark/runner/main.py from ../shared/third_party, unchanged) measures
bench firmware's MLPerf mode on QEMU in performance mode, and its m-lap-us throughput agrees with
bench's own latency for the same model on the same emulated board (bench protocol, `qemu` kind)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from devices import qemu
from devices.base import ModelBinary, RunSpec
from devices.mlperf import images, official_runner
from harness.models.dataset import input_spec, load_dataset
from harness.models.tflite_file import read_model

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "harness" / "models" / "data" / "digits"
DENSE = DIGITS / "digits_dense.tflite"


def _missing() -> str | None:
    if (why := qemu.unavailable_reason() or images.missing()) is not None:
        return why
    if not (official_runner.RUNNER / "main.py").is_file():
        return f"the MLPerf Tiny runner is not at {official_runner.RUNNER}"
    try:
        import sklearn  # noqa: F401
        import usb.core  # noqa: F401
        import yaml  # noqa: F401
    except ImportError as exc:
        return f"the runner's Python dependencies are missing ({exc}); install the test extra"
    return None


pytestmark = [pytest.mark.slow, pytest.mark.skipif(_missing() is not None, reason=f"mlperf runner: {_missing()}")]


def test_official_runner_completes_and_agrees_with_bench(tmp_path: Path) -> None:
    image = images.build(DENSE)["bench_mlperf.elf"]
    mf = read_model(DENSE)
    data = load_dataset(DIGITS / "digits_test.npz", input_spec(mf), samples=5)

    # bench's own figure: the bench firmware (same board, same backend) over bench's wire protocol.
    dev = qemu.QemuDevice("qemu", qemu.QemuSettings(backend="ref", op_profile=False))
    dev.open()
    try:
        dev.deploy(ModelBinary("digits_dense", mf.sha256, mf.data))
        ours = dev.run(RunSpec(warmup=1, iterations=5, timing_input=data.x[0]))
    finally:
        dev.close()
    bench_us = float(np.median(ours.latency_ns)) / 1e3

    # Windows long enough that the runner accepts the run (its loop must last >= 10 s of wall time).
    n = official_runner.iterations_for(image)
    result = official_runner.measure(image, tmp_path / "runner", "digits_dense", [x.tobytes() for x in data.x],
                                     [int(y) for y in data.y], classes=10, iterations=n)
    assert result.returncode == 0, result.output[-3000:]
    assert len(result.throughputs) == 5, result.output[-3000:]
    assert not result.errors, result.errors
    assert result.median_throughput is not None, result.output[-2000:]  # "Median throughput is ... inf./sec."
    runner_us = 1e6 / result.median_throughput
    # Both are QEMU instruction-count time on one timer; the runner's window also holds the loop and
    # one timestamp line (a few µs in seconds), and prints throughput with 3 decimals.
    assert runner_us == pytest.approx(bench_us, rel=0.005), (runner_us, bench_us)
    assert (result.session_dir / "results.txt").is_file()
    assert hashlib.sha256(DENSE.read_bytes()).hexdigest() == mf.sha256

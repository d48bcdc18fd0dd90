from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.report_store import McuRun

REPO = Path(__file__).resolve().parents[1]
#: TFLite Micro's example models, beside the checkout (CI clones with ../shared next to it).
SHARED_MODELS = REPO.parent / "shared" / "models"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh working directory, as a user would have: no bench.toml, no bench.db."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_bench(*args: str, cwd: Path, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess[str]:
    """Run the real `bench` entry point in a child process, as a user's shell would."""
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env, check=False, **kwargs)


def write_config(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture(scope="session", autouse=True)
def _qemu_images() -> None:
    """Build the QEMU firmware images the suite uses once, up front, outside any test's timeout.

    The default `qemu` device is TFLM + CMSIS-NN when its offline tree is here, and the sweep tests
    also use `tflm`: a cold TFLM build takes minutes, and inside a `bench sweep` child with a
    300 s timeout it would fail the test. Cached by input hash, so a warm run costs about a second."""
    from devices import firmware, qemu

    if qemu.unavailable_reason() is not None or firmware.missing_tools("cortex-m"):
        return
    for backend in dict.fromkeys([firmware.default_backend(), "tflm", "ref"]):
        if backend == "ref" or firmware.tflm_tree(backend) is not None:
            qemu.locate(qemu.QemuSettings(backend=backend))  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def mcu_run(tmp_path_factory: pytest.TempPathFactory) -> McuRun:
    """One sweep of the bundled family on sim + qemu (tests.report_store.build_mcu_run), shared by the
    report tests that need estimated and emulated boards, accuracy and energy; skipped without QEMU."""
    from devices import qemu
    from tests.report_store import build_mcu_run

    if qemu.unavailable_reason() is not None:
        pytest.skip(f"qemu: {qemu.unavailable_reason()}")
    return build_mcu_run(tmp_path_factory.mktemp("mcu-run"))

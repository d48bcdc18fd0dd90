"""`bench firmware build|flash`: thin wrappers that build with the board's tools or say what is missing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import run_bench


@pytest.mark.skipif(not (shutil.which("cmake") and shutil.which("arm-none-eabi-gcc")), reason="needs cmake, arm gcc")
def test_build_the_qemu_board(tmp_path: Path) -> None:
    r = run_bench("firmware", "build", "--board", "qemu-mps2-an386", "--build-dir", str(tmp_path / "b"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "b" / "bench_fw.elf").is_file()


@pytest.mark.skipif(shutil.which("idf.py") is not None, reason="ESP-IDF is installed here")
def test_missing_toolchain_is_a_clear_error(tmp_path: Path) -> None:
    r = run_bench("firmware", "build", "--board", "esp32", cwd=tmp_path)
    assert r.returncode == 2 and "idf.py not found" in r.stderr


def test_unknown_board_and_flashing_an_emulator_are_usage_errors(tmp_path: Path) -> None:
    r = run_bench("firmware", "build", "--board", "nope", cwd=tmp_path)
    assert r.returncode == 2 and "Known boards" in r.stderr
    r = run_bench("firmware", "flash", "--board", "qemu-mps2-an386", cwd=tmp_path)
    assert r.returncode == 2 and "emulator" in r.stderr


def test_unknown_backend_is_a_usage_error(tmp_path: Path) -> None:
    r = run_bench("firmware", "build", "--board", "qemu-mps2-an386", "--backend", "tflm-nope", cwd=tmp_path)
    assert r.returncode == 2 and "tflm-cmsis-nn" in r.stderr

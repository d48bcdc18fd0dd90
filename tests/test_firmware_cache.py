"""Firmware images are built once per hash of their inputs: a second request is a cache hit that runs no
build tool, and the hash moves with the backend, the TFLM tree and our own sources."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from devices import firmware

pytestmark = pytest.mark.skipif(bool(firmware.missing_tools("cortex-m")), reason="needs cmake and arm-none-eabi-gcc")


def test_second_request_is_a_cache_hit_without_a_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENCH_FIRMWARE_CACHE", str(tmp_path / "cache"))
    first = firmware.image(firmware.QEMU_BOARD, "ref")
    assert not first.cached and first.path.is_file() and first.build_s is not None
    assert first.sizes["text"] > 0 and first.sizes["arena_buffer"] > 0 and first.tflm_commit is None

    def no_build(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a cache hit ran {args}")

    monkeypatch.setattr(firmware, "_run", no_build)
    second = firmware.image(firmware.QEMU_BOARD, "ref")
    assert second.cached and second.path == first.path and second.input_hash == first.input_hash
    assert second.sizes == first.sizes


def test_the_input_hash_follows_backend_tree_and_sources(tmp_path: Path) -> None:
    ref = firmware.input_hash(firmware.QEMU_BOARD, "ref", None)
    assert ref == firmware.input_hash(firmware.QEMU_BOARD, "ref", None)
    tree = firmware.tflm_tree("tflm")
    if tree is None:
        pytest.skip("no offline TFLM tree")
    copy = tmp_path / "tree"
    kernels = Path("tensorflow") / "lite" / "micro" / "kernels"
    shutil.copytree(tree / kernels, copy / kernels)
    a = firmware.input_hash(firmware.QEMU_BOARD, "tflm", copy)
    assert a not in (ref, firmware.input_hash(firmware.QEMU_BOARD, "tflm-cmsis-nn", copy))
    (copy / "tensorflow" / "lite" / "micro" / "kernels" / "conv.cc").write_text("// changed\n")
    assert firmware.input_hash(firmware.QEMU_BOARD, "tflm", copy) != a


def test_unknown_backend_and_default() -> None:
    with pytest.raises(firmware.ConfigError, match="tflm-cmsis-nn"):
        firmware.check_backend("cmsis")
    expected = "tflm-cmsis-nn" if firmware.tflm_tree("tflm-cmsis-nn") else "ref"
    assert firmware.default_backend() == expected
    assert len(firmware.tflm_commit()) == 40

"""Building the MLPerf Tiny firmwares of firmware/mlperf (CMake), each with one model built in.

`mlperf_peer.elf` is MLPerf Tiny's official benchmark/api code with bench's submitter port (the peer
DUT the `mlperf` kind is tested against); `bench_mlperf.elf` is bench firmware's own MLPerf mode
(what the official runner measures). The mlperf-tiny tree is used in place, never copied.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from devices import firmware
from devices.firmware import FirmwareError

SOURCES = firmware.FIRMWARE / "mlperf"
DEFAULT_MODEL = firmware.ROOT / "harness" / "models" / "data" / "digits" / "digits_dense.tflite"
MLPERF_TINY = firmware.ROOT.parent / "shared" / "third_party" / "mlperf-tiny"
IMAGES = ("mlperf_peer.elf", "bench_mlperf.elf")


def missing() -> str | None:
    """Why the images cannot be built here, or None."""
    tools = firmware.missing_tools("cortex-m")
    if tools:
        return f"{', '.join(tools)} not found"
    if not (MLPERF_TINY / "benchmark" / "api" / "internally_implemented.cpp").is_file():
        return f"the mlperf-tiny tree is not at {MLPERF_TINY}"
    return None


#: A prebuilt libbench_tflm.a (same tree and backend) to link instead of the bench firmware's build.
TFLM_LIBRARY_ENV = "BENCH_TFLM_LIBRARY"


def tflm_library(backend: str, tree: Path | None) -> Path:
    """libbench_tflm.a of the bench firmware's build for the QEMU board ($BENCH_TFLM_LIBRARY if set): the
    image cache's copy, else the build directory's (kept in the cache then), building it when absent."""
    if os.environ.get(TFLM_LIBRARY_ENV):
        given = Path(os.environ[TFLM_LIBRARY_ENV])
        if not given.is_file():
            raise FirmwareError(f"${TFLM_LIBRARY_ENV}={given} does not exist.")
        return given.resolve()
    entry = firmware.cache_entry(firmware.QEMU_BOARD, backend, tree)
    if (entry / firmware.TFLM_LIBRARY).is_file():
        return (entry / firmware.TFLM_LIBRARY).resolve()
    lib = firmware.default_build_dir(firmware.QEMU_BOARD, backend) / firmware.TFLM_LIBRARY
    if not lib.is_file():
        firmware.build(firmware.QEMU_BOARD, backend=backend, tflm_dir=tree)
    firmware.store_tflm_library(entry, lib)
    if not lib.is_file():
        raise FirmwareError(f"the {backend} build for {firmware.QEMU_BOARD} left no {lib}.",
                            hint="Pass reuse_tflm=False to compile TFLM into the MLPerf build itself.")
    return lib.resolve()


def build(model: Path = DEFAULT_MODEL, *, model_id: str | None = None, backend: str = "ref",
          energy_mode: bool = False, build_dir: Path | None = None, tflm_dir: Path | None = None,
          mlperf_tiny: Path = MLPERF_TINY, jobs: int = 2, reuse_tflm: bool = True,
          tflm_lib: Path | None = None) -> dict[str, Path]:
    """Configure (once per option set) and build both images; returns {image name: path}.

    With a TFLM backend, TFLM itself is not compiled again: the bench firmware's build of it for the
    QEMU board (the one the `qemu` kind uses, same tree and CPU flags) is linked (`reuse_tflm`)."""
    model = Path(model).resolve()
    if not model.is_file():
        raise FirmwareError(f"model {model} does not exist.", hint="Give a .tflite file.")
    tools = firmware.missing_tools("cortex-m")
    if tools:
        raise FirmwareError(f"cannot build the MLPerf firmware: {', '.join(tools)} not found.",
                            hint="apt-get install --no-install-recommends cmake gcc-arm-none-eabi "
                            "libnewlib-arm-none-eabi")  # fmt: skip
    options = [f"-DMODEL={model}", f"-DBACKEND={backend}", f"-DENERGY_MODE={int(energy_mode)}",
               f"-DMLPERF_TINY_DIR={Path(mlperf_tiny).resolve()}", "-DCMAKE_BUILD_TYPE=Release"]  # fmt: skip
    if model_id:
        options.append(f"-DMODEL_ID={model_id}")
    firmware.check_backend(backend)
    tree = tflm_dir or (firmware.tflm_tree(backend) if backend != "ref" else None)
    if tree:
        options.append(f"-DTFLM_DIR={Path(tree).resolve()}")
    if backend != "ref" and (reuse_tflm or tflm_lib):
        options.append(f"-DTFLM_LIBRARY={Path(tflm_lib).resolve() if tflm_lib else tflm_library(backend, tree)}")
    key = hashlib.sha1("\0".join(options).encode()).hexdigest()[:10]
    out = build_dir or firmware.default_build_dir(firmware.QEMU_BOARD).parent / f"mlperf-{key}"
    with firmware._build_lock(out):
        if not (out / "CMakeCache.txt").exists():
            firmware._run(["cmake", "-S", str(SOURCES), "-B", str(out), *options], "cmake configure (mlperf)")
        nice = ["nice", "-n", "10"] if shutil.which("nice") else []  # TFLM's compile is long; share the machine
        firmware._run([*nice, "cmake", "--build", str(out), "-j", str(jobs)], "cmake build (mlperf)")
    return {name: out / name for name in IMAGES}

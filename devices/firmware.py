"""Building and flashing the bench firmware with each board's own tools (CMake, idf.py, pyocd, esptool).

Library functions behind `bench firmware build|flash` and the `qemu` device's image: they only run
the board's tools and say clearly which one is missing. Nothing here knows the wire protocol.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from harness.errors import BenchError, ConfigError

log = logging.getLogger("bench.firmware")

ROOT = Path(__file__).resolve().parent.parent
FIRMWARE = ROOT / "firmware"
CORTEX_M = FIRMWARE / "ports" / "cortex-m"
ESP32 = FIRMWARE / "ports" / "esp32"
QEMU_BOARD = "qemu-mps2-an386"


class FirmwareError(BenchError):
    """A board's build or flash tool failed (exit code 2, like every usage/config problem)."""


@dataclass(frozen=True)
class Board:
    name: str
    port: str  # "cortex-m" or "esp32"
    flash_tool: str | None  # pyocd/esptool, None for an emulator
    target: str | None = None  # pyocd target name


BOARDS: dict[str, Board] = {
    QEMU_BOARD: Board(QEMU_BOARD, "cortex-m", None),
    "nucleo-l476rg": Board("nucleo-l476rg", "cortex-m", "pyocd", "stm32l476rg"),
    "esp32": Board("esp32", "esp32", "esptool"),
    "esp32s3": Board("esp32s3", "esp32", "esptool"),
}


def board(name: str) -> Board:
    if name not in BOARDS:
        raise ConfigError(f"unknown board {name!r}.", hint=f"Known boards: {', '.join(BOARDS)}.")
    return BOARDS[name]


def missing_tools(port: str) -> list[str]:
    """The build tools a port needs that are not on PATH."""
    need = {"cortex-m": ["cmake", "arm-none-eabi-gcc"], "esp32": ["idf.py"]}[port]
    return [t for t in need if shutil.which(t) is None]


def default_build_dir(board_name: str) -> Path:
    """Beside the sources, in a git-ignored build/ directory; BENCH_FIRMWARE_BUILD overrides the root."""
    base = os.environ.get("BENCH_FIRMWARE_BUILD")
    return (Path(base) if base else ROOT / "build" / "firmware") / board_name


@contextlib.contextmanager
def _build_lock(build_dir: Path) -> Iterator[None]:
    """Concurrent builds of one directory (sweep lanes, test workers) take turns."""
    build_dir.mkdir(parents=True, exist_ok=True)
    with (build_dir / ".bench-build.lock").open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _run(cmd: list[str], step: str, cwd: Path | None = None) -> None:
    log.info("%s: %s", step, " ".join(cmd))
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        tail = "\n".join((r.stdout + r.stderr).strip().splitlines()[-25:])
        raise FirmwareError(f"{step} failed (exit {r.returncode}): {' '.join(cmd)}\n{tail}")


def build(board_name: str, build_dir: Path | None = None, *, backend: str = "ref", jobs: int = 2) -> Path:
    """Build the firmware for a board; returns the image (ELF for Cortex-M, the app .bin for ESP32)."""
    b = board(board_name)
    missing = missing_tools(b.port)
    if missing:
        hint = {"cortex-m": "apt-get install --no-install-recommends cmake gcc-arm-none-eabi libnewlib-arm-none-eabi",
                "esp32": "install ESP-IDF (v5.x) and run its export.sh so idf.py is on PATH"}[b.port]  # fmt: skip
        raise FirmwareError(f"cannot build for {board_name}: {', '.join(missing)} not found.", hint=hint)
    out = build_dir or default_build_dir(board_name)
    if b.port == "esp32":
        _run(["idf.py", "-C", str(ESP32), "-B", str(out), "set-target", board_name], "idf.py set-target")
        _run(["idf.py", "-C", str(ESP32), "-B", str(out), "build"], "idf.py build")
        return out / "bench_fw.bin"
    with _build_lock(out):
        if not (out / "CMakeCache.txt").exists():
            _run(["cmake", "-S", str(CORTEX_M), "-B", str(out), f"-DBOARD={board_name}", f"-DBACKEND={backend}",
                  "-DCMAKE_BUILD_TYPE=Release"], "cmake configure")  # fmt: skip
        _run(["cmake", "--build", str(out), "-j", str(jobs)], "cmake build")
    return out / "bench_fw.elf"


def flash(board_name: str, image: Path | None = None, port: str | None = None) -> list[str]:
    """Flash a built image with the board's tool; returns the command run."""
    b = board(board_name)
    if b.flash_tool is None:
        raise ConfigError(f"{board_name} is an emulator: nothing to flash.",
                          hint="Use the `qemu` device kind; it starts QEMU with the image itself.")  # fmt: skip
    if b.port == "esp32":
        if shutil.which("idf.py"):
            cmd = ["idf.py", "-C", str(ESP32), "-B", str(default_build_dir(board_name))]
            cmd += (["-p", port] if port else []) + ["flash"]
        elif shutil.which("esptool.py") or shutil.which("esptool"):
            tool = shutil.which("esptool.py") or "esptool"
            out = default_build_dir(board_name)
            # Offsets of ESP-IDF's default layout: bootloader (0x1000 on ESP32, 0x0 on S3), table, app.
            boot = "0x1000" if board_name == "esp32" else "0x0"
            cmd = [tool, "--chip", board_name, *(["-p", port] if port else []), "-b", "921600", "write_flash",
                   boot, str(out / "bootloader" / "bootloader.bin"), "0x8000",
                   str(out / "partition_table" / "partition-table.bin"), "0x10000", str(image or out / "bench_fw.bin")]
        else:
            raise FirmwareError("cannot flash an ESP32: neither idf.py nor esptool is on PATH.",
                                hint="pip install esptool, or install ESP-IDF.")  # fmt: skip
    else:
        tool = shutil.which("pyocd") or shutil.which("probe-rs")
        if tool is None:
            raise FirmwareError(f"cannot flash {board_name}: neither pyocd nor probe-rs is on PATH.",
                                hint="pip install pyocd (ST-LINK/CMSIS-DAP probes), or install probe-rs.")
        elf = image or default_build_dir(board_name) / "bench_fw.elf"
        if not elf.exists():
            raise ConfigError(f"{elf} does not exist.", hint=f"Run `bench firmware build --board {board_name}` first.")
        if Path(tool).name == "pyocd":
            cmd = [tool, "flash", "-t", b.target or board_name, *(["-u", port] if port else []), str(elf)]
        else:
            cmd = [tool, "download", "--chip", "STM32L476RGTx", str(elf)]
    _run(cmd, "flash")
    return cmd

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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from benchcore.errors import BenchError, ConfigError

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
    """A board the firmware builds for: which port builds it, and what its flash tools call its chip."""

    name: str
    port: str  # a key of PORTS
    #: pyOCD's target name and probe-rs's chip name (Cortex-M boards on a debug probe).
    pyocd_target: str | None = None
    probe_rs_chip: str | None = None
    #: ESP-IDF's bootloader offset for this chip (0x1000 on the ESP32, 0x0 on the S3 and later).
    esp_bootloader_offset: str = "0x0"
    #: An emulator (QEMU): built, never flashed.
    emulated: bool = False


BOARDS: dict[str, Board] = {}


def register_board(b: Board) -> None:
    """Add a board (a plug-in, or a new port's boards); its port must exist."""
    if b.port not in PORTS:
        raise ConfigError(f"board {b.name!r} names unknown port {b.port!r}.", hint=f"Ports: {', '.join(PORTS)}.")
    BOARDS[b.name] = b


def board(name: str) -> Board:
    if name not in BOARDS:
        raise ConfigError(f"unknown board {name!r}.", hint=f"Known boards: {', '.join(BOARDS)}.")
    return BOARDS[name]


@dataclass(frozen=True)
class Port:
    """How one firmware port builds and flashes: its tools, and the two steps."""

    name: str
    tools: tuple[str, ...]
    install_hint: str
    build: Callable[[Board, Path, str, int], Path]
    flash: Callable[[Board, Path | None, str | None], list[str]]


def missing_tools(port: str) -> list[str]:
    """The build tools a port needs that are not on PATH."""
    return [t for t in PORTS[port].tools if shutil.which(t) is None]


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
    port = PORTS[b.port]
    missing = missing_tools(b.port)
    if missing:
        raise FirmwareError(f"cannot build for {board_name}: {', '.join(missing)} not found.", hint=port.install_hint)
    return port.build(b, build_dir or default_build_dir(board_name), backend, jobs)


def flash(board_name: str, image: Path | None = None, port: str | None = None) -> list[str]:
    """Flash a built image with the board's tool; returns the command run."""
    b = board(board_name)
    if b.emulated:
        raise ConfigError(f"{board_name} is an emulator: nothing to flash.",
                          hint="Use the `qemu` device kind; it starts QEMU with the image itself.")  # fmt: skip
    cmd = PORTS[b.port].flash(b, image, port)
    _run(cmd, "flash")
    return cmd


# --- the ports ------------------------------------------------------------------------------------

def _build_cortex_m(b: Board, out: Path, backend: str, jobs: int) -> Path:
    with _build_lock(out):
        if not (out / "CMakeCache.txt").exists():
            _run(["cmake", "-S", str(CORTEX_M), "-B", str(out), f"-DBOARD={b.name}", f"-DBACKEND={backend}",
                  "-DCMAKE_BUILD_TYPE=Release"], "cmake configure")  # fmt: skip
        _run(["cmake", "--build", str(out), "-j", str(jobs)], "cmake build")
    return out / "bench_fw.elf"


def _flash_cortex_m(b: Board, image: Path | None, port: str | None) -> list[str]:
    tool = shutil.which("pyocd") or shutil.which("probe-rs")
    if tool is None:
        raise FirmwareError(f"cannot flash {b.name}: neither pyocd nor probe-rs is on PATH.",
                            hint="pip install pyocd (ST-LINK/CMSIS-DAP probes), or install probe-rs.")
    elf = image or default_build_dir(b.name) / "bench_fw.elf"
    if not elf.exists():
        raise ConfigError(f"{elf} does not exist.", hint=f"Run `bench firmware build --board {b.name}` first.")
    if Path(tool).name == "pyocd":
        return [tool, "flash", "-t", b.pyocd_target or b.name, *(["-u", port] if port else []), str(elf)]
    if b.probe_rs_chip is None:
        raise FirmwareError(f"cannot flash {b.name} with probe-rs: the board names no probe-rs chip.",
                            hint="Install pyocd, or register the board with its probe_rs_chip.")
    return [tool, "download", "--chip", b.probe_rs_chip, str(elf)]


def _build_esp32(b: Board, out: Path, backend: str, jobs: int) -> Path:
    _run(["idf.py", "-C", str(ESP32), "-B", str(out), "set-target", b.name], "idf.py set-target")
    _run(["idf.py", "-C", str(ESP32), "-B", str(out), "build"], "idf.py build")
    return out / "bench_fw.bin"


def _flash_esp32(b: Board, image: Path | None, port: str | None) -> list[str]:
    out = default_build_dir(b.name)
    if shutil.which("idf.py"):
        return ["idf.py", "-C", str(ESP32), "-B", str(out), *(["-p", port] if port else []), "flash"]
    tool = shutil.which("esptool.py") or shutil.which("esptool")
    if tool is None:
        raise FirmwareError("cannot flash an ESP32: neither idf.py nor esptool is on PATH.",
                            hint="pip install esptool, or install ESP-IDF.")  # fmt: skip
    # ESP-IDF's default layout: bootloader (at the chip's offset), partition table, app.
    return [tool, "--chip", b.name, *(["-p", port] if port else []), "-b", "921600", "write_flash",
            b.esp_bootloader_offset, str(out / "bootloader" / "bootloader.bin"), "0x8000",
            str(out / "partition_table" / "partition-table.bin"), "0x10000", str(image or out / "bench_fw.bin")]


PORTS: dict[str, Port] = {
    "cortex-m": Port("cortex-m", ("cmake", "arm-none-eabi-gcc"),
                     "apt-get install --no-install-recommends cmake gcc-arm-none-eabi libnewlib-arm-none-eabi",
                     _build_cortex_m, _flash_cortex_m),
    "esp32": Port("esp32", ("idf.py",), "install ESP-IDF (v5.x) and run its export.sh so idf.py is on PATH",
                  _build_esp32, _flash_esp32),
}

for _board in (
    Board(QEMU_BOARD, "cortex-m", emulated=True),
    Board("nucleo-l476rg", "cortex-m", pyocd_target="stm32l476rg", probe_rs_chip="STM32L476RGTx"),
    Board("esp32", "esp32", esp_bootloader_offset="0x1000"),
    Board("esp32s3", "esp32"),
):
    register_board(_board)

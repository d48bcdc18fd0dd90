"""Building and flashing the bench firmware with each board's own tools (CMake, idf.py, pyocd, esptool).

Library functions behind `bench firmware build|flash` and the `qemu` device's image: they only run
the board's tools and say clearly which one is missing. Nothing here knows the wire protocol.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from benchcore.errors import BenchError, ConfigError
from devices.boards import BOARDS as BOARDS  # re-exported: callers name boards through firmware
from devices.boards import Board, board

log = logging.getLogger("bench.firmware")

ROOT = Path(__file__).resolve().parent.parent
FIRMWARE = ROOT / "firmware"
CORTEX_M = FIRMWARE / "ports" / "cortex-m"
ESP32 = FIRMWARE / "ports" / "esp32"
QEMU_BOARD = "qemu-mps2-an386"
TFLM_COMMIT_FILE = FIRMWARE / "backends" / "tflm" / "TFLM_COMMIT"

#: Inference backends of the Cortex-M port: our C reference kernels, TFLite Micro with its reference
#: kernels, TFLite Micro with CMSIS-NN. Value: the create_tflm_tree.py tree under third_party_dir().
BACKENDS: dict[str, str | None] = {"ref": None, "tflm": "tflm-ref", "tflm-cmsis-nn": "tflm-cmsis-nn"}


class FirmwareError(BenchError):
    """A board's build or flash tool failed (exit code 2, like every usage/config problem)."""


def missing_tools(port: str) -> list[str]:
    """The build tools a port needs that are not on PATH."""
    return [t for t in PORTS[port].tools if shutil.which(t) is None]


def default_build_dir(board_name: str, backend: str = "ref") -> Path:
    """Beside the sources, in a git-ignored build/ directory; BENCH_FIRMWARE_BUILD overrides the root."""
    base = os.environ.get("BENCH_FIRMWARE_BUILD")
    name = board_name if backend == "ref" else f"{board_name}-{backend}"
    return (Path(base) if base else ROOT / "build" / "firmware") / name


def tflm_commit() -> str:
    """The tflite-micro commit every TFLM build uses (pinned in firmware/backends/tflm/TFLM_COMMIT)."""
    return TFLM_COMMIT_FILE.read_text().split()[0]


def third_party_dir() -> Path:
    """Where the offline TFLM trees live: $BENCH_THIRD_PARTY, else ../shared/third_party beside the repo."""
    env = os.environ.get("BENCH_THIRD_PARTY")
    return Path(env) if env else ROOT.parent / "shared" / "third_party"


def tflm_tree(backend: str) -> Path | None:
    """The offline tree for a TFLM backend, None when absent (CMake then fetches the pinned commit)."""
    check_backend(backend)
    sub = BACKENDS[backend]
    tree = third_party_dir() / sub if sub else None
    return tree if tree is not None and (tree / "tensorflow" / "lite" / "micro").is_dir() else None


def check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ConfigError(f"unknown firmware backend {backend!r}.", hint=f"Known backends: {', '.join(BACKENDS)}.")
    return backend


def default_backend() -> str:
    """TFLM with CMSIS-NN when its tree is here (what a product ships), else our reference kernels."""
    return "tflm-cmsis-nn" if tflm_tree("tflm-cmsis-nn") is not None else "ref"


@dataclass(frozen=True)
class Image:
    """A built firmware image and what it is: backend, TFLM commit, the hash of its inputs, its sizes."""

    path: Path
    board: str
    backend: str | None  # None: a prebuilt image given by path (the firmware's HELLO says what it is)
    tflm_commit: str | None
    input_hash: str | None
    sizes: dict[str, int] = field(default_factory=dict)  # text/data/bss of the ELF (+ buffers inside bss)
    #: wall time of the build that made this entry (None: not built by us); incremental when the build
    #: directory already held objects, so a cold figure needs an empty BENCH_FIRMWARE_BUILD
    build_s: float | None = None
    cached: bool = False  # taken from the on-disk cache without running the build

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["path"] = str(self.path)
        return d


def cache_root() -> Path:
    """Built images by input hash: $BENCH_FIRMWARE_CACHE, else $XDG_CACHE_HOME/bench/firmware."""
    env = os.environ.get("BENCH_FIRMWARE_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "bench" / "firmware"


def _hash_files(h: Any, root: Path, paths: list[Path]) -> None:
    for p in sorted(paths):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode() + b"\0")
            h.update(hashlib.sha256(p.read_bytes()).digest())


_TREE_DIGESTS: dict[tuple[str, int], str] = {}
_SOURCE_SUFFIXES = {".c", ".cc", ".h", ".hpp", ".inc"}


def _tree_digest(tree: Path) -> str:
    """Content hash of a TFLM tree (~10 MB): re-read only when a file's size or mtime changed."""
    files = sorted(p for p in tree.rglob("*") if p.suffix in _SOURCE_SUFFIXES and p.is_file())
    stamp = hash(tuple((str(p), st.st_size, st.st_mtime_ns) for p in files for st in [p.stat()]))
    key = (str(tree), stamp)
    if key not in _TREE_DIGESTS:
        h = hashlib.sha256()
        _hash_files(h, tree, files)
        _TREE_DIGESTS[key] = h.hexdigest()
    return _TREE_DIGESTS[key]


@functools.lru_cache(maxsize=4)
def _tool_version(tool: str) -> str:
    try:
        return subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=30).stdout.split("\n")[0]
    except (OSError, subprocess.SubprocessError):
        return "missing"


def input_hash(board_name: str, backend: str, tree: Path | None) -> str:
    """What decides a Cortex-M image: board, backend, our firmware sources, the TFLM tree, the tools."""
    h = hashlib.sha256()
    h.update(f"{board_name}\0{backend}\0{tflm_commit() if backend != 'ref' else ''}\0".encode())
    ours = [*(FIRMWARE / "common").rglob("*"), *CORTEX_M.rglob("*"),
            *(FIRMWARE / "backends" / ("ref" if backend == "ref" else "tflm")).rglob("*")]  # fmt: skip
    _hash_files(h, FIRMWARE, [p for p in ours if p.suffix != ".md"])
    if tree is not None:
        h.update(_tree_digest(tree.resolve()).encode())
    for tool in ("arm-none-eabi-gcc", "arm-none-eabi-g++", "cmake"):
        h.update(_tool_version(tool).encode())
    return h.hexdigest()


def elf_sizes(elf: Path) -> dict[str, int]:
    """text/data/bss from arm-none-eabi-size (Berkeley format), and the model and arena buffers inside
    bss (from nm) so flash/RAM of the code can be told from the board's configured buffers."""
    out: dict[str, int] = {}
    size = shutil.which("arm-none-eabi-size")
    if size is None:
        return out
    r = subprocess.run([size, "-B", str(elf)], capture_output=True, text=True)
    lines = r.stdout.strip().splitlines()
    if r.returncode == 0 and len(lines) >= 2:
        text, data, bss = (int(x) for x in lines[1].split()[:3])
        out.update(text=text, data=data, bss=bss, flash=text + data, ram=data + bss)
    nm = shutil.which("arm-none-eabi-nm")
    if nm is not None:
        r = subprocess.run([nm, "-S", str(elf)], capture_output=True, text=True)
        for line in r.stdout.splitlines():
            m = re.match(r"[0-9a-f]+ ([0-9a-f]+) [bBdD] (model|arena)$", line.strip())
            if m:
                out[f"{m.group(2)}_buffer"] = int(m.group(1), 16)
    if "bss" in out:  # the program's own RAM: bss without the board's model buffer and arena (stack kept)
        out["bss_program"] = out["bss"] - out.get("model_buffer", 0) - out.get("arena_buffer", 0)
    return out


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


def build(board_name: str, build_dir: Path | None = None, *, backend: str = "ref", jobs: int = 2,
          tflm_dir: Path | None = None) -> Path:
    """Build the firmware for a board; returns the image (ELF for Cortex-M, the app .bin for ESP32)."""
    check_backend(backend)
    b = board(board_name)
    port = PORTS[b.port]
    missing = missing_tools(b.port)
    if missing:
        raise FirmwareError(f"cannot build for {board_name}: {', '.join(missing)} not found.", hint=port.install_hint)
    out = build_dir or default_build_dir(board_name, backend)
    return port.build(b, out, backend=backend, tree=tflm_dir or (tflm_tree(backend) if backend != "ref" else None),
                      jobs=jobs)


#: The static TFLM library a TFLM build makes; the MLPerf firmware links it instead of compiling TFLM again.
TFLM_LIBRARY = "libbench_tflm.a"


def cache_entry(board_name: str, backend: str, tree: Path | None, digest: str | None = None) -> Path:
    """The image cache's directory for a board, backend and TFLM tree (named by the hash of the inputs)."""
    digest = digest or input_hash(board_name, backend, tree)
    return cache_root() / f"{board_name}-{backend}-{digest[:16]}"


def store_tflm_library(entry: Path, lib: Path) -> None:
    """Keep a build's TFLM library beside its cached image, so a later MLPerf build on a fresh checkout
    (empty build directory, warm cache) links it instead of compiling TFLM for minutes again."""
    if not lib.is_file() or (entry / TFLM_LIBRARY).is_file():
        return
    entry.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=entry, delete=False) as tmp:
        tmp.write(lib.read_bytes())
    os.replace(tmp.name, entry / TFLM_LIBRARY)


def image(board_name: str, backend: str, *, jobs: int = 2, tflm_dir: Path | None = None,
          build_dir: Path | None = None) -> Image:
    """The Cortex-M image for a board and backend, built once per hash of its inputs.

    A hit in cache_root() is returned without running CMake; a miss builds in the build directory
    (incremental) and stores the ELF with its description under the hash. Concurrent callers (test
    workers, sweep lanes) take turns per entry."""
    check_backend(backend)
    if board(board_name).port != "cortex-m":
        raise ConfigError(f"{board_name} is not a Cortex-M board.", hint="Use `bench firmware build` for ESP32.")
    tree = tflm_dir or (tflm_tree(backend) if backend != "ref" else None)
    digest = input_hash(board_name, backend, tree)
    entry = cache_entry(board_name, backend, tree, digest)
    with _build_lock(entry):
        meta = entry / "image.json"
        if meta.is_file() and (entry / "bench_fw.elf").is_file():
            d = json.loads(meta.read_text())
            return Image(entry / "bench_fw.elf", board_name, backend, d.get("tflm_commit"), digest,
                         elf_sizes(entry / "bench_fw.elf") or d.get("sizes", {}), d.get("build_s"), cached=True)
        log.warning("building the %s firmware for %s (%s); cached under %s afterwards", backend, board_name,
                    "TFLM: minutes the first time" if backend != "ref" else "seconds", entry)
        t0 = time.perf_counter()
        elf = build(board_name, build_dir, backend=backend, jobs=jobs, tflm_dir=tree)
        built_s = time.perf_counter() - t0
        img = Image(entry / "bench_fw.elf", board_name, backend, tflm_commit() if backend != "ref" else None,
                    digest, elf_sizes(elf), round(built_s, 2))  # fmt: skip
        with tempfile.NamedTemporaryFile(dir=entry, delete=False) as tmp:
            tmp.write(elf.read_bytes())
        os.replace(tmp.name, entry / "bench_fw.elf")
        store_tflm_library(entry, elf.parent / TFLM_LIBRARY)
        d = img.to_dict()
        d.update(tflm_tree=str(tree) if tree else None)
        meta.write_text(json.dumps(d, indent=1))
        return img


def flash(board_name: str, image: Path | None = None, port: str | None = None) -> list[str]:
    """Flash a built image with the board's tool; returns the command run."""
    b = board(board_name)
    if b.emulator:
        raise ConfigError(f"{board_name} is an emulator: nothing to flash.",
                          hint="Use the `qemu` device kind; it starts QEMU with the image itself.")  # fmt: skip
    cmd = PORTS[b.port].flash_command(b, image, port)
    _run(cmd, "flash")
    return cmd


# --- ports: how a board's firmware tree is built and flashed -------------------------------------------


class Port(Protocol):
    name: str
    #: Build tools that must be on PATH.
    tools: tuple[str, ...]
    install_hint: str

    def build(self, b: Board, out: Path, *, backend: str, tree: Path | None, jobs: int) -> Path: ...

    def flash_command(self, b: Board, image: Path | None, serial_port: str | None) -> list[str]: ...


class CortexMPort:
    name = "cortex-m"
    tools = ("cmake", "arm-none-eabi-gcc")
    install_hint = ("apt-get install --no-install-recommends cmake gcc-arm-none-eabi libnewlib-arm-none-eabi "
                    "libstdc++-arm-none-eabi-newlib")

    def build(self, b: Board, out: Path, *, backend: str, tree: Path | None, jobs: int) -> Path:
        with _build_lock(out):
            configure = ["cmake", "-S", str(CORTEX_M), "-B", str(out), f"-DBOARD={b.name}", f"-DBACKEND={backend}",
                         f"-DTFLM_DIR={tree or ''}", "-DCMAKE_BUILD_TYPE=Release"]  # fmt: skip
            stamp = out / ".bench-configure"
            if not (out / "CMakeCache.txt").exists() or not stamp.exists() or stamp.read_text() != " ".join(configure):
                _run(configure, "cmake configure")
                stamp.write_text(" ".join(configure))
            # Third-party compiles are long: below-normal priority keeps a shared machine responsive.
            nice = ["nice", "-n", "10"] if shutil.which("nice") else []
            _run([*nice, "cmake", "--build", str(out), "-j", str(jobs)], "cmake build")
        return out / "bench_fw.elf"

    def flash_command(self, b: Board, image: Path | None, serial_port: str | None) -> list[str]:
        elf = image or default_build_dir(b.name) / "bench_fw.elf"
        # Each probe tool needs the board to name its chip in that tool's own terms; try them in order.
        found = False
        for tool, chip in (("pyocd", b.pyocd_target), ("probe-rs", b.probe_rs_chip)):
            path = shutil.which(tool)
            found = found or path is not None
            if path is None or chip is None:
                continue
            if not elf.exists():
                raise ConfigError(f"{elf} does not exist.", hint=f"Run `bench firmware build --board {b.name}` first.")
            if tool == "pyocd":
                return [path, "flash", "-t", chip, *(["-u", serial_port] if serial_port else []), str(elf)]
            return [path, "download", "--chip", chip, str(elf)]
        if not found:
            raise FirmwareError(f"cannot flash {b.name}: neither pyocd nor probe-rs is on PATH.",
                                hint="pip install pyocd (ST-LINK/CMSIS-DAP probes), or install probe-rs.")
        raise FirmwareError(
            f"cannot flash {b.name}: the probe tool on PATH has no chip name for this board "
            f"(pyocd target {b.pyocd_target!r}, probe-rs chip {b.probe_rs_chip!r}).",
            hint="Install the other tool, or register the board with its pyocd_target / probe_rs_chip "
                 "(devices/boards.py).")  # fmt: skip


class Esp32Port:
    name = "esp32"
    tools = ("idf.py",)
    install_hint = "install ESP-IDF (v5.x) and run its export.sh so idf.py is on PATH"

    def build(self, b: Board, out: Path, *, backend: str, tree: Path | None, jobs: int) -> Path:
        _run(["idf.py", "-C", str(ESP32), "-B", str(out), "set-target", b.esp_chip or b.name], "idf.py set-target")
        _run(["idf.py", "-C", str(ESP32), "-B", str(out), "build"], "idf.py build")
        return out / "bench_fw.bin"

    def flash_command(self, b: Board, image: Path | None, serial_port: str | None) -> list[str]:
        out = default_build_dir(b.name)
        port = ["-p", serial_port] if serial_port else []
        if shutil.which("idf.py"):
            return ["idf.py", "-C", str(ESP32), "-B", str(out), *port, "flash"]
        tool = shutil.which("esptool.py") or shutil.which("esptool")
        if tool is None:
            raise FirmwareError("cannot flash an ESP32: neither idf.py nor esptool is on PATH.",
                                hint="pip install esptool, or install ESP-IDF.")  # fmt: skip
        if b.esp_chip is None or b.bootloader_offset is None:
            raise FirmwareError(f"cannot flash {b.name} with esptool: the board names no esp_chip/bootloader_offset.",
                                hint="Register the board with both (devices/boards.py), or install ESP-IDF.")
        # ESP-IDF's default layout: second-stage bootloader (offset per chip), partition table, the app.
        return [tool, "--chip", b.esp_chip, *port, "-b", "921600", "write_flash",
                b.bootloader_offset, str(out / "bootloader" / "bootloader.bin"),
                "0x8000", str(out / "partition_table" / "partition-table.bin"),
                "0x10000", str(image or out / "bench_fw.bin")]  # fmt: skip


#: port name -> how it builds and flashes.
PORTS: dict[str, Port] = {p.name: p for p in (CortexMPort(), Esp32Port())}

"""`bench firmware build|flash --board B`: thin wrappers over each board's own tools.

The work is in devices.firmware (CMake + arm-none-eabi-gcc, idf.py, pyocd/probe-rs, esptool); this
module only adapts arguments and prints what was built or run. A missing tool is a BenchError with
the install hint (exit code 2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

# devices.firmware (hashlib, subprocess, the build and flash tools) is imported when a command runs;
# the board names for --help come from the board registry alone.
from devices.boards import BOARDS

firmware_app = typer.Typer(help="Build and flash the bench firmware (ESP32, Cortex-M boards, the QEMU board).",
                           no_args_is_help=True)  # fmt: skip
console = Console()

BoardOpt = Annotated[str, typer.Option("--board", "-b", help=f"one of: {', '.join(BOARDS)}")]


@firmware_app.command("build")
def build_command(
    board: BoardOpt,
    build_dir: Annotated[Path | None, typer.Option("--build-dir", help="default: build/firmware/<board>")] = None,
    backend: Annotated[str, typer.Option(
        help="ref (our C reference kernels), tflm (TFLite Micro) or tflm-cmsis-nn (TFLite Micro + CMSIS-NN)")] = "ref",
    tflm_dir: Annotated[Path | None, typer.Option(
        "--tflm-dir", help="tree made by create_tflm_tree.py; default: ../shared/third_party, else fetch")] = None,
) -> None:
    """Build the firmware image for a board with the board's own build system."""
    from devices import firmware

    image = firmware.build(board, build_dir, backend=backend, tflm_dir=tflm_dir)
    console.print(f"built {image}")
    sizes = firmware.elf_sizes(image) if image.suffix == ".elf" else {}
    if sizes:
        console.print(f"text {sizes['text']}  data {sizes['data']}  bss {sizes['bss']} bytes")


@firmware_app.command("mlperf")
def mlperf_command(
    model: Annotated[Path | None, typer.Option("--model", "-m", help=".tflite to build in (default: digits)")] = None,
    model_id: Annotated[str | None, typer.Option(help="what profile% reports (default: the file's stem)")] = None,
    backend: Annotated[str, typer.Option(help="ref or tflm")] = "ref",
    tflm_dir: Annotated[Path | None, typer.Option(help="tflite-micro tree for --backend tflm")] = None,
    energy_mode: Annotated[bool, typer.Option(help="peer built with EE_CFG_ENERGY_MODE=1")] = False,
    build_dir: Annotated[Path | None, typer.Option("--build-dir")] = None,
) -> None:
    """Build the MLPerf Tiny firmwares for qemu-mps2-an386 with one model built in: the official
    benchmark/api peer DUT (mlperf_peer.elf) and bench firmware's MLPerf mode (bench_mlperf.elf)."""
    from devices.mlperf import images

    kwargs = {"model": model} if model else {}
    built = images.build(**kwargs, model_id=model_id, backend=backend, tflm_dir=tflm_dir, energy_mode=energy_mode,
                         build_dir=build_dir)  # fmt: skip
    for path in built.values():
        console.print(f"built {path}")


@firmware_app.command("flash")
def flash_command(
    board: BoardOpt,
    port: Annotated[str | None, typer.Option("--port", "-p", help="serial port (ESP32) or probe id (pyocd)")] = None,
    image: Annotated[Path | None, typer.Option("--image", help="default: the last build for the board")] = None,
) -> None:
    """Flash the built image (esptool/idf.py for ESP32, pyocd or probe-rs for Cortex-M)."""
    from devices import firmware

    cmd = firmware.flash(board, image, port)
    console.print("flashed: " + " ".join(cmd))

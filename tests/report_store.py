"""A small real store for report and compare tests: sweeps of `fake` boards, as a user's bench would make them.

Runs: `base` (board-a 100 µs, board-b 300 µs), `slow` (the same with board-a 20 % slower), `other` (a board no
other run has) and `broken` (every cell fails). Fake boards run nothing, so the four sweeps take a few seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.config import load_config
from harness.models.zoo import EXAMPLE_DIR
from harness.sweep import run_sweep

#: The bundled family cut to 50 % and 75 %: dense, unstructured (fine-tuned and post-training), structured.
MANIFEST = EXAMPLE_DIR / "manifest.json"

_CONFIG = """
[store]
url = "{url}"
{devices}
[sweep]
models = ["{manifest}"]
sparsities = [0.5, 0.75]
repeats = 2
iterations = 40
warmup = 1
accuracy_samples = 0
"""

_DEVICE = """
[[devices]]
name = "{name}"
kind = "fake"
latency_us = {latency}
jitter_us = {jitter}
{extra}
"""


@dataclass(frozen=True)
class ReportStore:
    url: str
    base: str
    slow: str
    other: str
    broken: str


def sweep_fake_boards(workdir: Path, url: str, name: str, devices: list[tuple[str, float, str]]) -> str:
    """One sweep of the cut family on `fake` boards (name, latency µs, extra TOML lines); its run id."""
    text = _CONFIG.format(
        url=url, manifest=MANIFEST,
        devices="".join(_DEVICE.format(name=d, latency=lat, jitter=lat * 0.05, extra=extra)
                        for d, lat, extra in devices))
    path = workdir / f"{name}.toml"
    path.write_text(text)
    return run_sweep(load_config(path)).run_id


def build_report_store(workdir: Path) -> ReportStore:
    url = f"sqlite:///{workdir / 'bench.db'}"
    return ReportStore(
        url=url,
        base=sweep_fake_boards(workdir, url, "base", [("board-a", 100.0, ""), ("board-b", 300.0, "")]),
        slow=sweep_fake_boards(workdir, url, "slow", [("board-a", 120.0, ""), ("board-b", 300.0, "")]),
        other=sweep_fake_boards(workdir, url, "other", [("board-c", 100.0, "")]),
        broken=sweep_fake_boards(workdir, url, "broken", [("board-a", 100.0, 'open_error = "no USB device"')]),
    )


_MCU_CONFIG = """
[store]
url = "{url}"

[[devices]]
name = "sim"
kind = "sim"
profile = "cortex-m4@80MHz"

[[devices]]
name = "qemu"
kind = "qemu"
# Our reference kernels: their instruction counts are 4-5x the simulator's Cortex-M4 estimate, which the
# sim/qemu disagreement check must flag; TFLM + CMSIS-NN (the default) lands within 2x of it.
backend = "ref"

[[meters]]
name = "sim-meter"
kind = "sim"
device = "sim"
profile = "cortex-m4@80MHz"

[sweep]
models = ["{manifest}"]
sparsities = [0.5]
repeats = 1
iterations = 5
warmup = 1
accuracy_samples = 60
"""


@dataclass(frozen=True)
class McuRun:
    url: str
    run_id: str


def build_mcu_run(workdir: Path) -> McuRun:
    """The bundled family at 50 % (dense, fine-tuned and post-training magnitude, channel) on the simulator
    (estimated, with its modelled meter) and on QEMU (emulated), with top-1 on 60 test samples: a report
    with every figure, series that coincide, and an estimate and an emulation of one core. About 40 s."""
    url = f"sqlite:///{workdir / 'bench.db'}"
    path = workdir / "mcu.toml"
    path.write_text(_MCU_CONFIG.format(url=url, manifest=MANIFEST))
    return McuRun(url=url, run_id=run_sweep(load_config(path)).run_id)

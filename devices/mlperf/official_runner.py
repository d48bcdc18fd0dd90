"""Running MLCommons' MLPerf Tiny runner (benchmark/runner/main.py), unchanged, against a DUT on QEMU.

The runner finds its DUT only by USB vendor/product id (`serial.tools.list_ports.comports()`), and
opens it with `serial.Serial(path)`, so it cannot take a socket:// URL. For a DUT under QEMU this
module therefore
  1. bridges QEMU's TCP serial to a pseudo-terminal (a real tty path the runner can open), and
  2. starts the runner through `runner_launch`, which adds that pty to the port list pyserial
     reports, with the vid:pid written in the runner's own devices yaml (the one and only change
     from running it against a USB board), then executes main.py as-is with runpy.
Everything else is the runner's: its yaml files, its dataset layout (y_labels.csv + one binary per
input), its log and results.txt. On a lab host with a USB board none of this is needed.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import select
import socket
import subprocess
import sys
import threading
import time
import tty
from dataclasses import dataclass, field
from pathlib import Path

from devices.mlperf.images import MLPERF_TINY

RUNNER = MLPERF_TINY / "benchmark" / "runner"
#: A vid:pid pair for the runner's devices yaml; the pty is announced with it.
VID, PID = 0x0483, 0x374B
#: The runner's shortest performance loop (5 windows), in wall seconds.
RULE_LOOP_S = 10.0

_RE_WINDOW = re.compile(r"Throughput\s*:\s*([\d.]+) inf\./sec\.")
_RE_RUNTIME = re.compile(r"Runtime\s*:\s*([\d.]+) sec\.")
_RE_MEDIAN = re.compile(r"Median throughput is\s+([\d.]+) inf\./sec\.")


@dataclass
class RunnerResult:
    returncode: int
    throughputs: list[float]  # inf./sec., one per window, as the runner printed them
    runtimes_s: list[float]
    median_throughput: float | None  # None when the runner refused to print one (its ERROR 1/2)
    output: str
    session_dir: Path | None
    errors: list[str] = field(default_factory=list)


class PtyBridge:
    """Copies bytes between a TCP serial (QEMU) and a pty master; the slave path is the 'tty'."""

    def __init__(self, url: str, *, settle_s: float = 0.5) -> None:
        host, port = url.removeprefix("socket://").rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # at once, or the line discipline echoes the DUT's output back to it
        self.path = os.ttyname(self.slave)
        self.boot = self._settle(settle_s)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._pump, name="mlperf-pty-bridge", daemon=True)
        self._thread.start()

    def _settle(self, quiet_s: float) -> bytes:
        """Swallow the boot banner: on a board it is long gone before the runner opens the port."""
        got = b""
        self.sock.settimeout(quiet_s)
        with contextlib.suppress(TimeoutError):
            while chunk := self.sock.recv(4096):
                got += chunk
        self.sock.settimeout(None)
        return got

    def _pump(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.sock, self.master], [], [], 0.1)
            try:
                if self.sock in ready:
                    data = self.sock.recv(4096)
                    if not data:
                        return
                    view = memoryview(data)
                    while view:
                        view = view[os.write(self.master, view):]
                if self.master in ready:
                    data = os.read(self.master, 4096)
                    self.sock.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(OSError):
            self.sock.close()


def write_inputs(root: Path, model_id: str, inputs: list[bytes], labels: list[int], classes: int) -> Path:
    """The runner's dataset layout: <root>/<model_id>/y_labels.csv and one .bin per input."""
    d = root / model_id
    d.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (data, label) in enumerate(zip(inputs, labels, strict=True)):
        (d / f"input_{i:03d}.bin").write_bytes(data)
        rows.append(f"input_{i:03d}.bin,{classes},{label}")
    (d / "y_labels.csv").write_text("\n".join(rows) + "\n")
    return root


def write_config(work: Path, model_id: str, *, iterations: int, warmup: int, windows: int = 5) -> tuple[Path, Path]:
    """devices yaml (the DUT by vid:pid at 115200 baud) and a performance test script for model_id."""
    devices = work / "devices.yaml"
    devices.write_text(f"- name: bench-qemu\n  type: dut\n  baud: 115200\n  usb:\n    {VID:#06x}: {PID:#06x}\n")
    tests = work / "tests_performance.yaml"
    tests.write_text(f"{model_id}:\n  name: bench_{model_id}\n  model: {model_id}\n  truth_file: y_labels.csv\n"
                     f"  script:\n    - loop {windows}:\n      - download\n      - infer {iterations} {warmup}\n")
    return devices, tests


def run_runner(url: str, work: Path, model_id: str, inputs: list[bytes], labels: list[int], *, classes: int,
               iterations: int, warmup: int, timeout_s: float = 600, runner: Path = RUNNER) -> RunnerResult:
    """Run main.py in performance mode against the DUT behind `url` (a QEMU socket://)."""
    work.mkdir(parents=True, exist_ok=True)
    data = write_inputs(work / "datasets", model_id, inputs, labels, classes)
    devices, tests = write_config(work, model_id, iterations=iterations, warmup=warmup)
    bridge = PtyBridge(url)
    try:
        env = dict(os.environ, BENCH_MLPERF_PTY=f"{bridge.path}={VID:#06x}:{PID:#06x}",
                   PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[2]),
                                               os.environ.get("PYTHONPATH", "")]))  # fmt: skip
        cmd = [sys.executable, "-m", "devices.mlperf.runner_launch", str(runner / "main.py"), "-d", str(devices),
               "-t", str(tests), "-s", str(data), "-m", "p"]  # fmt: skip
        t0 = time.time()
        proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=timeout_s,
                              stdin=subprocess.DEVNULL)  # fmt: skip
    finally:
        bridge.close()
    sessions = sorted((work / "sessions").glob("*"), key=lambda p: p.stat().st_mtime)
    session = next((s for s in reversed(sessions) if s.stat().st_mtime >= t0 - 1 and (s / "log.txt").exists()),
                   None)  # fmt: skip
    # The runner tees everything into its session log; stdout/stderr hold the same lines again.
    text = (session / "log.txt").read_text(errors="replace") if session is not None else proc.stdout + proc.stderr
    window_lines = [ln for ln in text.splitlines() if "ulp-mlperf:   Throughput" in ln]
    runtimes = [float(m.group(1)) for ln in text.splitlines() if "ulp-mlperf:   Runtime" in ln
                and (m := _RE_RUNTIME.search(ln))]  # fmt: skip
    median = _RE_MEDIAN.search(text)
    return RunnerResult(
        returncode=proc.returncode,
        throughputs=[float(m.group(1)) for ln in window_lines if (m := _RE_WINDOW.search(ln))],
        runtimes_s=runtimes, median_throughput=float(median.group(1)) if median else None, output=text,
        session_dir=session, errors=[ln for ln in text.splitlines() if "ERROR" in ln or "Traceback" in ln],
    )  # fmt: skip


def seconds_per_inference(image: Path) -> float:
    """DUT seconds (QEMU instruction-count time) one inference takes on `image`, by its m-lap-us clock."""
    import logging

    import serial as _serial

    from devices.mlperf.client import MlperfClient
    from devices.qemu import QemuProcess, QemuSettings

    proc = QemuProcess("mlperf-calibrate", QemuSettings(image=image, icount_sleep=True), image,
                       logging.getLogger("bench.mlperf.runner"))  # fmt: skip
    url = proc.start()
    try:
        link = _serial.serial_for_url(url, timeout=0.05)
        try:
            client = MlperfClient(link, device="mlperf-calibrate", timeout=30)
            client.identify(client.drain())
            return client.infer(5, 0, timeout=600).elapsed_us / 5 / 1e6
        finally:
            link.close()
    finally:
        proc.stop()


def iterations_for(image: Path, window_s: float = RULE_LOOP_S / 5 * 2) -> int:
    """Inferences per window so that the runner's 5-window loop lasts >= 10 s of wall time: with
    `-icount align=on` QEMU runs the board at its nominal speed, so DUT seconds are wall seconds.
    Twice the minimum: a QEMU that fell behind real time (a loaded host) runs ahead to catch up."""
    return max(1, math.ceil(window_s / seconds_per_inference(image)))


def measure(image: Path, work: Path, model_id: str, inputs: list[bytes], labels: list[int], *, classes: int,
            iterations: int, warmup: int = 1, timeout_s: float = 600) -> RunnerResult:
    """Start `image` on QEMU, run the official runner against it in performance mode, stop QEMU."""
    import logging

    from devices.qemu import QemuProcess, QemuSettings

    log = logging.getLogger("bench.mlperf.runner")
    # align=on: the runner refuses a loop shorter than 10 s of *wall* time (its ERROR 2); held to real
    # time, the emulated board takes as long as it says it does, like a real one.
    proc = QemuProcess("mlperf-runner", QemuSettings(image=image, icount_align=True), image, log)
    url = proc.start()
    try:
        return run_runner(url, work, model_id, inputs, labels, classes=classes, iterations=iterations,
                          warmup=warmup, timeout_s=timeout_s)  # fmt: skip
    finally:
        proc.stop()

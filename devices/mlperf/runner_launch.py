"""Start MLCommons' MLPerf Tiny runner unchanged, with one pseudo-terminal announced as a USB serial port.

    BENCH_MLPERF_PTY=/dev/pts/7=0x0483:0x374b python -m devices.mlperf.runner_launch RUNNER/main.py ARGS...

The runner discovers its DUT only through `serial.tools.list_ports.comports()` by vid:pid; a pty
(the bridge to a QEMU board) has no USB ids, so this adds it to that list with the ids of
BENCH_MLPERF_PTY and then runs main.py as its own __main__, from its own directory. Nothing of the
runner is modified or copied.
"""

from __future__ import annotations

import os
import runpy
import sys
from pathlib import Path

from serial.tools import list_ports, list_ports_common


def _announce(spec: str) -> None:
    path, ids = spec.rsplit("=", 1)
    vid, pid = (int(x, 16) for x in ids.split(":"))
    real = list_ports.comports

    def comports(include_links: bool = False) -> list:
        port = list_ports_common.ListPortInfo(path, skip_link_detection=True)
        port.vid, port.pid = vid, pid
        port.description = f"bench pty bridge ({path})"
        port.hwid = f"USB VID:PID={vid:04X}:{pid:04X} (bench pty bridge)"
        return [*real(include_links), port]

    list_ports.comports = comports


def main() -> None:
    if len(sys.argv) < 2:
        raise SystemExit("usage: python -m devices.mlperf.runner_launch RUNNER/main.py [runner args]")
    spec = os.environ.get("BENCH_MLPERF_PTY")
    if spec:
        _announce(spec)
    script = Path(sys.argv[1]).resolve()
    sys.argv = [str(script), *sys.argv[2:]]
    sys.path.insert(0, str(script.parent))
    runpy.run_path(str(script), run_name="__main__")


if __name__ == "__main__":
    main()

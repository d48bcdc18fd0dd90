"""The `sim` device: a simulated MCU in its own process, driven through the same serial client.

open() starts `python -m devices.sim serve` (a firmware twin running TFLM, see sim_firmware.py) on a
pty or a loopback TCP port and connects to it exactly as to a board; close() stops it. Latency and
energy are estimates from a documented cost model (sim_costmodel.py), labelled "estimated".

    python -m devices.sim serve --listen tcp:127.0.0.1:0 --profile cortex-m4@80MHz [--baud 115200]
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from benchcore.errors import DeviceError
from devices.mcu.driver import McuDevice, ProtocolSettings
from devices.registry import DeviceSettings, DriverSpec
from devices.sim_costmodel import PROFILES
from devices.sim_faults import SimFaults

DEFAULT_PROFILE = "cortex-m4@80MHz"


class SimSettings(DeviceSettings):
    profile: str = DEFAULT_PROFILE
    transport: Literal["tcp", "pty"] = "tcp"
    #: Pace the link at this baud rate like a UART (None: as fast as the socket goes).
    baud: int | None = Field(None, gt=0)
    faults: SimFaults = SimFaults()
    timeout_s: float = Field(1.0, gt=0)
    retries: int = Field(4, ge=0)
    trace: bool = False
    seed: int = 0
    #: Relative standard deviation of the modelled per-inference noise.
    jitter: float = Field(0.002, ge=0.0, le=0.2)
    op_profile: bool = True
    startup_timeout_s: float = Field(20.0, gt=0)

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, v: str) -> str:
        if v not in PROFILES:
            raise ValueError(f"unknown sim profile {v!r}; known: {', '.join(PROFILES)}")
        return v


def sim_command(s: SimSettings) -> list[str]:
    listen = "pty" if s.transport == "pty" else "tcp:127.0.0.1:0"
    return [
        sys.executable, "-m", "devices.sim", "serve", "--listen", listen, "--profile", s.profile,
        "--baud", str(s.baud or 0), "--faults", s.faults.model_dump_json(), "--seed", str(s.seed),
        "--jitter", str(s.jitter), "--exit-on-stdin-eof",
    ]  # fmt: skip


class SimProcess:
    """The simulator process: started, announced, its log forwarded, stopped."""

    def __init__(self, name: str, settings: SimSettings, log) -> None:
        self.name = name
        self.settings = settings
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.url: str | None = None
        #: The simulated UART's baud for wire-time budgets (None: socket://, no baud).
        self.baud = settings.baud

    def start(self) -> str:
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self.proc = subprocess.Popen(sim_command(self.settings), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env)  # fmt: skip
        threading.Thread(target=self._forward_log, name=f"sim-log-{self.name}", daemon=True).start()
        line = self._read_announcement()
        if not line.startswith("LISTENING "):
            self.stop()
            raise DeviceError(self.name, "open", f"the simulator did not start (said {line!r}).",
                              hint="Run `python -m devices.sim serve` by hand to see why.")  # fmt: skip
        self.url = line.split(" ", 1)[1]
        return self.url

    def _read_announcement(self) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + self.settings.startup_timeout_s
        out = b""
        fd = self.proc.stdout.fileno()
        while b"\n" not in out and time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                chunk = os.read(fd, 256)
                if not chunk:
                    break
                out += chunk
        return out.decode("utf-8", "replace").strip()

    def _forward_log(self) -> None:
        proc = self.proc
        if proc is None or proc.stderr is None:
            return
        for raw in proc.stderr:
            self.log.debug("sim: %s", raw.decode("utf-8", "replace").rstrip())

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError):
            if proc.stdin:
                proc.stdin.close()  # the sim exits on stdin EOF
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=3)
        if proc.stdout:
            proc.stdout.close()


class SimDevice(McuDevice):
    """The serial driver over a link the simulator process provides (started on open, stopped on close)."""

    kind = "sim"

    def __init__(self, name: str, settings: SimSettings) -> None:
        s = settings
        protocol = ProtocolSettings(baud=s.baud or 921_600, timeout_s=s.timeout_s, retries=s.retries, trace=s.trace,
                                    op_profile=s.op_profile)  # fmt: skip
        super().__init__(name, protocol, link=SimProcess(name, settings, logging.getLogger(f"bench.device.{name}")))
        self.sim_settings = settings

    def info(self):
        base = super().info()
        details = dict(base.details)
        details.update(profile=self.sim_settings.profile, transport=self.sim_settings.transport,
                       simulated=True, faults=self.sim_settings.faults.model_dump(exclude_defaults=True))  # fmt: skip
        return type(base)(name=base.name, kind=self.kind, runtime=base.runtime,
                          runtime_version=base.runtime_version, cpu=base.cpu, clock_hz=base.clock_hz,
                          details=details)  # fmt: skip


DRIVER = DriverSpec(
    kind="sim",
    summary="A simulated MCU (TFLM + a cost model) in its own process, over the serial protocol.",
    settings=SimSettings,
    create=SimDevice,
    unavailable_reason=lambda: None,
    default_settings=lambda: {"profile": DEFAULT_PROFILE},
    default_meter=lambda settings: {"kind": "sim", "profile": settings.get("profile", DEFAULT_PROFILE)},
)


if __name__ == "__main__":
    from devices.sim_server import main

    sys.exit(main())

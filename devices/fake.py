"""`kind = "fake"`: a device that runs nothing, registered like the real ones.

It lets tests drive the sweep engine (failures, slow cells, a process killed mid-run) without a
runtime in the way. Its figures are synthetic and flagged `estimated`; it never joins the default sweep.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np
from pydantic import Field

from benchcore.errors import DeviceError
from benchcore.record import ThermalState
from devices.base import Deployment, DeviceInfo, ModelBinary, RunResult, RunSpec
from devices.registry import DeviceSettings, DriverSpec


class FakeSettings(DeviceSettings):
    latency_us: float = Field(default=100.0, gt=0)
    jitter_us: float = Field(default=0.0, ge=0)
    #: Wall-clock seconds each run takes, to give tests time to interrupt a sweep.
    seconds_per_run: float = Field(default=0.0, ge=0)
    #: Variant names whose deploy fails, to exercise failed cells.
    fail_models: list[str] = Field(default_factory=list)
    #: When set, open() fails with this message.
    open_error: str | None = None
    #: Thermal readings around every timed window, in the shape the SSH agent reports them
    #: (`{temp_c = 84.5, throttled = "0x0"}` before and after), so the throttling path is testable end to end.
    thermal_before: dict[str, float | str] | None = None
    thermal_after: dict[str, float | str] | None = None
    #: After `hold_after_runs` runs, each further run waits while the file `hold_file` exists: a test stops a
    #: sweep at a known cell (kill it, press Ctrl-C, then remove the file) however slow the machine is,
    #: instead of racing a sleep.
    hold_file: str | None = None
    hold_after_runs: int = Field(default=0, ge=0)


class FakeDevice:
    kind = "fake"

    def __init__(self, name: str, settings: FakeSettings) -> None:
        self.name = name
        self.settings = settings
        self._model: ModelBinary | None = None
        self._runs = 0

    def open(self) -> None:
        if self.settings.open_error:
            raise DeviceError(self.name, "open", self.settings.open_error)

    def info(self) -> DeviceInfo:
        return DeviceInfo(name=self.name, kind=self.kind, runtime="fake", runtime_version="0",
                          details={"latency_us": self.settings.latency_us})

    def deploy(self, model: ModelBinary) -> Deployment:
        if model.name in self.settings.fail_models:
            raise DeviceError(self.name, f"deploy {model.name}", "injected failure (fail_models)")
        self._model = model
        return Deployment(load_time_ms=0.0, arena_bytes=len(model.data))

    def run(self, spec: RunSpec) -> RunResult:
        if self._model is None:
            raise DeviceError(self.name, "run", "no model deployed")
        self._runs += 1
        if self.settings.hold_file and self._runs > self.settings.hold_after_runs:
            while Path(self.settings.hold_file).exists():
                time.sleep(0.02)
        time.sleep(self.settings.seconds_per_run)
        seed = int.from_bytes(hashlib.sha256(self._model.sha256.encode()).digest()[:4], "little")
        rng = np.random.default_rng(seed)
        n = spec.iterations
        lat = self.settings.latency_us * 1e3 + rng.normal(0, self.settings.jitter_us * 1e3 + 1e-9, n)
        thermal = None if self.settings.thermal_after is None else ThermalState(
            before=dict(self.settings.thermal_before or {}), after=dict(self.settings.thermal_after))
        return RunResult(latency_ns=np.abs(lat), source="estimated", timing_method="fake: synthetic latency",
                         thermal=thermal)

    def close(self) -> None:
        self._model = None


DRIVER = DriverSpec(
    kind="fake",
    summary="a synthetic device for tests (no runtime, figures flagged estimated)",
    settings=FakeSettings,
    create=FakeDevice,
    unavailable_reason=lambda: "test double; configure it explicitly",
)

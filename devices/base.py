"""The `Device` protocol every driver implements, and the plain data it exchanges with the sweep.

The sweep never branches on the kind of device: it opens a device, deploys a model, runs it and closes
it. Everything crossing this boundary is plain, picklable data so a cell can run on a remote worker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from benchcore.record import LatencyHistogram, OpProfile, ThermalState

#: How a latency figure was obtained; carried into the store and the report.
#: measured: a clock or cycle counter on the device itself; estimated: a cost model (simulated MCU);
#: emulated: an emulator's instruction count (QEMU), not real cycles.
LatencySource = Literal["measured", "estimated", "emulated"]


@dataclass(frozen=True)
class ModelBinary:
    """A model as a device receives it: the bytes travel, so a remote worker needs no shared disk."""

    name: str
    sha256: str
    data: bytes


@dataclass(frozen=True)
class DeviceInfo:
    """A snapshot of what a device is, stored with every run so figures keep their provenance."""

    name: str
    kind: str
    runtime: str
    runtime_version: str
    cpu: str | None = None
    clock_hz: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "runtime": self.runtime,
            "runtime_version": self.runtime_version,
            "cpu": self.cpu,
            "clock_hz": self.clock_hz,
            "details": dict(self.details),
        }


@dataclass(frozen=True)
class Deployment:
    """What deploying a model cost: load time and memory, as far as the device can tell.

    `ram_noise_bytes` is how far `ram_bytes` moves between identical runs of the same model, as the
    driver knows its method (peak RSS of a host process moves by tens of KiB; an arena figure is exact,
    0). `bench compare` does not call a RAM change within it a regression.
    """

    load_time_ms: float | None = None
    arena_bytes: int | None = None
    ram_bytes: int | None = None
    ram_noise_bytes: int = 0
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunSpec:
    """One timed measurement: `warmup` untimed inferences, then at least `iterations` timed ones and,
    when `min_seconds` is set, more until the timed inferences add up to that much (never more than
    `max_iterations`). Every driver counts inference time, not wall time, so a busy host cannot cut
    the measurement short of what was asked.

    `timing_input` is fed for the timed loop; `samples`, when given, are run once each afterwards and
    their outputs returned for accuracy and agreement. Both are already in the model's input dtype.
    """

    warmup: int
    iterations: int
    min_seconds: float = 0.0
    max_iterations: int = 100_000
    timing_input: np.ndarray | None = None
    samples: np.ndarray | None = None


@dataclass(frozen=True)
class RunResult:
    """Every per-inference latency after warm-up, in nanoseconds, and how it was obtained."""

    latency_ns: np.ndarray
    source: LatencySource
    timing_method: str
    outputs: np.ndarray | None = None
    energy_uj: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    #: Where one inference spends its time, operator by operator, for devices that can tell.
    op_profile: OpProfile | None = None
    #: The device's own histogram of the timed loop (firmware bins cycles it cannot log one by one).
    histogram: LatencyHistogram | None = None
    #: The board's thermal state just before and just after the timed window, for boards that report it.
    thermal: ThermalState | None = None


@runtime_checkable
class Device(Protocol):
    """A place a model can run. `open` acquires it (connections, locks); nothing happens at construction."""

    name: str
    kind: str

    def open(self) -> None: ...

    def info(self) -> DeviceInfo: ...

    def deploy(self, model: ModelBinary) -> Deployment: ...

    def run(self, spec: RunSpec) -> RunResult: ...

    def close(self) -> None: ...


@runtime_checkable
class LendsMeterResources(Protocol):
    """A device a power meter reads through (an INA sensor on an SSH board): it lends what the meter
    needs (e.g. {"reader": RemoteReader}) while open, and closes it in `close()`."""

    def meter_resources(self) -> dict[str, Any]: ...

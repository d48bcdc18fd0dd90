"""The `PowerMeter` protocol and the plain data that crosses it: a sampled trace and what the device did.

A meter samples current, voltage and (when wired) the device's timed-window marker between `start()`
and `stop()`; `devices/power/energy.py` turns the trace into energy per inference. Everything here
is plain, picklable data so a cell can run on a remote worker and ship its result back.

Time in a trace is the meter's own sample clock, in seconds from the first sample. `host_t0_ns`
places that clock on the host's `time.monotonic_ns()` (the clock `WindowInfo` is stamped with), as
well as a meter can tell; `host_clock_uncertainty_s` says how well. Without a marker the energy code
cuts the window on host timestamps through this mapping, and the uncertainty enters the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class MeterIdentity:
    """What measured a figure: stored beside every energy result for provenance."""

    name: str
    kind: str
    model: str
    serial: str | None = None
    firmware: str | None = None
    driver: str | None = None
    #: True when the "meter" is a model (the `sim` meter), never a measurement.
    estimated: bool = False
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "kind": self.kind, "model": self.model, "serial": self.serial,
            "firmware": self.firmware, "driver": self.driver, "estimated": self.estimated,
            "details": dict(self.details),
        }  # fmt: skip


@dataclass(frozen=True, eq=False)
class Trace:
    """One acquisition from start() to stop().

    `current` (A) and `voltage` (V) may hold NaN where the meter lost samples; `time` may also jump
    where whole blocks were lost. The energy code finds both, interpolates small gaps and refuses
    large ones, so drivers report losses honestly instead of papering over them.
    """

    time: np.ndarray  # float64 seconds from the first sample, increasing
    current: np.ndarray  # A (float32 or float64)
    voltage: np.ndarray  # V
    sample_rate: float  # nominal samples per second
    meter: MeterIdentity
    #: The timed-window marker as sampled (nonzero = line high), or None when not captured.
    marker: np.ndarray | None = None
    #: Which meter input carried the marker ("gpi0", "d3", ...), for messages.
    marker_input: str | None = None
    #: Host time.monotonic_ns() at time[0]; None when the trace has no relation to host time
    #: (a replayed file, the simulated meter's virtual timeline).
    host_t0_ns: int | None = None
    host_clock_uncertainty_s: float = 0.0
    #: False when voltage is a configured nominal value rather than sampled (PPK2 as ammeter).
    voltage_measured: bool = True
    #: False for a polled sampler whose intervals jitter (ina2xx over sysfs): time jumps are then not
    #: read as lost samples, and the integral uses each sample's actual interval.
    regular_sampling: bool = True
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        n = len(self.time)
        if len(self.current) != n or len(self.voltage) != n or (self.marker is not None and len(self.marker) != n):
            raise ValueError(
                f"trace arrays differ in length: time {n}, current {len(self.current)}, voltage {len(self.voltage)}"
                + (f", marker {len(self.marker)}" if self.marker is not None else "")
            )

    @property
    def duration_s(self) -> float:
        return float(self.time[-1] - self.time[0]) + 1.0 / self.sample_rate if len(self.time) else 0.0


@dataclass(frozen=True)
class WindowInfo:
    """What the device did during one energy window; returned by the sweep's `run_window()`.

    `host_start_ns`/`host_stop_ns` are `time.monotonic_ns()` taken immediately around the device's
    timed loop (its `run()`), so they include link round trips. `device_busy_s` is the sum of the
    per-inference latencies by the device's own clock, when it has one: it lets the host-timestamp
    fallback subtract the time the device spent not inferring.
    """

    inferences: int
    host_start_ns: int
    host_stop_ns: int
    device_busy_s: float | None = None
    #: The device pin that drives the marker (PROTOCOL.md `marker_pin`), for error messages.
    marker_pin: int | str | None = None

    @property
    def host_duration_s(self) -> float:
        return (self.host_stop_ns - self.host_start_ns) / 1e9


@runtime_checkable
class PowerMeter(Protocol):
    """An instrument that samples a device's supply. No I/O at construction: acquire in `open()`."""

    name: str
    kind: str
    #: Names of the inputs that can carry the marker (empty: this meter has none).
    marker_inputs: tuple[str, ...]

    def open(self) -> None: ...

    def identity(self) -> MeterIdentity: ...

    def start(self, marker_input: str | None = None) -> None: ...

    def stop(self) -> Trace: ...

    def close(self) -> None: ...


@runtime_checkable
class WindowObserver(Protocol):
    """Optional: a meter that must be told what the device did (the simulated meter builds its trace
    from it). `measure_energy` calls `observe_window` after each window, before `stop()`."""

    def observe_window(self, info: WindowInfo) -> None: ...

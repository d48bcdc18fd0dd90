"""`kind = "sim"`: a trace synthesised from a power model, for the simulated MCU. ESTIMATED, never measured.

The simulated MCU (devices/sim.py) estimates latency with a cost model and its profile names a
nominal active power (devices/sim_costmodel.py). This meter turns those into a trace on a virtual
timeline — `idle_s` at idle power, the window at active power with the marker high, `idle_s` idle —
so the sim device's energy goes through exactly the pipeline a real meter's does. The window's
length is `latency_s` x inferences when a latency is configured, else the device's own busy time
(its cost-model latencies) from `WindowInfo`, else the host's wall time.

Idle power is not in the profiles; unless given it is taken as `idle_fraction` of active power, an
assumption that the result's notes repeat. Every result from this meter has `estimated = True`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from pydantic import Field, model_validator

from devices.power.base import MeterIdentity, Trace, WindowInfo
from devices.power.errors import MeterError
from devices.power.registry import MeterSettings, MeterSpec

MARKER_INPUTS = ("sim",)


class SimMeterSettings(MeterSettings):
    #: A sim profile (devices/sim_costmodel.py PROFILES) to take the active power from...
    profile: str | None = None
    #: ...or the active power itself, W.
    active_power_w: float | None = Field(None, gt=0)
    idle_power_w: float | None = Field(None, ge=0)
    idle_fraction: float = Field(0.1, ge=0, le=1)
    #: Seconds per inference; unset: the device's reported busy time.
    latency_s: float | None = Field(None, gt=0)
    voltage_v: float = Field(3.3, gt=0)
    sample_rate: float = Field(100_000.0, gt=0)
    #: Virtual idle before and after each window, s.
    idle_s: float = Field(0.05, gt=0)

    @model_validator(mode="after")
    def _power_known(self) -> SimMeterSettings:
        if self.active_power_w is None and self.profile is None:
            raise ValueError("set active_power_w or a sim profile to take it from")
        if self.profile is not None:
            from devices.sim_costmodel import PROFILES

            if self.profile not in PROFILES:
                raise ValueError(f"unknown sim profile {self.profile!r}; known: {', '.join(PROFILES)}")
        return self


class SimMeter:
    kind = "sim"
    marker_inputs = MARKER_INPUTS

    def __init__(self, name: str, settings: SimMeterSettings) -> None:
        self.name = name
        self.settings = settings
        self._info: WindowInfo | None = None
        active = settings.active_power_w
        if active is None:
            from devices.sim_costmodel import PROFILES

            active = PROFILES[str(settings.profile)].active_power_w
        self.active_power_w = float(active)
        idle = settings.idle_power_w
        self.idle_assumed = idle is None
        self.idle_power_w = float(idle if idle is not None else settings.idle_fraction * active)

    def open(self) -> None:
        pass

    def identity(self) -> MeterIdentity:
        s = self.settings
        return MeterIdentity(
            name=self.name, kind=self.kind, model="power model", driver="devices.power.sim", estimated=True,
            details={"profile": s.profile, "active_power_w": self.active_power_w, "idle_power_w": self.idle_power_w,
                     "idle_assumed": self.idle_assumed, "latency_s": s.latency_s, "voltage_v": s.voltage_v},
        )  # fmt: skip

    def start(self, marker_input: str | None = None) -> None:
        self._info = None

    def observe_window(self, info: WindowInfo) -> None:
        self._info = info

    def stop(self) -> Trace:
        s, info = self.settings, self._info
        if info is None:
            raise MeterError(self.name, "stop", "no window was observed between start() and stop().",
                             hint="Measure through measure_energy(), which tells the simulated meter what ran.")
        if s.latency_s is not None:
            busy, source = s.latency_s * info.inferences, "configured latency x inferences"
        elif info.device_busy_s:
            busy, source = info.device_busy_s, "the device's reported busy time"
        else:
            busy, source = info.host_duration_s, "host wall time"
        fs = s.sample_rate
        pre = post = round(s.idle_s * fs)
        active = max(1, round(busy * fs))
        n = pre + active + post
        current = np.full(n, self.idle_power_w / s.voltage_v)
        current[pre:pre + active] = self.active_power_w / s.voltage_v
        marker = np.zeros(n, np.uint8)
        marker[pre:pre + active] = 1
        notes = [f"simulated trace: window length from {source}"]
        if self.idle_assumed:
            notes.append(f"idle power assumed {s.idle_fraction:.0%} of active (not in the profile)")
        return Trace(time=np.arange(n) / fs, current=current, voltage=np.full(n, s.voltage_v), sample_rate=fs,
                     meter=self.identity(), marker=marker, marker_input="sim", notes=tuple(notes))  # fmt: skip

    def close(self) -> None:
        self._info = None


def sim_meter_for(
    name: str,
    *,
    profile: str | None = None,
    active_power_w: float | None = None,
    idle_power_w: float | None = None,
    latency_s: float | None = None,
    **settings: Any,
) -> SimMeter:
    """A simulated meter for a sim device: from its profile name (DeviceInfo.details["profile"]) or
    an explicit active power; `latency_s` fixes the per-inference time, else the device's is used."""
    return SimMeter(name, SimMeterSettings(profile=profile, active_power_w=active_power_w, idle_power_w=idle_power_w,
                                           latency_s=latency_s, **settings))  # fmt: skip


def _create(name: str, settings: SimMeterSettings, resources: Mapping[str, Any]) -> SimMeter:
    return SimMeter(name, settings)


METER = MeterSpec(
    kind="sim",
    summary="A trace synthesised from the simulated MCU's power model (estimated).",
    settings=SimMeterSettings,
    create=_create,
    marker_inputs=lambda s: MARKER_INPUTS,
)

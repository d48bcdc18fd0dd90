"""Energy per inference from a sampled trace.

Integration. Each sample stands for the interval from half-way to its predecessor to half-way to its
successor (sample-and-hold around the sample: the midpoint rule). The marker is sampled on the same
clock, so a marker edge between samples k-1 and k falls on exactly that cell boundary, and the energy
of a marked pulse is a difference of two entries of one cumulative sum — exact for a step-shaped
supply current, and as accurate as the trapezoid rule for a smooth one. Arbitrary times (host
timestamps) interpolate inside a cell. Everything is vectorised: one pass of `cumsum` over the trace.

The window. With a marker the device's timed loop is the union of the marker's high pulses (the MCU
driver splits long runs into several INVOKEs, each with its own pulse); the energy is summed over
them and divided by the inferences run. Without a marker the window is the host's timestamps around
the run mapped onto the trace through `Trace.host_t0_ns`; it then includes link traffic, so when the
device also reports its own busy time the remainder of the window is charged at idle power and the
error of that assumption is reported as uncertainty.

Idle power is the mean power before the window and after it, each kept a guard interval away from
the window (and from the host's call, when the trace has a host time base, so warm-ups and result
readback are not counted as idle). Dynamic energy = (active power - mean idle power) x active time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from devices.power.base import MeterIdentity, Trace, WindowInfo
from devices.power.dropped import DEFAULT_DROP_POLICY, DropPolicy, DropReport, repair
from devices.power.errors import MarkerError, MeterError

log = logging.getLogger(__name__)

Method = Literal["marker", "host timestamps"]

#: Shortest stretch of trace that counts as an idle measurement.
MIN_IDLE_S = 1e-3


@dataclass(frozen=True)
class WindowEnergy:
    """One window's figures; energies are per inference."""

    inferences: int
    active_s: float
    energy_uj: float
    dynamic_uj: float | None
    active_power_w: float
    idle_before_w: float | None
    idle_after_w: float | None
    pulses: int
    method: Method
    uncertainty_uj: float
    dropped: DropReport = field(default_factory=DropReport)

    def as_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "dropped"}
        d["dropped_samples"] = self.dropped.dropped
        return d


class _Cumulative:
    """Cumulative energy at cell boundaries of a trace, and at any time by interpolation inside a cell."""

    def __init__(self, t: np.ndarray, current: np.ndarray, voltage: np.ndarray, uniform_step: float | None) -> None:
        self.t = t
        n = len(t)
        p = np.multiply(current, voltage, dtype=np.float64)
        if uniform_step is not None:
            self.width: np.ndarray | float = uniform_step
            np.cumsum(p, out=p)
            p *= uniform_step
        else:
            w = np.empty(n)
            w[1:-1] = (t[2:] - t[:-2]) / 2
            w[0] = t[1] - t[0]
            w[-1] = t[-1] - t[-2]
            self.width = w
            p *= w
            np.cumsum(p, out=p)
        self.cs = p  # cs[k] = energy (J) up to the end of cell k

    def boundary(self, k: np.ndarray) -> np.ndarray:
        """Time of the start of cell k (k may equal n: the end of the last cell)."""
        t, n = self.t, len(self.t)
        k = np.asarray(k)
        lo = np.clip(k - 1, 0, n - 1)
        hi = np.clip(k, 0, n - 1)
        mid = (t[lo] + t[hi]) / 2
        first = t[0] - (t[1] - t[0]) / 2
        last = t[-1] + (t[-1] - t[-2]) / 2
        return np.where(k <= 0, first, np.where(k >= n, last, mid))

    def at_boundary(self, k: np.ndarray) -> np.ndarray:
        """Energy (J) before cell k."""
        k = np.asarray(k)
        return np.where(k <= 0, 0.0, self.cs[np.clip(k - 1, 0, len(self.cs) - 1)])

    def at_time(self, x: np.ndarray) -> np.ndarray:
        """Energy (J) from the start of the trace to time x (clipped to the trace)."""
        x = np.atleast_1d(np.asarray(x, dtype=np.float64))
        n = len(self.t)
        j = np.searchsorted(self.t, x)  # t[j-1] < x <= t[j]
        cell = np.where(x < self.boundary(j), j - 1, j)
        cell = np.clip(cell, 0, n - 1)
        start = self.boundary(cell)
        end = self.boundary(cell + 1)
        e0 = self.at_boundary(cell)
        e1 = self.at_boundary(cell + 1)
        frac = np.clip((x - start) / (end - start), 0.0, 1.0)
        return e0 + (e1 - e0) * frac

    def mean_power(self, a: float, b: float) -> float:
        ea, eb = self.at_time(np.array([a, b]))
        return float((eb - ea) / (b - a))


def _edge_gaps(t: np.ndarray, rises: np.ndarray, falls: np.ndarray) -> float:
    """Sum of the sample gaps the marker's edges fall in (seconds)."""
    edges = np.concatenate([rises, falls])
    edges = edges[(edges > 0) & (edges < len(t))]
    return float((t[edges] - t[edges - 1]).sum())


def _pulses(trace: Trace, info: WindowInfo, active_high: bool) -> tuple[np.ndarray, np.ndarray]:
    """Rising and falling sample indices of the marker's high pulses; errors name the input and pin."""
    assert trace.marker is not None
    m = trace.marker != 0 if active_high else trace.marker == 0
    where = f"marker input {trace.marker_input or '?'!r} of the meter"
    pin = f" (the device drives pin {info.marker_pin})" if info.marker_pin is not None else ""
    hint = (f"Check the wire from the device's marker pin{pin} to {where}, the input's logic level and polarity, "
            "and that the device drives the marker (mcu `marker = true`).")  # fmt: skip
    name = trace.meter.name
    if not m.any():
        raise MarkerError(name, "energy", f"{where} never went active during the window{pin}; "
                          f"{len(m)} samples over {trace.duration_s:.3f} s, {info.inferences} inferences run.",
                          hint=hint)  # fmt: skip
    if m.all():
        raise MarkerError(name, "energy", f"{where} was active for the whole trace{pin}: it never toggled.",
                          hint=hint + " A line stuck active is often the wrong polarity.")
    if m[0]:
        raise MarkerError(name, "energy", f"{where} was already active when the trace began: the window started "
                          "before the meter, so its beginning and the idle power before it were lost.",
                          hint="Start the meter before the device's timed loop (measure_energy does).")  # fmt: skip
    if m[-1]:
        raise MarkerError(name, "energy", f"{where} was still active when the trace ended: the window was cut off.",
                          hint="Stop the meter only after run_window() returned.")
    edges = np.diff(m.view(np.int8))
    rises = np.flatnonzero(edges == 1) + 1
    falls = np.flatnonzero(edges == -1) + 1
    return rises, falls


def window_energy(
    trace: Trace,
    info: WindowInfo,
    *,
    marker_active_high: bool = True,
    drop_policy: DropPolicy = DEFAULT_DROP_POLICY,
    guard_s: float = 1e-3,
) -> WindowEnergy:
    """The energy figures of one window: `trace` acquired around `info`'s run."""
    name = trace.meter.name
    if info.inferences < 1:
        raise MeterError(name, "energy", f"the window ran {info.inferences} inferences; nothing to divide by.")
    current, voltage, dropped = repair(trace, drop_policy)
    cum = _Cumulative(trace.time, current, voltage, 1.0 / trace.sample_rate if dropped.uniform else None)
    step = 1.0 / trace.sample_rate
    guard = max(guard_s, 2 * step)

    host_x: tuple[float, float] | None = None
    if trace.host_t0_ns is not None:
        host_x = (trace.time[0] + (info.host_start_ns - trace.host_t0_ns) / 1e9,
                  trace.time[0] + (info.host_stop_ns - trace.host_t0_ns) / 1e9)  # fmt: skip
        guard = max(guard, trace.host_clock_uncertainty_s)
    t_first, t_last = float(cum.boundary(np.array(0))), float(cum.boundary(np.array(len(trace.time))))

    if trace.marker is not None:
        method: Method = "marker"
        rises, falls = _pulses(trace, info, marker_active_high)
        e = cum.at_boundary(falls) - cum.at_boundary(rises)
        energy_j = float(e.sum())
        active_s = float((cum.boundary(falls) - cum.boundary(rises)).sum())
        win_start, win_end = float(cum.boundary(rises[0])), float(cum.boundary(falls[-1]))
        pulses = len(rises)
    else:
        method = "host timestamps"
        if host_x is None:
            raise MeterError(name, "energy", "the trace has no marker and no host time base, so the window cannot "
                             "be found in it.", hint="Wire the device's marker pin to a meter input and name it "
                             "(marker_input), or use a meter that timestamps on the host.")  # fmt: skip
        win_start, win_end = host_x
        # Within the clock alignment's stated uncertainty an end past the trace is the alignment's
        # error, not a missing part of the run: clip it (the uncertainty already covers it).
        slack = trace.host_clock_uncertainty_s
        if t_first - slack <= win_start < t_first:
            win_start = t_first
        if t_last < win_end <= t_last + slack:
            win_end = t_last
        if win_start < t_first or win_end > t_last:
            raise MeterError(name, "energy", f"the run ({win_start:.3f}..{win_end:.3f} s on the meter's clock) lies "
                             f"outside the trace ({t_first:.3f}..{t_last:.3f} s).",
                             hint="The meter started late or stopped early; raise idle_s.")  # fmt: skip
        e_host = float(np.diff(cum.at_time(np.array([win_start, win_end])))[0])
        host_s = win_end - win_start
        pulses = 0
        energy_j, active_s = e_host, host_s

    # Idle: before the window (and before the host's call), and after both, a guard away.
    before_end = win_start - guard
    after_start = win_end + guard
    if host_x is not None:
        before_end = min(before_end, host_x[0] - guard)
        after_start = max(after_start, host_x[1] + guard)
    idle_before = cum.mean_power(t_first, before_end) if before_end - t_first >= MIN_IDLE_S else None
    idle_after = cum.mean_power(after_start, t_last) if t_last - after_start >= MIN_IDLE_S else None
    idles = [p for p in (idle_before, idle_after) if p is not None]
    idle = float(np.mean(idles)) if idles else None

    notes_unc: float
    if method == "host timestamps":
        busy = info.device_busy_s
        if busy is not None and 0 < busy <= active_s:
            # The host window also holds link traffic; charge it at idle power (the best available guess).
            overhead = active_s - busy
            energy_j -= (idle or 0.0) * overhead
            active_s = busy
        else:
            overhead = 0.0
        p_active = energy_j / active_s
        dp = abs(p_active - (idle or 0.0))
        # The load changes somewhere inside the sample gaps around the window's ends: half of each.
        edges = np.searchsorted(trace.time, np.array([win_start, win_end]))
        notes_unc = (overhead + 2 * trace.host_clock_uncertainty_s
                     + _edge_gaps(trace.time, edges[:1], edges[1:]) / 2) * dp
    else:
        p_active = energy_j / active_s
        dp = abs(p_active - (idle or 0.0))
        # Each edge lies between the samples either side of it, so it is known to within half that gap
        # (a polled meter's gaps vary, and widen when a busy host delays the poller); an interpolated
        # sample may be off by dp.
        notes_unc = (_edge_gaps(trace.time, rises, falls) / 2 + dropped.dropped * step) * dp
    n = info.inferences
    dynamic = (p_active - idle) * active_s / n * 1e6 if idle is not None else None
    return WindowEnergy(
        inferences=n, active_s=float(active_s), energy_uj=float(energy_j / n * 1e6),
        dynamic_uj=None if dynamic is None else float(dynamic), active_power_w=float(p_active),
        idle_before_w=idle_before, idle_after_w=idle_after, pulses=int(pulses), method=method,
        uncertainty_uj=float(notes_unc / n * 1e6), dropped=dropped,
    )  # fmt: skip


@dataclass(frozen=True)
class EnergyResult:
    """The figure for a cell: the median over windows of energy per inference, with its spread."""

    energy_uj: float  # median over windows, per inference (total: what the supply delivered)
    energy_min_uj: float
    energy_max_uj: float
    energy_q1_uj: float
    energy_q3_uj: float
    windows: int
    inferences: int  # over all windows
    dynamic_uj: float | None  # median over windows: (active - idle power) x active time / n
    active_power_w: float
    idle_before_w: float | None
    idle_after_w: float | None
    active_s: float  # median window length (time the device was inferring)
    dropped_samples: int
    dropped_handling: str
    method: Method
    uncertainty_uj: float  # median of the per-window estimates, per inference
    uncertainty_note: str
    meter: MeterIdentity
    sample_rate: float
    estimated: bool
    voltage_measured: bool
    per_window: tuple[WindowEnergy, ...] = ()
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """Plain data for the store (JSON-serialisable)."""
        d: dict[str, Any] = {k: getattr(self, k) for k in self.__dataclass_fields__
                             if k not in ("meter", "per_window", "notes")}  # fmt: skip
        d["meter"] = self.meter.as_dict()
        d["per_window"] = [w.as_dict() for w in self.per_window]
        d["notes"] = list(self.notes)
        return d


def _median(values: list[float | None]) -> float | None:
    xs = [v for v in values if v is not None]
    return float(np.median(xs)) if xs else None


def aggregate(windows: list[WindowEnergy], trace: Trace, *, notes: tuple[str, ...] = ()) -> EnergyResult:
    """Combine per-window figures; `trace` (any window's) supplies the meter's identity and rate."""
    if not windows:
        raise ValueError("no windows to aggregate")
    e = np.array([w.energy_uj for w in windows])
    q1, q3 = np.percentile(e, [25, 75])
    method = windows[0].method
    unc = float(np.median([w.uncertainty_uj for w in windows]))
    if method == "marker":
        unc_note = (f"marker edges ±½ sample at {trace.sample_rate:g} Sa/s and interpolated samples, "
                    f"±{unc:.3g} µJ per inference; the meter's own gain/offset accuracy is not included.")  # fmt: skip
    else:
        align_ms = trace.host_clock_uncertainty_s * 1e3
        unc_note = (f"window cut on host timestamps (meter clock aligned to ±{align_ms:.2f} ms); "
                    "link traffic inside the window charged at idle power when the device reported its busy time; "
                    f"±{unc:.3g} µJ per inference; wire the marker for a tighter figure.")  # fmt: skip
    if not trace.voltage_measured:
        unc_note += " Voltage is the configured nominal value, not measured."
    if trace.meter.estimated:
        unc_note = "ESTIMATED from a power model, not measured. " + unc_note
    handled = [w.dropped.handling for w in windows if w.dropped.dropped]
    return EnergyResult(
        energy_uj=float(np.median(e)), energy_min_uj=float(e.min()), energy_max_uj=float(e.max()),
        energy_q1_uj=float(q1), energy_q3_uj=float(q3), windows=len(windows),
        inferences=sum(w.inferences for w in windows),
        dynamic_uj=_median([w.dynamic_uj for w in windows]),
        active_power_w=float(np.median([w.active_power_w for w in windows])),
        idle_before_w=_median([w.idle_before_w for w in windows]),
        idle_after_w=_median([w.idle_after_w for w in windows]),
        active_s=float(np.median([w.active_s for w in windows])),
        dropped_samples=sum(w.dropped.dropped for w in windows),
        dropped_handling="; ".join(handled) if handled else "none dropped",
        method=method, uncertainty_uj=unc, uncertainty_note=unc_note, meter=trace.meter,
        sample_rate=trace.sample_rate, estimated=trace.meter.estimated, voltage_measured=trace.voltage_measured,
        per_window=tuple(windows), notes=tuple(dict.fromkeys((*trace.notes, *notes))),
    )  # fmt: skip

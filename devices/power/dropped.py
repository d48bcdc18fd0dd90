"""Finding samples a meter lost, and deciding whether the trace is still usable.

A loss shows either as NaN in current/voltage (the driver knew samples were missing: a USB block
lost, a sample counter that jumped) or as a jump in `time` (the driver only knew its timestamps).
Short gaps are bridged — NaN runs by linear interpolation, time jumps by the energy integral's
sample-and-hold (each neighbour covers half the hole) — and counted. Beyond the policy's limits the
trace is refused: an energy figure with a hole in it would look fine and be wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from devices.power.base import Trace
from devices.power.errors import DroppedSamplesError, MeterError


@dataclass(frozen=True)
class DropPolicy:
    #: Most samples that may be missing, as a fraction of the trace.
    max_fraction: float = 0.001
    #: Longest single gap that may be bridged, in seconds.
    max_gap_s: float = 0.001


DEFAULT_DROP_POLICY = DropPolicy()


@dataclass(frozen=True)
class DropReport:
    dropped: int = 0
    gaps: int = 0
    longest_gap_s: float = 0.0
    longest_gap_at_s: float = 0.0
    #: True when the samples sit on the nominal grid (no time gaps, no jitter): the integral may use
    #: one constant interval.
    uniform: bool = True
    handling: str = "none dropped"


def _nan_runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) indices of each run of True in `mask`."""
    edges = np.diff(np.concatenate(([0], mask.view(np.int8), [0])))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def repair(trace: Trace, policy: DropPolicy) -> tuple[np.ndarray, np.ndarray, DropReport]:
    """Current and voltage with small NaN gaps interpolated, and what was done; raises beyond policy."""
    t, i, v = trace.time, trace.current, trace.voltage
    n = len(t)
    if n < 2:
        raise MeterError(trace.meter.name, "energy", f"the trace holds {n} sample(s); nothing to integrate.",
                         hint="Check that the meter streams while the device runs (start() before the window).")
    step = 1.0 / trace.sample_rate
    dt = np.diff(t)
    if not np.all(dt > 0):
        bad = int(np.flatnonzero(~(dt > 0))[0])
        raise MeterError(
            trace.meter.name, "energy", f"trace time does not increase at sample {bad} (t={t[bad]:.6f} s).",
            hint="A driver bug: samples must be in time order.",
        )  # fmt: skip
    if trace.regular_sampling:
        holes = np.flatnonzero(dt > 1.5 * step)
        tol = 1e-6 * step + 1e-12 * abs(t[-1])
        uniform = bool(not len(holes) and float(dt.max()) - step <= tol and step - float(dt.min()) <= tol)
    else:
        holes = np.zeros(0, np.int64)
        uniform = False
    hole_missing = np.rint(dt[holes] * trace.sample_rate).astype(np.int64) - 1
    hole_len_s = dt[holes] - step
    del dt

    mask = np.isnan(i) | np.isnan(v)
    if mask.any():
        starts, ends = _nan_runs(mask)
        run_len = ends - starts
        run_len_s = run_len * step
    else:
        starts = ends = run_len = np.zeros(0, np.int64)
        run_len_s = np.zeros(0)

    dropped = int(run_len.sum() + hole_missing.sum())
    if dropped == 0:
        return i, v, DropReport(uniform=uniform)
    gaps = len(starts) + len(holes)
    lengths = np.concatenate((run_len_s, hole_len_s))
    at = np.concatenate((t[starts], t[holes]))
    k = int(np.argmax(lengths))
    longest, longest_at = float(lengths[k]), float(at[k])
    fraction = dropped / (n + int(hole_missing.sum()))
    if fraction > policy.max_fraction or longest > policy.max_gap_s:
        raise DroppedSamplesError(
            trace.meter.name, "energy",
            f"the trace lost {dropped} samples ({fraction:.3%}) in {gaps} gap(s); the longest is "
            f"{longest * 1e3:.3f} ms at t={longest_at:.6f} s (limits: {policy.max_fraction:.3%} of samples, "
            f"{policy.max_gap_s * 1e3:.3f} ms per gap).",
            hint="Lower the sample rate, close other USB traffic or use a shorter cable/hub-free port; "
                 "or raise the drop limits if the figure may carry that error.",
        )  # fmt: skip
    if mask.any():
        if mask.all():
            raise DroppedSamplesError(trace.meter.name, "energy", "every sample is missing.")
        good = ~mask
        i = np.array(i, dtype=np.float64)
        v = np.array(v, dtype=np.float64)
        i[mask] = np.interp(t[mask], t[good], i[good])
        v[mask] = np.interp(t[mask], t[good], v[good])
    how = []
    if len(starts):
        how.append(f"{int(run_len.sum())} NaN samples in {len(starts)} run(s) linearly interpolated")
    if len(holes):
        how.append(f"{int(hole_missing.sum())} samples in {len(holes)} time gap(s) bridged by sample-and-hold")
    how_s = "; ".join(how) + f" (longest {longest * 1e6:.1f} µs at t={longest_at:.6f} s)"
    report = DropReport(dropped=dropped, gaps=gaps, longest_gap_s=longest, longest_gap_at_s=longest_at,
                        uniform=uniform, handling=how_s)  # fmt: skip
    return i, v, report

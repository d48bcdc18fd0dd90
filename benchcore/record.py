"""The typed measurement of one cell, and its typed artefacts.

A `Measurement` is what a cell returns, whether it ran or failed: fixed fields (which cell, when,
how), metrics (one value per entry of the metric registry, `benchcore.metrics`), the latency
samples, and artefacts that are more than one number — the per-op profile, the device's latency
histogram, the board's thermal state around the timed window. The store, `results`, the report and
`compare` read these through the registry, so a new metric is one registry entry and its producer.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np


def utcnow() -> str:
    """Timestamps of records: UTC, ISO 8601, milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


# --- artefacts ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpTime:
    """One operator of a profiled inference, in execution order."""

    index: int
    op: str
    #: Time of one inference in this op, in the device's own unit (cycles, emulated ticks).
    ticks: float
    #: Its share of the inference (0..1).
    share: float
    #: The same in microseconds, when the device's clock is known.
    time_us: float | None = None


@dataclass(frozen=True)
class OpProfile:
    """Where an inference spends its time, operator by operator."""

    ops: tuple[OpTime, ...]
    #: What one tick is: "cycles", "emulated instructions", "ns"…
    unit: str = "cycles"
    #: How many inferences were averaged.
    n: int = 1

    @classmethod
    def from_entries(cls, entries: list[dict[str, Any]], *, unit: str = "cycles", clock_hz: float | None = None,
                     n: int = 1) -> OpProfile:
        """From a driver's list of {index, op, cycles|ticks[, share]}; shares computed when missing."""
        ticks = [float(e.get("ticks", e.get("cycles", 0.0)) or 0.0) for e in entries]
        total = sum(ticks)
        ops = []
        for i, (e, t) in enumerate(zip(entries, ticks, strict=True)):
            share = e.get("share")
            ops.append(OpTime(index=int(e.get("index", i)), op=str(e.get("op", "?")), ticks=t,
                              share=float(share) if share is not None else (t / total if total else 0.0),
                              time_us=t / clock_hz * 1e6 if clock_hz else None))
        return cls(ops=tuple(ops), unit=unit, n=n)

    def top(self, k: int = 5) -> list[OpTime]:
        return sorted(self.ops, key=lambda o: o.share, reverse=True)[:k]

    def by_operator(self) -> dict[str, float]:
        """Operator name -> its summed share, largest first."""
        out: dict[str, float] = {}
        for o in self.ops:
            out[o.op] = out.get(o.op, 0.0) + o.share
        return dict(sorted(out.items(), key=lambda kv: kv[1], reverse=True))

    def as_list(self) -> list[dict[str, Any]]:
        return [{"index": o.index, "op": o.op, "ticks": o.ticks, "share": o.share, "time_us": o.time_us}
                for o in self.ops]


@dataclass(frozen=True)
class LatencyHistogram:
    """The device's own histogram of the timed loop (firmware that cannot log every cycle count)."""

    base: int
    width: int
    counts: tuple[int, ...]


#: vcgencmd get_throttled: bits 0-3 are "now", bits 16-19 "has happened since boot".
_NOW_BITS, _SINCE_BOOT_BITS = 0xF, 0xF0000


@dataclass(frozen=True)
class ThermalState:
    """A board's thermal state just before and just after the timed window (as its agent read it)."""

    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_readings(cls, before: Any, after: Any) -> ThermalState | None:
        """From an agent's two readings as they came over the wire; None when it sent neither."""
        if not isinstance(before, dict) and not isinstance(after, dict):
            return None
        return cls(before=before if isinstance(before, dict) else {}, after=after if isinstance(after, dict) else {})

    def throttle_reason(self) -> str | None:
        """Why the timed window was (or may have been) throttled, or None when it was not."""
        flag_b, flag_a = self.before.get("throttled"), self.after.get("throttled")
        temps = ""
        if self.before.get("temp_c") is not None and self.after.get("temp_c") is not None:
            temps = f" (SoC {self.before['temp_c']:.1f} → {self.after['temp_c']:.1f} °C)"
        bits_b, bits_a = _flag_bits(flag_b), _flag_bits(flag_a)
        if bits_a is not None:
            if bits_a & _NOW_BITS or (bits_b or 0) & _NOW_BITS:
                return f"the firmware reports throttling during the timed window (get_throttled {flag_a}){temps}"
            if bits_a & _SINCE_BOOT_BITS & ~(bits_b or 0):
                return f"the board throttled during the timed window (get_throttled {flag_b} → {flag_a}){temps}"
            return None
        if flag_a is True or flag_a == "capped" or flag_b == "capped":
            return f"cpufreq capped the CPU below its maximum during the timed window{temps}"
        return None


def _flag_bits(flag: Any) -> int | None:
    if isinstance(flag, str) and flag.lower().startswith("0x"):
        try:
            return int(flag, 16)
        except ValueError:
            return None
    return None


# --- the record -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    """One cell: who, when, how, its metrics by registry column, and its typed artefacts."""

    cell_key: str
    device_name: str
    variant_sha256: str
    variant_name: str
    repeat: int
    status: str  # ok | failed
    started_at: str
    finished_at: str
    error: str | None = None
    warmup: int | None = None
    estimated: bool = False
    latency_source: str | None = None
    timing_method: str | None = None
    #: Every timed latency after warm-up, nanoseconds.
    latency_ns: tuple[float, ...] | None = None
    #: Registry column -> value (see benchcore.metrics.METRICS).
    metrics: dict[str, float | int | None] = field(default_factory=dict)
    op_profile: OpProfile | None = None
    histogram: LatencyHistogram | None = None
    thermal: ThermalState | None = None
    #: What the driver said beyond the registry's metrics (kept as it came).
    details: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def failed(self, error: str, finished_at: str) -> Measurement:
        """The same cell, failed at a later step: whatever was measured before is kept."""
        return replace(self, status="failed", error=error, finished_at=finished_at)

    def with_metrics(self, **values: float | int | None) -> Measurement:
        return replace(self, metrics={**self.metrics, **values})

    def samples(self) -> np.ndarray:
        return np.asarray(self.latency_ns or (), dtype=np.float64)

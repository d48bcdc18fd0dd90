"""Summary statistics of latency samples, computed one way for every device."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class LatencySummary:
    """Microseconds. `cv` is std / mean (unitless); std uses n - 1."""

    n: int
    p5_us: float
    p50_us: float
    p95_us: float
    mean_us: float
    std_us: float
    cv: float

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def summarize_ns(samples_ns: np.ndarray) -> LatencySummary:
    us = np.asarray(samples_ns, dtype=np.float64) / 1e3
    if us.size == 0:
        raise ValueError("no latency samples to summarise")
    p5, p50, p95 = np.percentile(us, [5, 50, 95])
    mean = float(us.mean())
    std = float(us.std(ddof=1)) if us.size > 1 else 0.0
    return LatencySummary(
        n=int(us.size),
        p5_us=float(p5),
        p50_us=float(p50),
        p95_us=float(p95),
        mean_us=mean,
        std_us=std,
        cv=std / mean if mean > 0 else 0.0,
    )

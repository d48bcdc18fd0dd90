"""Is a latency difference real or noise? The Mann–Whitney U test on the two sets of per-inference samples.

Our own implementation (normal approximation, tie correction, continuity correction) because scipy is
not a runtime dependency of bench; it agrees with `scipy.stats.mannwhitneyu(method="asymptotic")`
(checked in tests). Latency samples are skewed and often tied (cycle counters tick in whole cycles,
host clocks in tens of ns), which is why a rank test with tie correction suits them better than a t-test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

TEST_NAME = "two-sided Mann–Whitney U (normal approximation, tie- and continuity-corrected)"


@dataclass(frozen=True)
class RankTest:
    u: float  # U of the first sample
    z: float
    p: float
    n1: int
    n2: int


def average_ranks(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """1-based ranks with ties given their mean rank, and the size of every tie group."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    mean_rank = ends - (counts - 1) / 2.0
    return mean_rank[inverse], counts


def mann_whitney_u(x: np.ndarray, y: np.ndarray) -> RankTest:
    """Two-sided test that x and y come from the same distribution; p = 1 when they cannot differ."""
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    n1, n2 = x.size, y.size
    if n1 == 0 or n2 == 0:
        return RankTest(u=math.nan, z=math.nan, p=math.nan, n1=n1, n2=n2)
    ranks, ties = average_ranks(np.concatenate([x, y]))
    u1 = float(ranks[:n1].sum()) - n1 * (n1 + 1) / 2.0
    n = n1 + n2
    tie_term = float((ties.astype(np.float64) ** 3 - ties).sum()) / (n * (n - 1)) if n > 1 else 0.0
    variance = n1 * n2 / 12.0 * ((n + 1) - tie_term)
    mu = n1 * n2 / 2.0
    if variance <= 0:  # every sample equal: no evidence of any difference
        return RankTest(u=u1, z=0.0, p=1.0, n1=n1, n2=n2)
    u = max(u1, n1 * n2 - u1)
    z = (u - mu - 0.5) / math.sqrt(variance)
    p = min(1.0, math.erfc(max(z, 0.0) / math.sqrt(2.0)))
    return RankTest(u=u1, z=z, p=p, n1=n1, n2=n2)

"""Placing a streaming meter's sample clock on the host's monotonic clock.

A block of samples reaches the host some time after its last sample was taken, never before. So
for every block, `arrival - time_of_its_last_sample` over-estimates the offset between the clocks,
and the smallest over-estimate over all blocks is the best one. The spread of the estimates says how
far that can be trusted; the result is an alignment good to roughly a USB frame or a poll period,
which is what the host-timestamp fallback can claim (the marker needs none of this).
"""

from __future__ import annotations

import threading
import time

import numpy as np

#: No host alignment is claimed to be better than this.
MIN_UNCERTAINTY_S = 1e-3


class ArrivalClock:
    def __init__(self) -> None:
        self._offsets: list[int] = []
        self._lock = threading.Lock()

    def block(self, end_index: int, sample_rate: float, host_ns: int | None = None) -> None:
        """Samples up to `end_index` (exclusive, in meter samples) have arrived at `host_ns`."""
        now = time.monotonic_ns() if host_ns is None else host_ns
        with self._lock:
            self._offsets.append(now - round(end_index / sample_rate * 1e9))

    def align(self, first_index: int, sample_rate: float) -> tuple[int | None, float]:
        """Host monotonic ns of sample `first_index`, and the uncertainty in seconds."""
        with self._lock:
            offsets = np.array(self._offsets, dtype=np.int64)
        if not len(offsets):
            return None, float("inf")
        best = int(offsets.min())
        spread = float(np.median(offsets) - best) / 1e9
        return best + round(first_index / sample_rate * 1e9), max(MIN_UNCERTAINTY_S, spread)

"""A device under test for fake meters: its supply current and marker follow what a test does.

A test wraps its "timed loop" in `with dut.active(): ...`; the fake meters sample `state(host_ns)`
on the host's monotonic clock, so the marker goes high exactly while the block runs and the
current steps with it. The known answer for a window is then active power x the interval / n.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np


@dataclass
class FakeDut:
    idle_a: float = 0.002
    active_a: float = 0.015
    voltage_v: float = 3.3
    intervals: list[tuple[int, int]] = field(default_factory=list)
    _since: int | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        with self._lock:
            self._since = time.monotonic_ns()
        try:
            yield
        finally:
            with self._lock:
                assert self._since is not None
                self.intervals.append((self._since, time.monotonic_ns()))
                self._since = None

    def state(self, host_ns: np.ndarray) -> np.ndarray:
        """True where the device was inferring at these host times."""
        with self._lock:
            spans = list(self.intervals)
            if self._since is not None:
                spans.append((self._since, np.iinfo(np.int64).max))
        on = np.zeros(len(host_ns), dtype=bool)
        for a, b in spans:
            on |= (host_ns >= a) & (host_ns < b)
        return on

    def current(self, on: np.ndarray) -> np.ndarray:
        return np.where(on, self.active_a, self.idle_a)

    @property
    def last_interval_s(self) -> float:
        a, b = self.intervals[-1]
        return (b - a) / 1e9

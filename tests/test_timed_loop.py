"""`min_seconds` counts inference time in every host-side loop, so a busy machine cannot cut it short.

A fake clock makes the busy machine exact: each invoke() takes 1 ms, and the loop is then descheduled
for 9 ms outside the clock pair. A loop that stopped on wall time would end after 5 inferences for
50 ms; one that counts what it measured runs 50.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from devices.agent import bench_agent_runtime
from devices.base import RunSpec
from devices.local import _timed_loop

INVOKE_NS, DESCHEDULED_NS = 1_000_000, 9_000_000


class BusyClock:
    def __init__(self) -> None:
        self.now = 0
        self.after_invoke = False

    def read(self) -> int:
        value = self.now
        if self.after_invoke:  # the closing read of a pair: the gap falls after it
            self.now += DESCHEDULED_NS
            self.after_invoke = False
        return value

    def invoke(self) -> None:
        self.now += INVOKE_NS
        self.after_invoke = True


def _local(invoke: Callable[[], None], iterations: int, min_seconds: float, max_iterations: int) -> list[float]:
    spec = RunSpec(warmup=0, iterations=iterations, min_seconds=min_seconds, max_iterations=max_iterations)
    return list(_timed_loop(invoke, spec))


@pytest.mark.parametrize("loop", [_local, bench_agent_runtime.timed_loop], ids=["local", "ssh-agent"])
def test_min_seconds_counts_inference_time_not_wall_time(loop, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = BusyClock()
    monkeypatch.setattr(time, "perf_counter_ns", clock.read)
    samples = loop(clock.invoke, 3, 0.05, 100_000)
    assert samples == [INVOKE_NS] * 50
    assert clock.now >= 50 * (INVOKE_NS + DESCHEDULED_NS) - DESCHEDULED_NS  # the wall time it really took


@pytest.mark.parametrize("loop", [_local, bench_agent_runtime.timed_loop], ids=["local", "ssh-agent"])
def test_iterations_and_max_iterations_still_bound_the_loop(loop, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = BusyClock()
    monkeypatch.setattr(time, "perf_counter_ns", clock.read)
    assert len(loop(clock.invoke, 7, 0.0, 100_000)) == 7
    assert len(loop(clock.invoke, 3, 10.0, 20)) == 20

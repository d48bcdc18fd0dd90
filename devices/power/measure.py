"""Measuring energy per inference for one cell: the one entry point the sweep calls.

    from devices.power import measure_energy, device_window, create_meter

    meter = create_meter(binding)            # or registry.create(name, kind, settings)
    meter.open()
    try:
        result = measure_energy(
            meter,
            device_window(device, spec, min_window_s=1.0),   # runs the timed loop once per call
            windows=5, min_window_s=1.0, marker_input=binding.marker_input,
        )
    finally:
        meter.close()
    run_result.energy_uj = result.energy_uj    # (RunResult is frozen: use dataclasses.replace)
    details["energy"] = result.as_dict()

For each window the meter is started, records `idle_s` of idle supply, the device runs its timed
loop once (`run_window()`), the meter records `idle_s` more and is stopped; the trace becomes one
`WindowEnergy`. The figure is the median over the windows, with min/max and quartiles. The sweep
never looks at the meter's kind: with a marker input the window is cut on the marker, without one
on host timestamps, and the result says which (`method`) and how uncertain it is.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import time
from collections.abc import Callable

import numpy as np

from benchcore.errors import ConfigError
from devices.base import Device, RunSpec
from devices.power.base import PowerMeter, WindowInfo, WindowObserver
from devices.power.dropped import DEFAULT_DROP_POLICY, DropPolicy
from devices.power.energy import EnergyResult, WindowEnergy, aggregate, window_energy
from devices.power.errors import MeterError, WindowTooShortError

log = logging.getLogger(__name__)

#: MLPerf Tiny's energy runs use windows of at least 10 s; 1 s keeps a sweep's cells short while
#: still covering thousands of inferences on a small model. Raise it for publication figures.
DEFAULT_MIN_WINDOW_S = 1.0
DEFAULT_WINDOWS = 5


def check_marker_input(meter: PowerMeter, marker_input: str | None) -> None:
    """A config-time check: the named input exists on this meter."""
    if marker_input is not None and marker_input not in meter.marker_inputs:
        have = ", ".join(meter.marker_inputs) or "none (this meter has no digital input)"
        raise ConfigError(f"power meter {meter.name!r} ({meter.kind}) has no marker input {marker_input!r}; "
                          f"its inputs: {have}.", hint="Fix marker_input in [[meters]], or leave it out to cut "
                          "windows on host timestamps.")  # fmt: skip


def measure_energy(
    meter: PowerMeter,
    run_window: Callable[[], WindowInfo],
    *,
    windows: int = DEFAULT_WINDOWS,
    min_window_s: float = DEFAULT_MIN_WINDOW_S,
    marker_input: str | None = None,
    idle_s: float = 0.2,
    marker_active_high: bool = True,
    drop_policy: DropPolicy = DEFAULT_DROP_POLICY,
    guard_s: float = 1e-3,
) -> EnergyResult:
    """Energy per inference over `windows` runs of `run_window()`; `meter` must be open.

    `run_window()` runs the device's timed loop once and returns a `WindowInfo` (inferences run,
    `time.monotonic_ns()` just before and after, optionally the device's busy time and marker pin).
    Raises `WindowTooShortError` when a window's inference time is below `min_window_s`,
    `MarkerError` when the marker does not behave, `DroppedSamplesError` past `drop_policy`.
    """
    if windows < 1:
        raise ConfigError(f"energy windows must be >= 1 (got {windows}).")
    check_marker_input(meter, marker_input)
    synthetic = meter.identity().estimated  # a modelled meter needs no real idle time
    results: list[WindowEnergy] = []
    trace = None
    for k in range(windows):
        meter.start(marker_input)
        try:
            if not synthetic:
                time.sleep(idle_s)
            info = run_window()
            if isinstance(meter, WindowObserver):
                meter.observe_window(info)
            if not synthetic:
                time.sleep(idle_s)
        except BaseException:
            with contextlib.suppress(Exception):  # the run's error matters more than the meter's
                meter.stop()
            raise
        trace = meter.stop()
        w = window_energy(trace, info, marker_active_high=marker_active_high, drop_policy=drop_policy,
                          guard_s=guard_s)  # fmt: skip
        if w.active_s < min_window_s:
            per = w.active_s / w.inferences
            need = math.ceil(min_window_s / per) if per > 0 else None
            raise WindowTooShortError(
                meter.name, f"energy window {k + 1}/{windows}",
                f"the device inferred for {w.active_s:.3f} s ({w.inferences} inferences, by {w.method}), "
                f"shorter than the minimum window of {min_window_s:g} s.",
                hint=f"Run at least {need} inferences per window (iterations, or sweep min_seconds >= "
                     f"{min_window_s:g}), or lower min_window_s.",
            )  # fmt: skip
        log.info("%s: window %d/%d: %.4g µJ/inference (%s, %d inferences over %.3f s, idle %s W)", meter.name,
                 k + 1, windows, w.energy_uj, w.method, w.inferences, w.active_s,
                 f"{w.idle_before_w:.4g}" if w.idle_before_w is not None else "?")  # fmt: skip
        results.append(w)
    assert trace is not None
    return aggregate(results, trace)


def device_window(device: Device, spec: RunSpec, *, min_window_s: float = 0.0) -> Callable[[], WindowInfo]:
    """A `run_window` for `measure_energy` that runs `device`'s timed loop once per call.

    Warm-up and accuracy samples are dropped from the spec (the cell's latency run already warmed
    the device; outputs read back inside the window would be charged as inference), and the loop
    is asked to last at least `min_window_s` by the device's clock.
    """
    # The loop counts raw latencies; the window's figure is net of the clock-pair cost, which is a
    # few per cent of a µs-scale inference. 10 % over keeps such a window above the minimum.
    energy_spec = dataclasses.replace(spec, warmup=0, samples=None,
                                      min_seconds=max(spec.min_seconds, min_window_s * 1.1))  # fmt: skip

    def run_window() -> WindowInfo:
        start = time.monotonic_ns()
        result = device.run(energy_spec)
        stop = time.monotonic_ns()
        lat = np.asarray(result.latency_ns, dtype=np.float64)
        return WindowInfo(
            inferences=len(lat), host_start_ns=start, host_stop_ns=stop,
            device_busy_s=float(lat.sum()) / 1e9 if len(lat) else None,
            marker_pin=result.details.get("marker_pin"),
        )  # fmt: skip

    return run_window


def iterations_for(min_window_s: float, latency_s: float, *, margin: float = 1.05) -> int:
    """Inferences a window needs to last `min_window_s` at `latency_s` each."""
    if latency_s <= 0:
        raise MeterError("-", "plan", f"latency must be > 0 to size an energy window (got {latency_s}).")
    return max(1, math.ceil(min_window_s * margin / latency_s))

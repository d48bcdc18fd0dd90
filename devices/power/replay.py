"""`kind = "replay"`: recorded traces from files, for instruments bench has no driver for, and for tests.

A file is CSV (header row) or NumPy .npz with columns/arrays `time` (s), `current` (A), `voltage` (V)
and optionally `marker` (0/1). An .npz may also hold `sample_rate` and `host_t0_ns`. Window k of a
measurement replays `paths[k % len(paths)]`: record one file per window with the instrument's own
software while bench runs the device, or one file replayed for every window.

    [[meters]]
    name = "scope"
    kind = "replay"
    device = "nucleo"
    marker_input = "marker"        # use the file's marker column
    paths = ["traces/w1.csv", "traces/w2.csv"]
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from devices.power.base import MeterIdentity, Trace
from devices.power.errors import MeterError, MeterNotFoundError
from devices.power.registry import MeterSettings, MeterSpec

log = logging.getLogger(__name__)

MARKER_INPUTS = ("marker",)
COLUMNS = ("time", "current", "voltage")


class ReplaySettings(MeterSettings):
    paths: list[Path] = Field(min_length=1)
    #: Samples per second; when unset, the median interval of the file's `time`.
    sample_rate: float | None = Field(None, gt=0)


def load_trace(path: Path, meter: MeterIdentity, *, sample_rate: float | None = None,
               with_marker: bool = True) -> Trace:  # fmt: skip
    """Read a CSV or .npz trace file; errors name the file and the missing column."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".npz":
            with np.load(path) as z:
                cols = {k: np.asarray(z[k]) for k in z.files}
        else:
            import pandas as pd

            frame = pd.read_csv(path)
            cols = {str(c).strip(): frame[c].to_numpy() for c in frame.columns}
    except FileNotFoundError:
        raise MeterNotFoundError(meter.name, "replay", f"trace file {str(path)!r} does not exist.") from None
    except (OSError, ValueError) as exc:
        raise MeterError(meter.name, "replay", f"trace file {str(path)!r} cannot be read: {exc}.") from None
    missing = [c for c in COLUMNS if c not in cols]
    if missing:
        raise MeterError(meter.name, "replay", f"trace file {str(path)!r} has no column {missing[0]!r} "
                         f"(it has: {', '.join(sorted(cols))}).", hint="Columns: time (s), current (A), voltage (V), "
                         "marker (optional 0/1).")  # fmt: skip
    t = np.asarray(cols["time"], dtype=np.float64)
    if len(t) < 2:
        raise MeterError(meter.name, "replay", f"trace file {str(path)!r} holds fewer than 2 samples.")
    rate = sample_rate or (float(cols["sample_rate"]) if "sample_rate" in cols else 1.0 / float(np.median(np.diff(t))))
    marker = None
    if with_marker:
        if "marker" not in cols:
            raise MeterError(meter.name, "replay", f"marker_input 'marker' is set but trace file {str(path)!r} has no "
                             "marker column.", hint="Add the column or omit marker_input.")  # fmt: skip
        marker = np.asarray(cols["marker"]).astype(np.uint8)
    host_t0 = int(cols["host_t0_ns"]) if "host_t0_ns" in cols else None
    return Trace(time=t, current=np.asarray(cols["current"], dtype=np.float64),
                 voltage=np.asarray(cols["voltage"], dtype=np.float64), sample_rate=rate, meter=meter,
                 marker=marker, marker_input="marker" if with_marker else None, host_t0_ns=host_t0,
                 notes=(f"replayed from {path.name}",))  # fmt: skip


def save_trace(path: Path, trace: Trace) -> None:
    """Write a trace as .npz that `load_trace` reads back (for archiving a window, or a test)."""
    arrays: dict[str, Any] = {"time": trace.time, "current": trace.current, "voltage": trace.voltage,
                              "sample_rate": np.float64(trace.sample_rate)}  # fmt: skip
    if trace.marker is not None:
        arrays["marker"] = trace.marker
    if trace.host_t0_ns is not None:
        arrays["host_t0_ns"] = np.int64(trace.host_t0_ns)
    np.savez(path, **arrays)


class ReplayMeter:
    kind = "replay"
    marker_inputs = MARKER_INPUTS

    def __init__(self, name: str, settings: ReplaySettings) -> None:
        self.name = name
        self.settings = settings
        self._window = 0
        self._marker: str | None = None
        self._digests: list[str] | None = None

    def open(self) -> None:
        digests = []
        for p in self.settings.paths:
            try:
                digests.append(hashlib.sha256(Path(p).read_bytes()).hexdigest())
            except FileNotFoundError:
                raise MeterNotFoundError(self.name, "open", f"trace file {str(p)!r} does not exist.") from None
        self._digests = digests

    def identity(self) -> MeterIdentity:
        return MeterIdentity(name=self.name, kind=self.kind, model="recorded trace",
                             details={"paths": [str(p) for p in self.settings.paths],
                                      "sha256": list(self._digests or [])})  # fmt: skip

    def start(self, marker_input: str | None = None) -> None:
        self._marker = marker_input

    def stop(self) -> Trace:
        path = self.settings.paths[self._window % len(self.settings.paths)]
        self._window += 1
        return load_trace(path, self.identity(), sample_rate=self.settings.sample_rate,
                          with_marker=self._marker is not None)  # fmt: skip

    def close(self) -> None:
        self._digests = None


def _create(name: str, settings: ReplaySettings, resources: Mapping[str, Any]) -> ReplayMeter:
    return ReplayMeter(name, settings)


METER = MeterSpec(
    kind="replay",
    summary="Recorded traces (CSV or .npz) replayed window by window.",
    settings=ReplaySettings,
    create=_create,
    marker_inputs=lambda s: MARKER_INPUTS,
)

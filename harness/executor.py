"""Lanes and the executors that run them.

A `Lane` is one device's share of a sweep as plain, picklable data: the device's config entry, its
meter binding, its cells and their inputs, the timing. `run_lane` needs nothing else — it creates
and opens the device itself — so the same lane can run in a thread here or on a worker of a
distributed engine. It reports through a `LaneChannel`: events out (snapshot, cell started, cell
finished, lane done), and, for lanes timed on this host's CPU, a wait until the writer committed.

An `Executor` runs phases of lanes (a phase starts when the previous one is done) and yields the
lanes' events to the caller, the single store writer, which acknowledges each committed cell.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, Protocol

from benchcore.record import Measurement
from devices import registry
from devices.base import Device, LendsMeterResources
from devices.power import MeterBinding, create_meter
from harness.cell import Cell, CellInputs, EnergyPlan, Timing, failed_record, measure_cell
from harness.config import DeviceConfig, EnergyConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Lane:
    """Everything one device's cells need, and nothing live: it pickles, and it is all a worker gets."""

    device: DeviceConfig
    cells: tuple[Cell, ...]
    #: variant sha256 -> inputs, for the variants of `cells` only.
    inputs: dict[str, CellInputs]
    timing: Timing
    energy: EnergyConfig
    meter: MeterBinding | None = None
    fail_fast: bool = False
    #: Timed on this host's CPU: runs alone, and waits for each commit before its next cell.
    times_on_host: bool = False

    @property
    def name(self) -> str:
        return self.device.name


# --- events a lane sends back ---------------------------------------------------------------------

@dataclass(frozen=True)
class LaneEvent:
    device: str


@dataclass(frozen=True)
class Snapshot(LaneEvent):
    info: dict[str, Any]


@dataclass(frozen=True)
class CellStarted(LaneEvent):
    cell_key: str


@dataclass(frozen=True)
class CellFinished(LaneEvent):
    record: Measurement


@dataclass(frozen=True)
class LaneDone(LaneEvent):
    pass


class LaneChannel(Protocol):
    """How a running lane talks to the writer, wherever the lane runs."""

    def emit(self, event: LaneEvent) -> None: ...
    def wait_committed(self) -> None: ...
    def stopping(self) -> bool: ...
    def request_stop(self) -> None: ...


def run_lane(lane: Lane, channel: LaneChannel) -> None:
    """Open the lane's device (and meter), measure its cells in order, close; never raises."""
    try:
        with ExitStack() as resources:
            try:
                device = registry.create(lane.device.name, lane.device.kind, lane.device.settings)
                device.open()
                resources.callback(device.close)
                plan = _open_meter(lane, device, resources)
            except Exception as exc:  # unusable: every cell fails with the reason, none goes missing
                log.error("device %s could not be prepared: %s", lane.name, exc)
                for cell in lane.cells:
                    if channel.stopping():
                        break
                    record = failed_record(cell, lane.inputs[cell.variant.sha256], lane.timing,
                                           f"device did not open: {exc}")
                    channel.emit(CellFinished(lane.name, record))
                return
            channel.emit(Snapshot(lane.name, device.info().as_dict()))
            for cell in lane.cells:
                if channel.stopping():
                    break
                channel.emit(CellStarted(lane.name, cell.key))
                record = measure_cell(device, cell, lane.inputs[cell.variant.sha256], lane.timing, plan)
                channel.emit(CellFinished(lane.name, record))
                if lane.times_on_host:
                    # The writer's commit is Python holding the GIL; overlapping the next timed loop,
                    # it would delay every invoke() that returns meanwhile.
                    channel.wait_committed()
                if lane.fail_fast and record.status != "ok":
                    channel.request_stop()  # here, not in the writer: a fast lane would outrun its reaction
    except Exception:
        log.exception("lane %s stopped", lane.name)
    finally:
        channel.emit(LaneDone(lane.name))


def _open_meter(lane: Lane, device: Device, resources: ExitStack) -> EnergyPlan | None:
    if lane.meter is None:
        return None
    # A meter read through its device (an INA sensor on an SSH board) gets what the device lends it.
    lent = device.meter_resources() if isinstance(device, LendsMeterResources) else None
    meter = create_meter(lane.meter, resources=lent)
    meter.open()
    resources.callback(meter.close)
    return EnergyPlan(meter=meter, marker_input=lane.meter.marker_input, windows=lane.energy.windows,
                      min_window_s=lane.energy.min_window_s, idle_s=lane.energy.idle_s)


# --- executors ------------------------------------------------------------------------------------

class Executor(Protocol):
    """Runs phases of lanes and yields their events to the single store writer."""

    def run(self, phases: list[list[Lane]], stop: threading.Event) -> Iterator[LaneEvent]: ...

    def committed(self, event: CellFinished) -> None:
        """The writer committed this cell; a lane waiting on it may go on."""


class _ThreadChannel:
    def __init__(self, events: queue.Queue[LaneEvent], stop: threading.Event) -> None:
        self._events = events
        self._stop = stop
        self._committed = threading.Semaphore(0)

    def emit(self, event: LaneEvent) -> None:
        self._events.put(event)

    def wait_committed(self) -> None:
        self._committed.acquire()

    def stopping(self) -> bool:
        return self._stop.is_set()

    def request_stop(self) -> None:
        self._stop.set()


class ThreadExecutor:
    """Each lane in a thread of this process; a phase's lanes run together."""

    def __init__(self) -> None:
        self._channels: dict[str, _ThreadChannel] = {}

    def run(self, phases: list[list[Lane]], stop: threading.Event) -> Iterator[LaneEvent]:
        events: queue.Queue[LaneEvent] = queue.Queue()
        width = max((len(p) for p in phases), default=1)
        with ThreadPoolExecutor(max_workers=width, thread_name_prefix="lane") as pool:
            for phase in phases:
                for lane in phase:
                    channel = self._channels[lane.name] = _ThreadChannel(events, stop)
                    pool.submit(run_lane, lane, channel)
                open_lanes = len(phase)
                while open_lanes:
                    event = events.get()
                    if isinstance(event, LaneDone):
                        open_lanes -= 1
                    yield event

    def committed(self, event: CellFinished) -> None:
        channel = self._channels.get(event.device)
        if channel is not None:
            channel._committed.release()

"""The worker side of the lab: a Dask worker that holds this host's boards and measures cells on them.

`bench lab worker` starts a `distributed.Worker` advertising the boards of its bench.toml as resources
(harness/lab/inventory.py) with a `BoardHolder` plugin. The holder is the only thing on the host that
opens those boards: a board is opened at its first cell, stays open for the cells after it, and is
closed when the sweep that used it releases it (or the worker stops). The client sends cells; what
comes back is a plain record plus which physical board measured it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from distributed import Worker, get_worker
from distributed.diagnostics.plugin import WorkerPlugin

from devices import registry
from devices.base import LendsMeterResources
from devices.power import MeterBinding, create_meter
from harness.cell import Cell, CellInputs, EnergyPlan, Timing, failed_record, measure_cell
from harness.config import BenchConfig, DeviceConfig, EnergyConfig, meter_bindings
from harness.lab.inventory import resources_for

log = logging.getLogger(__name__)

PLUGIN_NAME = "bench-boards"
#: Dask always serves plain HTTP (health, metrics) beside its TLS port: keep it on loopback, any port.
_HTTP_LOOPBACK = "127.0.0.1:0"


@dataclass
class _Board:
    """One physical board on this host, and what is open on it."""

    config: DeviceConfig
    meter: MeterBinding | None
    lock: threading.Lock = field(default_factory=threading.Lock)
    resources: ExitStack | None = None
    device: Any = None
    meter_open: Any = None
    info: dict[str, Any] | None = None
    open_error: str | None = None

    @property
    def name(self) -> str:
        return self.config.name

    def ensure_open(self, worker_name: str) -> None:
        """Open the device (and its meter) once; a failure is remembered so every later cell fails fast
        with the same reason instead of retrying a slow broken open per cell."""
        if self.device is not None or self.open_error is not None:
            return
        stack = ExitStack()
        try:
            device = registry.create(self.config.name, self.config.kind, self.config.settings)
            device.open()
            stack.callback(device.close)
            if self.meter is not None:
                # A meter read through its device (an INA sensor on an SSH board) gets what the device lends it.
                lent = device.meter_resources() if isinstance(device, LendsMeterResources) else None
                meter = create_meter(self.meter, resources=lent)
                meter.open()
                stack.callback(meter.close)
                self.meter_open = meter
            info = device.info().as_dict()
        except Exception as exc:
            stack.close()
            self.open_error = f"device did not open on lab worker {worker_name}: {exc}"
            log.error("board %s: %s", self.name, self.open_error)
            return
        info["details"] = {**info.get("details", {}), "lab_worker": worker_name,
                           **({"pool": self.config.pool} if self.config.pool else {})}
        self.device, self.resources, self.info = device, stack, info

    def close(self) -> None:
        stack, self.resources = self.resources, None
        self.device = self.meter_open = self.info = None
        self.open_error = None
        if stack is not None:
            try:
                stack.close()
            except Exception:
                log.exception("board %s did not close cleanly", self.name)


class BoardHolder(WorkerPlugin):
    """Holds this worker's boards. Dask's resources already bound how many cells run per board or
    pool; the holder maps a pool's cell to one of its free boards on this host."""

    name = PLUGIN_NAME

    def __init__(self, devices: list[DeviceConfig], meters: dict[str, MeterBinding], worker_name: str) -> None:
        self.boards = {d.name: _Board(d, meters.get(d.name)) for d in devices}
        self.worker_name = worker_name
        self._free = threading.Condition()
        self._busy: set[str] = set()

    def setup(self, worker: Worker) -> None:
        self.worker_name = str(worker.name or self.worker_name)

    def teardown(self, worker: Worker) -> None:
        self.release(list(self.boards))

    def inventory(self) -> list[dict[str, Any]]:
        return [b.config.model_dump(mode="json") for b in self.boards.values()]

    @contextlib.contextmanager
    def lease(self, unit: str, timeout_s: float = 600.0) -> Iterator[_Board]:
        """A board for one cell of `unit` (a board's name or a pool's), exclusively."""
        candidates = [b for b in self.boards.values() if b.name == unit and b.config.pool is None] or \
                     [b for b in self.boards.values() if b.config.pool == unit]
        if not candidates:
            raise LookupError(f"lab worker {self.worker_name} holds no board or pool named {unit!r}")
        with self._free:
            # A cancelled cell's thread may still be finishing on a board; wait for it rather than share.
            if not self._free.wait_for(lambda: any(b.name not in self._busy for b in candidates), timeout_s):
                raise TimeoutError(f"no board of {unit!r} became free on lab worker {self.worker_name} "
                                   f"within {timeout_s:.0f} s")
            board = next(b for b in candidates if b.name not in self._busy)
            self._busy.add(board.name)
        try:
            with board.lock:
                yield board
        finally:
            with self._free:
                self._busy.discard(board.name)
                self._free.notify_all()

    def release(self, names: list[str]) -> list[str]:
        """Close these boards (a sweep ended): ports and processes are freed for whoever comes next."""
        closed = []
        for name in names:
            board = self.boards.get(name)
            if board is not None and (board.device is not None or board.open_error is not None):
                with board.lock:
                    board.close()
                closed.append(name)
        return closed


def _holder() -> BoardHolder:
    return get_worker().plugins[PLUGIN_NAME]  # type: ignore[return-value]


# --- what the client sends ------------------------------------------------------------------------

def run_cell(unit: str, cell: Cell, inputs: CellInputs, timing: Timing, energy: EnergyConfig) -> dict[str, Any]:
    """Measure one cell on a board of `unit` held by this worker -> {"board", "snapshot", "record"}. Never
    raises for a board's failure: as in a thread lane, a failure is a failed record with its reason."""
    holder = _holder()
    with holder.lease(unit) as board:
        board.ensure_open(holder.worker_name)
        if board.open_error is not None:
            record = failed_record(cell, inputs, timing, board.open_error)
        else:
            plan = None
            if board.meter_open is not None and board.meter is not None:
                plan = EnergyPlan(meter=board.meter_open, marker_input=board.meter.marker_input,
                                  windows=energy.windows, min_window_s=energy.min_window_s, idle_s=energy.idle_s)
            record = measure_cell(board.device, cell, inputs, timing, plan)
        # The physical board behind a pool's cell: kept with the cell, so board-to-board spread can be read.
        record = dataclasses.replace(record, details={**(record.details or {}), "board": board.name,
                                                      "lab_worker": holder.worker_name})
        return {"board": board.name, "snapshot": board.info, "record": record}


def worker_inventory(dask_worker: Worker) -> dict[str, Any]:
    """Run on every worker by the client (`client.run`): what it holds."""
    holder = dask_worker.plugins.get(PLUGIN_NAME)
    devices = holder.inventory() if isinstance(holder, BoardHolder) else []
    return {"name": str(dask_worker.name), "devices": devices}


def release_boards(names: list[str], dask_worker: Worker) -> list[str]:
    holder = dask_worker.plugins.get(PLUGIN_NAME)
    return holder.release(names) if isinstance(holder, BoardHolder) else []


# --- the worker process ---------------------------------------------------------------------------

def worker_resources(config: BenchConfig) -> dict[str, float]:
    return resources_for(config.devices)


async def _serve_worker(address: str, config: BenchConfig, security: Any, name: str,
                        listen_host: str | None) -> None:
    meters = {b.device: b for b in meter_bindings(config)}
    holder = BoardHolder(config.devices, meters, name)
    # One thread per board: every board of this host can measure at once; resources keep it at one cell each.
    async with Worker(address, name=name, nthreads=max(1, len(config.devices)), resources=worker_resources(config),
                      security=security, plugins=(holder,), memory_limit=0, host=listen_host,
                      dashboard=False, dashboard_address=_HTTP_LOOPBACK) as worker:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(worker.close()))
        log.info("lab worker %s at %s holds %s", name, worker.address, ", ".join(worker_resources(config)) or "nothing")
        await worker.finished()


def serve_worker(address: str, config: BenchConfig, security: Any, name: str | None = None,
                 listen_host: str | None = None) -> None:
    """Run a lab worker until it is stopped (SIGINT/SIGTERM close its boards first)."""
    asyncio.run(_serve_worker(address, config, security, name or socket.gethostname(), listen_host))


async def _serve_scheduler(host: str, port: int, security: Any, protocol: str,
                           announce: Callable[[str], None]) -> None:
    from distributed import Scheduler

    async with Scheduler(host=host, port=port, security=security, protocol=protocol, dashboard=False,
                         dashboard_address=_HTTP_LOOPBACK) as sched:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(sched.close()))
        announce(sched.address)
        await sched.finished()


def serve_scheduler(host: str, port: int, security: Any, announce: Callable[[str], None]) -> None:
    """Run the lab's scheduler until stopped; `announce` gets its address once it listens."""
    asyncio.run(_serve_scheduler(host, port, security, "tls" if security is not None else "tcp", announce))

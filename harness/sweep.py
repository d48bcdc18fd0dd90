"""The sweep engine: variants × devices × repeats, one lane per device, lanes in parallel.

Each lane is a self-contained description (harness/executor.py) that an `Executor` runs — threads in
this process by default — and whose events come back here; the calling thread is the only store
writer and commits each row as it arrives. Ctrl-C (or SIGTERM) asks the
lanes to stop after their current cell; a second Ctrl-C aborts at once. Either way every finished
cell is already in the store, and `resume` picks up the rest.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from devices import registry
from harness.cell import Cell, CellInputs, Timing
from harness.config import BenchConfig, meter_bindings
from harness.executor import CellFinished, CellStarted, Executor, Lane, LaneDone, Snapshot, ThreadExecutor
from harness.inputs import prepare_inputs
from harness.plan import plan_cells, resolve_model_ref, select_variants
from harness.provenance import bench_version, git_commit, host_name
from harness.store import Store, new_run_id

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepOutcome:
    run_id: str
    store_url: str
    cells_total: int
    cells_ok: int
    cells_failed: int
    cells_skipped: int
    status: str

    @property
    def interrupted(self) -> bool:
        return self.status in ("interrupted", "stopped")


class SweepObserver(Protocol):
    """Progress callbacks, called from the writer thread only."""

    def lane_started(self, device: str, cells: int) -> None: ...
    def cell_started(self, device: str, cell_key: str) -> None: ...
    def cell_finished(self, device: str, row: dict[str, Any]) -> None: ...
    def lane_finished(self, device: str) -> None: ...


class _LogObserver:
    def lane_started(self, device: str, cells: int) -> None:
        log.info("lane %s: %d cells", device, cells)

    def cell_started(self, device: str, cell_key: str) -> None:
        log.debug("start %s", cell_key)

    def cell_finished(self, device: str, row: dict[str, Any]) -> None:
        log.info("%s %s", row["cell_key"], row["status"])

    def lane_finished(self, device: str) -> None:
        log.info("lane %s done", device)


def run_sweep(
    config: BenchConfig,
    *,
    resume: str | None = None,
    retry_failed: bool = False,
    fail_fast: bool = False,
    observer: SweepObserver | None = None,
    stop: threading.Event | None = None,
    command: str = "",
    executor: Executor | None = None,
) -> SweepOutcome:
    """Run (or resume) a sweep and return what happened. Bad input raises before the store is
    created or written: a resume only reads the run it continues until the plan is known good.
    `executor` runs the lanes (default: a thread per lane in this process)."""
    observer = observer or _LogObserver()
    stop = stop or threading.Event()
    store = Store.open(config.store.url, create=False) if resume is not None else None
    try:
        if resume is not None:
            config = _stored_config(store, resume, config)
        variants = select_variants(config)
        for dev in config.devices:  # fail on an unknown kind or bad settings before any work
            registry.driver(dev.kind).settings(**dev.settings)
        lanes = plan_cells(variants, [d.name for d in config.devices], config.sweep.repeats)
        n_cells = sum(len(c) for c in lanes.values())
        inputs = {v.sha256: prepare_inputs(v, config.sweep.accuracy_samples) for v in variants}

        if store is None:
            store = Store.open(config.store.url)
            run_id = new_run_id()
            store.create_run(run_id, config=_config_record(config), n_cells=n_cells, bench_version=bench_version(),
                             git_commit=git_commit(), host=host_name(), command=command)
            done: dict[str, str] = {}
        else:
            run_id = resume
            if retry_failed:
                store.forget_failed_cells(run_id)
            done = store.committed_cells(run_id)
            store.set_run_status(run_id, "running")
        for v in variants:
            store.upsert_variant(v.provenance())

        todo = {name: [c for c in cells if c.key not in done] for name, cells in lanes.items()}
        skipped = n_cells - sum(len(c) for c in todo.values())
        ok, failed = _run_lanes(store, run_id, config, todo, inputs, fail_fast, observer, stop, executor)
        remaining = n_cells - skipped - ok - failed
        status = "complete" if remaining == 0 else ("stopped" if fail_fast and failed else "interrupted")
        store.set_run_status(run_id, status)
        return SweepOutcome(run_id=run_id, store_url=config.store.url, cells_total=n_cells, cells_ok=ok,
                            cells_failed=failed, cells_skipped=skipped, status=status)
    finally:
        if store is not None:
            store.close()


def _config_record(config: BenchConfig) -> dict[str, Any]:
    """The config as run, with model paths made absolute so a resume finds the same files."""
    record = config.model_dump(mode="json")
    record["sweep"]["models"] = [str(resolve_model_ref(m, config.base_dir)) for m in config.sweep.models]
    return record


def _stored_config(store: Store, run_id: str, current: BenchConfig) -> BenchConfig:
    """A resumed run measures what it set out to measure, whatever bench.toml says today."""
    record = store.get_run(run_id)["config"]
    return BenchConfig(**{**record, "store": current.store.model_dump()}, base_dir=current.base_dir)


def _run_lanes(store: Store, run_id: str, config: BenchConfig, todo: dict[str, list[Cell]],
               inputs: dict[str, CellInputs], fail_fast: bool, observer: SweepObserver,
               stop: threading.Event, executor: Executor | None = None) -> tuple[int, int]:
    """Hand the lanes to the executor and commit what comes back: this thread is the only writer."""
    executor = executor or ThreadExecutor()
    lanes = plan_lanes(config, todo, inputs, fail_fast)
    snapshots: dict[str, int] = {}
    ok = failed = 0
    with _graceful_interrupts(stop):
        for lane in lanes:
            observer.lane_started(lane.name, len(lane.cells))
        for event in executor.run(_phases(lanes), stop):
            if isinstance(event, Snapshot):
                snapshots[_board(event)] = store.add_device_snapshot(run_id, event.info)
            elif isinstance(event, CellStarted):
                observer.cell_started(event.device, event.cell_key)
            elif isinstance(event, CellFinished):
                row = store.add_measurement(event.record, run_id=run_id,
                                            device_snapshot_id=snapshots.get(_board(event)))
                if event.record.ok:
                    ok += 1
                else:
                    failed += 1
                observer.cell_finished(event.device, row)
                executor.committed(event)
            elif isinstance(event, LaneDone):
                observer.lane_finished(event.device)
    return ok, failed


def _board(event: Snapshot | CellFinished) -> str:
    """The physical board an event is about: its lane's device, or for a pool's lane the board that ran it."""
    return getattr(event, "board", None) or event.device


def plan_lanes(config: BenchConfig, todo: dict[str, list[Cell]], inputs: dict[str, CellInputs],
               fail_fast: bool = False) -> list[Lane]:
    """One self-contained lane per device that has cells to do, in config order."""
    timing = Timing(warmup=config.sweep.warmup, iterations=config.sweep.iterations,
                    min_seconds=config.sweep.min_seconds)
    meters = {b.device: b for b in meter_bindings(config)}
    lanes = []
    for dev in config.devices:
        cells = todo.get(dev.name)
        if not cells:
            continue
        shas = {c.variant.sha256 for c in cells}
        lanes.append(Lane(device=dev, cells=tuple(cells), inputs={s: inputs[s] for s in shas}, timing=timing,
                          energy=config.energy, meter=meters.get(dev.name), fail_fast=fail_fast,
                          times_on_host=registry.driver(dev.kind).times_on_host))
    return lanes


def _phases(lanes: list[Lane]) -> list[list[Lane]]:
    """Lanes timed on this host's CPU run one at a time, first; the other lanes then run together."""
    alone = [lane for lane in lanes if lane.times_on_host]
    together = [lane for lane in lanes if not lane.times_on_host]
    return [[lane] for lane in alone] + ([together] if together else [])


@contextmanager
def _graceful_interrupts(stop: threading.Event) -> Iterator[None]:
    """First Ctrl-C or SIGTERM: finish the current cells, then stop. Second Ctrl-C: abort now."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: Any) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        log.warning("%s: finishing the current cells, then stopping (Ctrl-C again to abort)",
                    signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)

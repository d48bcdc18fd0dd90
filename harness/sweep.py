"""The sweep engine: variants × devices × repeats, one lane per device, lanes in parallel.

Lanes are threads that only talk to their device and put finished rows on a queue; the calling
thread is the only store writer and commits each row as it arrives. Ctrl-C (or SIGTERM) asks the
lanes to stop after their current cell; a second Ctrl-C aborts at once. Either way every finished
cell is already in the store, and `resume` picks up the rest.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from devices import registry
from devices.power import MeterBinding, create_meter
from harness.cell import Cell, CellInputs, EnergyPlan, Timing, measure_cell
from harness.config import BenchConfig, DeviceConfig, EnergyConfig, meter_bindings
from harness.inputs import prepare_inputs
from harness.plan import plan_cells, resolve_model_ref, select_variants
from harness.provenance import bench_version, git_commit, host_name
from harness.store import Store, new_run_id, utcnow

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
) -> SweepOutcome:
    """Run (or resume) a sweep and return what happened. Bad input raises before the store is
    created or written: a resume only reads the run it continues until the plan is known good."""
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
        ok, failed = _run_lanes(store, run_id, config, todo, inputs, fail_fast, observer, stop)
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
               stop: threading.Event) -> tuple[int, int]:
    timing = Timing(warmup=config.sweep.warmup, iterations=config.sweep.iterations,
                    min_seconds=config.sweep.min_seconds)
    devices = {d.name: d for d in config.devices if todo.get(d.name)}
    meters = {b.device: b for b in meter_bindings(config)}
    events: queue.Queue[tuple[str, str, Any]] = queue.Queue()
    snapshots: dict[str, int] = {}
    ok = failed = 0
    phases = _phases(list(devices.values()))
    with _graceful_interrupts(stop), ThreadPoolExecutor(max_workers=max(len(devices), 1),
                                                         thread_name_prefix="lane") as pool:
        for name in devices:
            observer.lane_started(name, len(todo[name]))
        open_lanes = 0
        while phases or open_lanes:
            if not open_lanes:
                for dev in phases.pop(0):
                    pool.submit(_lane, dev, meters.get(dev.name), config.energy, todo[dev.name], inputs, timing,
                                events, stop, fail_fast)
                    open_lanes += 1
            kind, device, payload = events.get()
            if kind == "snapshot":
                snapshots[device] = store.add_device_snapshot(run_id, payload)
            elif kind == "started":
                observer.cell_started(device, payload)
            elif kind == "cell":
                cell_row, committed = payload
                row = {**cell_row, "run_id": run_id, "device_snapshot_id": snapshots.get(device)}
                store.add_measurement(row)
                if row["status"] == "ok":
                    ok += 1
                else:
                    failed += 1
                observer.cell_finished(device, row)
                committed.set()
            elif kind == "done":
                open_lanes -= 1
                observer.lane_finished(device)
    return ok, failed


def _phases(devices: list[DeviceConfig]) -> list[list[DeviceConfig]]:
    """Lanes timed on this host's CPU run one at a time, first; the other lanes then run together."""
    alone = [d for d in devices if registry.driver(d.kind).times_on_host]
    together = [d for d in devices if not registry.driver(d.kind).times_on_host]
    return [[d] for d in alone] + ([together] if together else [])


def _lane(dev: DeviceConfig, meter_binding: MeterBinding | None, energy: EnergyConfig, cells: list[Cell],
          inputs: dict[str, CellInputs], timing: Timing, events: queue.Queue, stop: threading.Event,
          fail_fast: bool) -> None:
    try:
        with ExitStack() as resources:
            try:
                device = registry.create(dev.name, dev.kind, dev.settings)
                device.open()
                resources.callback(device.close)
                plan = _open_meter(meter_binding, energy, resources)
            except Exception as exc:  # unusable: every cell fails with the reason, none goes missing
                log.error("device %s could not be prepared: %s", dev.name, exc)
                for cell in cells:
                    if stop.is_set():
                        break
                    row = _failed_row(cell, inputs, timing, f"device did not open: {exc}")
                    events.put(("cell", dev.name, (row, threading.Event())))
                return
            times_on_host = registry.driver(dev.kind).times_on_host
            events.put(("snapshot", dev.name, device.info().as_dict()))
            for cell in cells:
                if stop.is_set():
                    break
                events.put(("started", dev.name, cell.key))
                row = measure_cell(device, cell, inputs[cell.variant.sha256], timing, plan)
                committed = threading.Event()
                events.put(("cell", dev.name, (row, committed)))
                if times_on_host:
                    # The writer's commit is Python holding the GIL; overlapping the next timed loop,
                    # it would delay every invoke() that returns meanwhile.
                    committed.wait()
                if fail_fast and row["status"] != "ok":
                    stop.set()  # here, not in the writer: a fast lane would outrun the writer's reaction
    except Exception:
        log.exception("lane %s stopped", dev.name)
    finally:
        events.put(("done", dev.name, None))


def _open_meter(binding: MeterBinding | None, energy: EnergyConfig, resources: ExitStack) -> EnergyPlan | None:
    if binding is None:
        return None
    meter = create_meter(binding)
    meter.open()
    resources.callback(meter.close)
    return EnergyPlan(meter=meter, marker_input=binding.marker_input, windows=energy.windows,
                      min_window_s=energy.min_window_s, idle_s=energy.idle_s)


def _failed_row(cell: Cell, inputs: dict[str, CellInputs], timing: Timing, error: str) -> dict[str, Any]:
    now = utcnow()
    return {
        "cell_key": cell.key, "device_name": cell.device, "variant_sha256": cell.variant.sha256,
        "variant_name": cell.variant.name, "repeat": cell.repeat, "status": "failed", "error": error,
        "started_at": now, "finished_at": now, "warmup": timing.warmup, "estimated": False,
        "model_bytes": len(inputs[cell.variant.sha256].model.data),
    }


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

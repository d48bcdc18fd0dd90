"""`bench sweep --cluster`: plan against the lab's boards, hold them, run the lanes on their workers.

The client is the single store writer (SQLite here, or the lab's PostgreSQL): the sweep itself is
`run_sweep` unchanged, with the lab's boards as its devices and a `DaskExecutor` for its lanes.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from harness.config import BenchConfig, DeviceConfig
from harness.errors import ConfigError
from harness.lab.inventory import LabBoard, boards_of, inventory, lane_units
from harness.lab.security import connection
from harness.store import Store
from harness.sweep import SweepObserver, SweepOutcome, run_sweep

log = logging.getLogger(__name__)

#: How long the client waits for the scheduler to answer (at the start, and to come back when lost).
CONNECT_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class LabOutcome:
    outcome: SweepOutcome
    #: Set when the scheduler was lost mid-run (the run is then resumable).
    lost: str | None
    address: str


def lab_boards(client: Any) -> list[LabBoard]:
    from harness.lab.worker import worker_inventory

    return inventory(client.run(worker_inventory))


def _stored_units(config: BenchConfig, run_id: str) -> list[DeviceConfig]:
    """A resumed run continues on the boards and pools it was planned on."""
    store = Store.open(config.store.url, create=False)
    try:
        record = store.get_run(run_id)["config"]
    finally:
        store.close()
    return [DeviceConfig(**d) for d in record.get("devices", [])]


def connect(config: BenchConfig, address: str | None, timeout_s: float = CONNECT_TIMEOUT_S) -> Any:
    from distributed import Client

    address, security = connection(config.cluster, config.base_dir, address, "bench sweep --cluster")
    try:
        return Client(address, security=security, timeout=timeout_s, set_as_default=True)
    except (OSError, TimeoutError) as exc:
        raise ConfigError(f"cannot reach the lab's scheduler at {address}: {exc}.",
                          hint="Start it with `bench lab scheduler` (or `dask scheduler`), check the address "
                               "and, beyond loopback, the TLS files in [cluster].") from None


def run_lab_sweep(config: BenchConfig, *, address: str | None = None, devices: list[str] | None = None,
                  wait_s: float | None = None, resume: str | None = None, retry_failed: bool = False,
                  fail_fast: bool = False, observer: SweepObserver | None = None,
                  stop: threading.Event | None = None, command: str = "",
                  connect_timeout_s: float = CONNECT_TIMEOUT_S) -> LabOutcome:
    """Run (or resume) a sweep on the lab at `address` (default [cluster] address). `connect_timeout_s`
    bounds the first connection and how long a lost scheduler is waited for before the run ends."""
    from harness.lab.executor import DaskExecutor
    from harness.lab.reserve import reserve_boards
    from harness.lab.worker import release_boards

    wait = config.cluster.wait_s if wait_s is None else wait_s
    client = connect(config, address, connect_timeout_s)
    where = str(client.scheduler.address)
    try:
        boards = lab_boards(client)
        if not boards:
            raise ConfigError(f"the lab at {where} holds no boards (no worker has joined).",
                              hint="Start `bench lab worker --scheduler ADDR -c bench.toml` on the hosts with boards.")
        units = _stored_units(config, resume) if resume is not None else lane_units(boards, devices)
        # Meters live on the workers (their bench.toml binds them to their boards); the client binds none.
        lab_config = config.model_copy(update={"devices": units, "meters": []})
        names = [b.device.name for u in units for b in boards_of(u, boards)]
        executor = DaskExecutor(client, boards)
        with reserve_boards(client, names, wait, command):
            try:
                outcome = run_sweep(lab_config, resume=resume, retry_failed=retry_failed, fail_fast=fail_fast,
                                    observer=observer, stop=stop, command=command, executor=executor)
            finally:
                if executor.lost is None:
                    try:
                        client.run(release_boards, names)
                    except Exception as exc:  # a worker gone mid-release: its boards went with it
                        log.warning("releasing the lab's boards: %s", exc)
        return LabOutcome(outcome=outcome, lost=executor.lost, address=where)
    finally:
        client.close()

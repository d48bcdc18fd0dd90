"""The executor seam: a lane is a description that runs anywhere, and only the writer commits."""

from __future__ import annotations

import multiprocessing
import pickle
import threading
from collections.abc import Iterator
from pathlib import Path

from harness import results
from harness.config import load_config
from harness.executor import CellFinished, Lane, LaneDone, LaneEvent, Snapshot, ThreadExecutor, run_lane
from harness.sweep import run_sweep
from tests.test_sweep import fake_config


class _ListChannel:
    """What a remote worker would have: somewhere to put events, nothing shared with the host."""

    def __init__(self) -> None:
        self.events: list[LaneEvent] = []

    def emit(self, event: LaneEvent) -> None:
        self.events.append(event)

    def wait_committed(self) -> None:  # nothing to wait for: the host commits after the lane ends
        pass

    def stopping(self) -> bool:
        return False

    def request_stop(self) -> None:
        pass


def _run_pickled(blob: bytes) -> bytes:
    """Runs in a freshly spawned interpreter: it gets the lane's bytes and nothing else."""
    channel = _ListChannel()
    run_lane(pickle.loads(blob), channel)
    return pickle.dumps(channel.events)


class SpawnedProcessExecutor:
    """Each lane in its own spawned process, one after another: proof that a lane carries all it needs."""

    def __init__(self) -> None:
        self.lanes_run: list[str] = []

    def run(self, phases: list[list[Lane]], stop: threading.Event) -> Iterator[LaneEvent]:
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(1) as pool:
            for phase in phases:
                for lane in phase:
                    self.lanes_run.append(lane.name)
                    yield from pickle.loads(pool.apply(_run_pickled, (pickle.dumps(lane),)))

    def committed(self, event: CellFinished) -> None:
        pass


def test_lanes_run_in_another_process_and_the_writer_commits_what_they_send(workdir: Path) -> None:
    config = load_config(fake_config(workdir, repeats=2))
    executor = SpawnedProcessExecutor()
    outcome = run_sweep(config, executor=executor)
    assert (outcome.cells_ok, outcome.cells_failed, outcome.status) == (4, 0, "complete")
    assert executor.lanes_run == ["board-a", "board-b"]
    cells = results.load(outcome.run_id, config.store.url)
    assert len(cells) == 4 and cells["device_snapshot_id"].notna().all()
    by_device = results.summarize(cells).set_index("device_name")
    assert by_device.loc["board-b", "p50_us"] > by_device.loc["board-a", "p50_us"]


def test_thread_executor_runs_phases_in_order_and_every_lane_reports_done(workdir: Path) -> None:
    from harness.inputs import prepare_inputs
    from harness.plan import plan_cells, select_variants
    from harness.sweep import plan_lanes

    config = load_config(fake_config(workdir, repeats=1))
    variants = select_variants(config)
    inputs = {v.sha256: prepare_inputs(v, 4) for v in variants}
    lanes = plan_lanes(config, plan_cells(variants, ["board-a", "board-b"], 1), inputs)
    executor = ThreadExecutor()
    seen: list[LaneEvent] = []
    for event in executor.run([[lanes[0]], [lanes[1]]], threading.Event()):
        seen.append(event)
        if isinstance(event, CellFinished):
            executor.committed(event)
    devices = [e.device for e in seen]
    # phase one (board-a) is over, done included, before phase two (board-b) sends anything
    assert devices.index("board-b") > max(i for i, e in enumerate(seen) if isinstance(e, LaneDone)
                                          and e.device == "board-a")
    assert sum(isinstance(e, Snapshot) for e in seen) == 2
    assert sum(isinstance(e, LaneDone) for e in seen) == 2

"""`DaskExecutor`: the executor seam (harness/executor.py) on a Dask cluster of bench hosts.

Each cell of a lane is one Dask task asking for one unit of its board's (or pool's) resource, so it
runs on the worker holding the board, one at a time per board. The executor sends a lane's cells a
few at a time to workers that have a free board of it, so a pool's cells spread over the pool's free
boards wherever they are. Results come back to this process, the single store writer, as they
finish. A lane timed on its host's CPU sends one cell at a time and waits for the commit, as in
threads.

Faults: when a worker dies, its in-flight and queued cells of a *pool* are sent again to the pool's
other boards (none was committed). A board no live worker holds any more has its unfinished cells
failed here with the reason (Dask alone would wait for it forever). A lost scheduler ends the run:
what was committed stays, the rest is resumable.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import queue
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from distributed import Client, Future
from distributed.client import FutureCancelledError

from harness.cell import Cell, failed_record
from harness.executor import CellFinished, CellStarted, Lane, LaneDone, LaneEvent, Snapshot
from harness.lab.inventory import LabBoard, boards_of, resource_of
from harness.lab.worker import run_cell

log = logging.getLogger(__name__)

#: Cells in flight per board (see _LaneState.depth).
PIPELINE_DEPTH = 4
#: How often a cell whose result died with its worker is sent again before it is failed.
MAX_RESENDS = 3


@dataclass(frozen=True)
class BoardSnapshot(Snapshot):
    """A snapshot of the physical board behind a lane (a pool's lane has several)."""

    board: str = ""


@dataclass(frozen=True)
class BoardCellFinished(CellFinished):
    board: str = ""


@dataclass
class _LaneState:
    lane: Lane
    resource: str
    pending: dict[str, Cell] = field(default_factory=dict)  # future key -> cell
    queued: list[Cell] = field(default_factory=list)  # not yet submitted
    placed: dict[str, str] = field(default_factory=dict)  # future key -> the worker it was sent to
    retries: dict[str, int] = field(default_factory=dict)  # cell key -> times its result was lost
    finished: int = 0
    done: bool = False

    @property
    def depth(self) -> int:
        """Cells sent ahead per board: one running and a few waiting on its worker hide the round trip
        (deeper queues spread a pool's cells less evenly); a lane timed on its host's CPU sends the next
        only after the commit, as in threads."""
        return 1 if self.lane.times_on_host else PIPELINE_DEPTH


def _lab_resources(dask_scheduler: Any) -> dict[str, dict[str, float]]:
    return {addr: dict(ws.resources) for addr, ws in dask_scheduler.workers.items()}


class DaskExecutor:
    """Runs lanes on the lab. `boards` is the inventory the sweep was planned against (for messages
    naming the worker that held a lost board)."""

    def __init__(self, client: Client, boards: list[LabBoard], *, poll_s: float = 0.5) -> None:
        self.client = client
        self.boards = boards
        self.poll_s = poll_s
        #: Why the run ended early (scheduler lost), for the CLI to say; None when it did not.
        self.lost: str | None = None
        #: (future, its result, or the exception fetching it raised), fetched on the client's event loop.
        self._done: queue.Queue[tuple[Future, Any, BaseException | None]] = queue.Queue()
        self._futures: dict[str, Future] = {}
        self._lanes: dict[str, _LaneState] = {}
        self._owner: dict[str, _LaneState] = {}  # future key -> lane
        self._snapshotted: set[str] = set()
        self._token = secrets.token_hex(4)
        self._counter = itertools.count()
        self._present_now: dict[str, dict[str, float]] = {}

    # --- the seam --------------------------------------------------------------------------------
    def run(self, phases: list[list[Lane]], stop: threading.Event) -> Iterator[LaneEvent]:
        for phase in phases:
            yield from self._run_phase(phase, stop)
            if self.lost or stop.is_set():
                return

    def committed(self, event: CellFinished) -> None:
        state = self._lanes.get(event.device)
        if state is not None and state.lane.times_on_host:
            self._fill(state)

    # --- one phase -------------------------------------------------------------------------------
    def _run_phase(self, phase: list[Lane], stop: threading.Event) -> Iterator[LaneEvent]:
        try:
            present = self._present()
        except Exception as exc:
            self._lose(exc)
            return
        states = []
        for lane in phase:
            state = self._lanes[lane.name] = _LaneState(lane=lane, resource=resource_of(lane.device))
            states.append(state)
            if not any(r.get(state.resource, 0) > 0 for r in present.values()):
                yield from self._fail_lane(state, list(lane.cells), self._absent_reason(lane))
                continue
            state.queued = list(lane.cells)
            self._fill(state)
            if lane.cells:
                yield CellStarted(lane.name, lane.cells[0].key)
        last_check = time.monotonic()
        while any(not s.done for s in states):
            if stop.is_set():
                self._cancel_all(states)
                return
            try:
                done = self._done.get(timeout=self.poll_s)
            except queue.Empty:
                done = None
            if done is not None:
                yield from self._finished(*done, stop)
            for s in states:
                if not s.done and not s.pending and not s.queued:
                    s.done = True
                    yield LaneDone(s.lane.name)
            if time.monotonic() - last_check >= self.poll_s:
                last_check = time.monotonic()
                try:
                    present = self._present()
                except Exception as exc:
                    self._lose(exc)
                    return
                for s in states:
                    if s.done:
                        continue
                    if not any(r.get(s.resource, 0) > 0 for r in present.values()):
                        yield from self._fail_lane(s, [*s.pending.values(), *s.queued], self._lost_reason(s.lane))
                    else:
                        self._move_from_lost_workers(s, present)

    def _fill(self, state: _LaneState) -> None:
        """Send the lane's next cells to workers with a free board of its resource, up to `depth` per
        board. Placing them here, not all at submission, is what spreads a pool's cells over its free
        boards: Dask alone would weigh each worker's whole queue, not whether this pool's board is idle."""
        if self.lost:
            return
        while state.queued:
            slots = {addr: r.get(state.resource, 0) * state.depth - sum(1 for w in state.placed.values() if w == addr)
                     for addr, r in self._present_now.items() if r.get(state.resource, 0) > 0}
            target = max(slots, key=lambda a: slots[a], default=None)
            if target is None or slots[target] <= 0:
                return
            self._submit(state, state.queued.pop(0), target)

    def _move_from_lost_workers(self, state: _LaneState, present: dict[str, dict[str, float]]) -> None:
        """Cells sent to a worker that has left (a pool's other boards are still here): nothing of theirs
        was committed, so they go back to the front of the queue and on to the boards still here."""
        gone = [key for key, worker in state.placed.items() if worker not in present]
        for key in gone:
            cell = state.pending.pop(key)
            state.placed.pop(key)
            fut = self._futures.pop(key, None)
            if fut is not None:
                fut.cancel()
            state.queued.insert(0, cell)
        if gone:
            log.warning("lane %s: %d cells move off a worker that left the lab", state.lane.name, len(gone))
        self._fill(state)

    def _submit(self, state: _LaneState, cell: Cell, worker: str) -> None:
        lane = state.lane
        # The inputs travel with each cell (a digits variant is ~30 KB): data scattered to one worker would
        # die with it, and a pool's cell that Dask moves to another board must still have what it needs.
        inputs = lane.inputs[cell.variant.sha256]
        index = next(self._counter)
        # A strict worker restriction: a loose one lets Dask send a board's cell to a worker without the
        # board when its own dies (and that worker then fails). Moving cells is done here instead.
        fut = self.client.submit(run_cell, lane.name, cell, inputs, lane.timing, lane.energy,
                                 resources={state.resource: 1}, workers=[worker], allow_other_workers=False,
                                 pure=False, priority=-index, key=f"bench-cell-{self._token}-{index}")
        state.pending[fut.key] = cell
        state.placed[fut.key] = worker
        self._owner[fut.key] = state
        self._futures[fut.key] = fut
        fut.add_done_callback(self._on_done)

    def _on_done(self, fut: Future) -> None:
        """Fetch the result on the client's event loop, so this (the writer's) thread never waits on a
        round trip to a worker: results of many boards come in while the writer commits."""
        async def fetch() -> None:
            try:
                result = await self.client.gather(fut, asynchronous=True)
            except BaseException as exc:  # cancelled, erred, or lost with its worker
                self._done.put((fut, None, exc))
            else:
                self._done.put((fut, result, None))

        self.client.loop.add_callback(fetch)

    def _finished(self, fut: Future, result: Any, error: BaseException | None,
                  stop: threading.Event) -> Iterator[LaneEvent]:
        state = self._owner.get(fut.key)
        if state is None or fut.key not in state.pending:
            return  # already failed by us (its board's worker left) or cancelled: never committed twice
        cell = state.pending.pop(fut.key)
        state.placed.pop(fut.key, None)
        self._futures.pop(fut.key, None)
        lane = state.lane
        if isinstance(error, FutureCancelledError | asyncio.CancelledError):
            exc = error
            if self._scheduler_gone():
                self._lose(ConnectionError("the connection to the scheduler closed"))
                return  # not committed: a resume measures it
            # Not cancelled by us (those left `pending` first): its result was lost with a worker that
            # died before the result reached us. Nothing was committed, so the cell is sent again.
            state.retries[cell.key] = tries = state.retries.get(cell.key, 0) + 1
            if tries <= MAX_RESENDS:
                log.warning("cell %s: result lost (%s); sending it again", cell.key, exc)
                state.queued.insert(0, cell)
                self._fill(state)
                return
            record = failed_record(cell, lane.inputs[cell.variant.sha256], lane.timing,
                                   f"lab: the cell's result was lost {tries} times (workers died under it)")
            yield from self._emit(state, CellFinished(lane.name, record), stop)
            return
        if error is not None:
            # The task itself failed: a worker died under it too often (KilledWorker), or bench raised.
            record = failed_record(cell, lane.inputs[cell.variant.sha256], lane.timing,
                                   f"lab: the cell's task failed: {type(error).__name__}: {error}")
            yield from self._emit(state, CellFinished(lane.name, record), stop)
            return
        board = result["board"]
        if result.get("snapshot") is not None and board not in self._snapshotted:
            self._snapshotted.add(board)
            yield BoardSnapshot(lane.name, result["snapshot"], board=board)
        yield from self._emit(state, BoardCellFinished(lane.name, result["record"], board=board), stop)

    def _emit(self, state: _LaneState, event: CellFinished, stop: threading.Event) -> Iterator[LaneEvent]:
        state.finished += 1
        if not state.lane.times_on_host:
            self._fill(state)  # before the commit: the board need not wait for the writer
        yield event
        if state.lane.fail_fast and not event.record.ok:
            stop.set()
        if state.pending:  # the oldest cell in flight is the one its board is most likely measuring now
            yield CellStarted(state.lane.name, next(iter(state.pending.values())).key)

    def _fail_lane(self, state: _LaneState, cells: list[Cell], reason: str) -> Iterator[LaneEvent]:
        log.error("lane %s: %s", state.lane.name, reason)
        for key in list(state.pending):
            fut = self._futures.pop(key, None)
            if fut is not None:
                fut.cancel()
        state.pending.clear()
        state.queued.clear()
        for cell in cells:
            yield CellFinished(state.lane.name, failed_record(cell, state.lane.inputs[cell.variant.sha256],
                                                           state.lane.timing, reason))
        state.done = True
        yield LaneDone(state.lane.name)

    def _cancel_all(self, states: list[_LaneState]) -> None:
        for s in states:
            for key in list(s.pending):
                fut = self._futures.pop(key, None)
                if fut is not None:
                    fut.cancel()
            s.pending.clear()
            s.queued.clear()

    # --- the cluster's state ---------------------------------------------------------------------
    def _present(self) -> dict[str, dict[str, float]]:
        """Each live worker's resources (and remember them for placing cells)."""
        if self._scheduler_gone():
            raise ConnectionError(f"client status {self.client.status!r}")
        self._present_now = self.client.run_on_scheduler(_lab_resources)
        return self._present_now

    def _scheduler_gone(self) -> bool:
        return self.client.status not in ("running", "connecting")

    def _lose(self, exc: Exception) -> None:
        self.lost = (f"lost the lab's scheduler ({type(exc).__name__}: {exc}); cells committed so far are kept, "
                     "the rest were not measured")
        log.error("%s", self.lost)

    def _absent_reason(self, lane: Lane) -> str:
        what = "pool" if lane.device.pool == lane.device.name else "board"
        return (f"lab: no live worker holds {what} {lane.name!r}; the cell was not measured "
                "(start the worker that holds it, then resume with --retry-failed)")

    def _lost_reason(self, lane: Lane) -> str:
        what = "pool" if lane.device.pool == lane.device.name else "board"
        holders = boards_of(lane.device, self.boards)
        workers = sorted({f"{b.worker_name} ({b.worker})" for b in holders}) or ["its worker"]
        return (f"lab: worker {', '.join(workers)} holding {what} {lane.name!r} left the lab mid-sweep (killed, "
                "crashed or stopped); the cell was not measured (resume with --retry-failed once it is back)")

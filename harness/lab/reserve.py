"""A board belongs to one sweep at a time, lab-wide.

Dask's resources already keep two cells off one board, but two sweeps sharing a board would interleave
their cells and each would perturb the other's figures. So a sweep takes a named Dask lock per board
(a lease the scheduler drops if the client dies) for its whole length, and leaves a note saying who
holds it, so the next sweep can refuse with a name — or wait up to `--wait` seconds. The serial
driver's port lock still guards the board against anything outside the lab.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from distributed import Client, Lock

from harness.errors import BenchError
from harness.store import utcnow


class BoardHeldError(BenchError):
    """Another sweep holds a board this sweep needs (exit code 2: nothing was measured)."""


def _note_key(board: str) -> list[str]:
    return ["bench", "board-holder", board]


@contextmanager
def reserve_boards(client: Client, boards: list[str], wait_s: float, command: str) -> Iterator[None]:
    """Hold every board named, in name order (two sweeps waiting on each other's boards cannot deadlock)."""
    held: list[tuple[str, Lock]] = []
    note = {"host": socket.gethostname(), "pid": os.getpid(), "command": command, "since": utcnow()}
    try:
        for board in sorted(set(boards)):
            lock = Lock(f"bench-board:{board}", scheduler_rpc=None)
            got = lock.acquire(timeout=wait_s) if wait_s > 0 else lock.acquire(blocking=False)
            if not got:
                raise BoardHeldError(
                    f"board {board!r} is held by another sweep: {_describe(_holder(client, board))}.",
                    hint=("Wait for it to finish, or pass --wait SECONDS to queue behind it." if wait_s <= 0 else
                          f"Waited {wait_s:g} s; pass a longer --wait, or try again later."))
            held.append((board, lock))
            client.set_metadata(_note_key(board), note)
        yield
    finally:
        for board, lock in reversed(held):
            try:
                client.set_metadata(_note_key(board), None)
                lock.release()
            except Exception:  # the scheduler is gone: the lease goes with it
                pass


def _holder(client: Client, board: str) -> dict[str, Any] | None:
    try:
        return client.get_metadata(_note_key(board), default=None)
    except Exception:
        return None


def _describe(note: dict[str, Any] | None) -> str:
    if not note:
        return "a sweep that left no note"
    command = note.get("command") or "bench sweep"
    return f"`{command}` on {note.get('host')} (pid {note.get('pid')}) since {note.get('since')}"

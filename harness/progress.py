"""Sweep progress on the terminal: one bar per device lane with its current cell and ETA."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


class RichProgress:
    """A `SweepObserver` drawing with rich; use as a context manager around `run_sweep`."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.fields[device]:<12}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._tasks: dict[str, Any] = {}
        self._failed: dict[str, int] = {}

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def lane_started(self, device: str, cells: int) -> None:
        self._failed[device] = 0
        self._tasks[device] = self._progress.add_task("", total=cells, device=device, status="opening")

    def cell_started(self, device: str, cell_key: str) -> None:
        variant, repeat = cell_key.split("|")[1], cell_key.split("|")[-1]
        self._progress.update(self._tasks[device], status=f"{variant} {repeat}")

    def cell_finished(self, device: str, row: dict[str, Any]) -> None:
        if row["status"] != "ok":
            self._failed[device] += 1
        self._progress.advance(self._tasks[device])

    def lane_finished(self, device: str) -> None:
        failed = self._failed.get(device, 0)
        status = f"[red]{failed} failed" if failed else "[green]done"
        self._progress.update(self._tasks[device], status=status)

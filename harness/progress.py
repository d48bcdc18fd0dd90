"""Sweep progress on the terminal: one bar per device lane with its current cell and ETA.

When the bars stop, the run's failed cells are printed grouped by device and error, each group once
with its count and a hint (`harness.failures`), rather than one line per cell.
"""

from __future__ import annotations

import logging
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from harness.failures import group_failures, same_error_key


class _FirstOfEachFailure(logging.Filter):
    """Lets through the first 'cell … failed: …' log line per device and error; the repeats are
    counted in the end-of-run summary instead of scrolling the same error past once per cell."""

    def __init__(self) -> None:
        super().__init__()
        self._seen: set[tuple[str, str]] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        head, sep, error = text.partition(" failed: ")
        if not sep or not head.startswith("cell ") or head.count("|") < 2:
            return True  # not a cell failure (or a format this does not know): leave it alone
        device, variant = head[len("cell "):].split("|")[:2]
        key = (device, same_error_key(variant, error))
        if key in self._seen:
            return False
        self._seen.add(key)
        return True


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
        self._errors: list[tuple[str, str, str | None]] = []  # (device, variant, error) per failed cell
        self._console = console
        self._filter = _FirstOfEachFailure()
        self._cell_log = logging.getLogger("harness.cell")

    def __enter__(self) -> RichProgress:
        self._progress.start()
        self._cell_log.addFilter(self._filter)
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()
        self._cell_log.removeFilter(self._filter)
        for group in group_failures(self._errors):
            self._console.print(f"[red]failed[/] {escape(group.describe())}", highlight=False)

    def lane_started(self, device: str, cells: int) -> None:
        self._failed[device] = 0
        self._tasks[device] = self._progress.add_task("", total=cells, device=device, status="opening")

    def cell_started(self, device: str, cell_key: str) -> None:
        variant, repeat = cell_key.split("|")[1], cell_key.split("|")[-1]
        self._progress.update(self._tasks[device], status=f"{variant} {repeat}")

    def cell_finished(self, device: str, row: dict[str, Any]) -> None:
        if row["status"] != "ok":
            self._failed[device] += 1
            self._errors.append((device, str(row.get("variant_name") or ""), row.get("error")))
        self._progress.advance(self._tasks[device])

    def lane_finished(self, device: str) -> None:
        failed = self._failed.get(device, 0)
        status = f"[red]{failed} failed" if failed else "[green]done"
        self._progress.update(self._tasks[device], status=status)

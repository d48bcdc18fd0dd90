"""The tidy data behind a report: one row per (run, board, variant) and one per cell, as CSV (and
Parquet, with every latency sample, when pyarrow is installed)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from benchcore import metrics
from harness.report.data import ReportData

log = logging.getLogger(__name__)

#: cells.csv: which cell and when, every stored metric of the registry (benchcore.metrics), then how it
#: was timed. Cell facts that are no metric go right after the metric they qualify.
_CELL_KEYS = ["run_id", "board", "device_name", "variant_name", "variant_sha256", "repeat", "status", "error",
              "started_at"]
_CELL_AFTER = {"n": ["warmup"]}
_CELL_TAIL = ["estimated", "latency_source"]


def cell_columns() -> list[str]:
    out = list(_CELL_KEYS)
    for m in metrics.stored():
        out += [m.column, *_CELL_AFTER.get(m.column, [])]
    return [*out, *_CELL_TAIL]


CELL_COLUMNS = cell_columns()


def write_tidy(data: ReportData, out_dir: Path) -> list[Path]:
    summary_path = out_dir / "summary.csv"
    data.summary.to_csv(summary_path, index=False)
    # Cell facts only: what describes the variant or the board is in summary.csv and the HTML's provenance.
    cells = data.cells[[c for c in cell_columns() if c in data.cells]]
    cells_path = out_dir / "cells.csv"
    cells.to_csv(cells_path, index=False)
    written = [summary_path, cells_path]
    parquet = _write_parquet(data.cells, out_dir / "cells.parquet")
    if parquet is not None:
        written.append(parquet)
    return written


def _write_parquet(cells: pd.DataFrame, path: Path) -> Path | None:
    try:
        import pyarrow  # noqa: F401 - only to know whether pandas can write Parquet here
    except ImportError:
        log.info("pyarrow is not installed: no Parquet file (CSV only)")
        return None
    frame = cells.copy()
    if "latency_ns" in frame:
        frame["latency_ns"] = [list(map(float, s)) for s in frame["latency_ns"]]
    if "details" in frame:
        frame["details"] = [json.dumps(d, default=str, sort_keys=True) for d in frame["details"]]
    frame.to_parquet(path, index=False)
    return path

"""The metric registry answers what compare and the store used to restate: columns, fallbacks, noise floors;
and a new metric is one registry entry and its producer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from benchcore import metrics
from benchcore.metrics import METRICS


def test_ram_reads_the_arena_and_falls_back_to_peak_ram_growth() -> None:
    ram = METRICS["ram"]
    assert ram.value_column({"arena_bytes": 2048, "ram_bytes": 9}) == "arena_bytes"
    assert ram.value_column({"arena_bytes": float("nan"), "ram_bytes": 9}) == "ram_bytes"
    assert ram.value({"arena_bytes": None, "ram_bytes": 9}) == 9
    assert ram.value_column({}) is None and ram.value({}) is None


def test_only_host_measured_figures_carry_a_noise_floor() -> None:
    assert metrics.noise_key("ram_bytes") == "ram_noise_bytes"
    assert metrics.noise_key("arena_bytes") is None  # the runtime's own figure is exact
    assert metrics.noise_keys() == ["ram_noise_bytes"]
    assert metrics.may_be_noisy(METRICS["ram"]) and not metrics.may_be_noisy(METRICS["flash"])


def test_every_stored_column_is_named_once() -> None:
    columns = [m.column for m in metrics.stored()]
    assert len(columns) == len(set(columns))


# --- a new metric is one registry entry and its producer ----------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]

#: Run in a fresh interpreter, as bench would run after someone added one entry to benchcore/metrics.py: the
#: entry goes into the registry before any harness module is imported (they read the registry when they
#: load), and its producer is the cell step emitting the figure, as harness/cell.py does for the others.
#: Nothing else is touched: the store, results, compare, the report, cells.csv and `bench show` must follow.
_NEW_METRIC = r'''
import io, json, sys
from pathlib import Path

import pytest

from benchcore import metrics
from benchcore.metrics import Metric, Shown

assert not any(m.startswith("harness") for m in sys.modules), "register before the harness loads"
metrics.METRICS["wobble"] = Metric(
    "wobble", "wobble_mj", "mJ", "a throwaway figure", better="lower", threshold="+5%", fmt=".3f",
    report=Shown("wobble mJ", ".3f"), show=Shown("wobble mJ", ".2f", keep=5))

from harness import cell  # the producer: every measured cell emits the figure (scaled per sweep below)
assert "harness.executor" not in sys.modules
FACTOR = [1.0]
_measure = cell.measure_cell

def measure_cell(device, c, inputs, timing, energy=None):
    record = _measure(device, c, inputs, timing, energy)
    return record.with_metrics(wobble_mj=FACTOR[0] * (1.5 + c.repeat)) if record.ok else record

cell.measure_cell = measure_cell

import pandas as pd
import sqlalchemy as sa
from rich.console import Console

from harness import compare, compare_output, results
from harness.bundle import load_bundle
from harness.config import parse_config
from harness.models.zoo import EXAMPLE_DIR
from harness.report.data import build_report_data
from harness.report.tables import original_vs_pruned
from harness.report.tidy import write_tidy
from harness.store import Store
from harness.sweep import run_sweep
from harness.table import results_table

url, work = sys.argv[1], Path(sys.argv[2])
out = {}
engine = sa.create_engine(url)

def table_state():
    with engine.connect() as conn:
        columns = [c["name"] for c in sa.inspect(conn).get_columns("measurements")]
        version = conn.exec_driver_sql("SELECT value FROM bench_meta WHERE key = 'schema_version'").scalar() \
            if sa.inspect(conn).has_table("bench_meta") else None
        rows = conn.exec_driver_sql("SELECT COUNT(*) FROM measurements").scalar() \
            if sa.inspect(conn).has_table("measurements") else 0
    return {"columns": columns, "version": version, "rows": rows}

out["before"] = table_state() if Path(url.removeprefix("sqlite:///")).exists() else None
Store.open(url).close()
out["opened"] = table_state()
store = Store.open(url, create=False)
old_runs = [r["id"] for r in store.list_runs()]
store.close()

doc = {"store": {"url": url},
       "devices": [{"name": "board-a", "kind": "fake", "latency_us": 100.0},
                   {"name": "board-b", "kind": "fake", "latency_us": 300.0}],
       "sweep": {"models": [str(EXAMPLE_DIR / "digits_dense.tflite")], "repeats": 2, "iterations": 10}}
runs = []
for factor in (1.0, 2.0):
    FACTOR[0] = factor
    runs.append(run_sweep(parse_config(doc, "test", work)).run_id)
base, cur = runs

cells = results.load(cur, url)
out["cells_wobble"] = sorted(cells["wobble_mj"].tolist())
summary = results.summarize(cells)
out["summary_columns"] = list(summary.columns)
out["summary_wobble"] = dict(zip(summary["device_name"], summary["wobble_mj"]))
out["old"] = {}
for run in old_runs:
    old = results.summarize(results.load(run, url))
    out["old"][run] = {"p50_us": dict(zip(old["device_name"], old["p50_us"])),
                       "wobble_mj": [None if pd.isna(v) else v for v in old["wobble_mj"]]}

result = compare.compare(compare.resolve_bundle(base, url), compare.resolve_bundle(cur, url))
out["compare"] = [[r.cell.device, r.metric, r.baseline, r.current, r.verdict] for r in result.results
                  if r.metric == "wobble"]
out["compare_thresholds"] = {m: t.text for m, t in result.thresholds.items()}
out["compare_exit"] = result.exit_code
out["compare_markdown"] = compare_output.to_markdown(result)

data = build_report_data(load_bundle([cur], url))
tables = original_vs_pruned(data)
out["report"] = {board: {"columns": t.columns, "rows": t.rows} for board, t in tables.items()}
tidy = work / "tidy"
tidy.mkdir()
write_tidy(data, tidy)
out["cells_csv"] = pd.read_csv(tidy / "cells.csv")[["device_name", "repeat", "wobble_mj"]].values.tolist()
out["summary_csv"] = pd.read_csv(tidy / "summary.csv")[["device_name", "wobble_mj"]].values.tolist()

console = Console(width=250, record=True, file=io.StringIO())
console.print(results_table(summary, "results"))
out["show"] = console.export_text()
out["after"] = table_state()
print(json.dumps(out))
'''


def _with_new_metric(url: str, work: Path) -> dict[str, Any]:
    script = work / "new_metric.py"
    script.write_text(_NEW_METRIC)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, str(script), url, str(work)], cwd=work, capture_output=True, text=True,
                          env=env, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_new_metric_is_one_registry_entry_and_its_producer(tmp_path: Path) -> None:
    out = _with_new_metric(f"sqlite:///{tmp_path / 'bench.db'}", tmp_path)
    # the store: a column of its own in a new database, each cell's figure in it
    assert "wobble_mj" in out["opened"]["columns"]
    assert out["cells_wobble"] == [3.0, 3.0, 5.0, 5.0]  # 2 boards x repeats 0, 1 at factor 2
    # results.summarize pools it (the median of the repeats, by default)
    assert "wobble_mj" in out["summary_columns"]
    assert out["summary_wobble"] == {"board-a": 4.0, "board-b": 4.0}
    # compare judges it by its default threshold: doubled, a regression; latency did not move
    assert out["compare_thresholds"]["wobble"] == "wobble=+5%"
    assert sorted(out["compare"]) == [["board-a", "wobble", 2.0, 4.0, "regression"],
                                      ["board-b", "wobble", 2.0, 4.0, "regression"]]
    assert out["compare_exit"] == 1 and "wobble" in out["compare_markdown"]
    assert "4.000 mJ" in out["compare_markdown"]  # shown by the registry's format and unit
    # the report's original-vs-pruned table: its header and format, after the built-in columns
    for board in ("board-a", "board-b"):
        table = out["report"][board]
        assert table["columns"][-2:] == ["n", "wobble mJ"]
        assert [row[-1] for row in table["rows"]] == ["4.000"]
    # the tidy data: cells.csv per cell, summary.csv per (board, variant)
    assert sorted(out["cells_csv"]) == [["board-a", 0, 3.0], ["board-a", 1, 5.0], ["board-b", 0, 3.0],
                                        ["board-b", 1, 5.0]]
    assert sorted(out["summary_csv"]) == [["board-a", 4.0], ["board-b", 4.0]]
    # `bench show`
    header = next(line for line in out["show"].splitlines() if "p50 µs" in line)
    assert header.rstrip(" ┃").endswith("wobble mJ")
    assert sum(" 4.00 " in line for line in out["show"].splitlines()) == 2


def test_a_database_made_before_the_metric_existed_gets_its_column_and_keeps_its_rows(tmp_path: Path) -> None:
    """A v2 store written by this bench (no `wobble`), opened by a bench that has it: the column is added on
    open, without a schema version step; the old cells stay, with no figure for it; new cells carry it. The
    bench without the metric still reads the store afterwards."""
    from harness import results
    from harness.config import parse_config
    from harness.models.zoo import EXAMPLE_DIR
    from harness.sweep import run_sweep

    url = f"sqlite:///{tmp_path / 'bench.db'}"
    doc = {"store": {"url": url}, "devices": [{"name": "board-a", "kind": "fake", "latency_us": 250.0}],
           "sweep": {"models": [str(EXAMPLE_DIR / "digits_dense.tflite")], "repeats": 2, "iterations": 10}}
    old_run = run_sweep(parse_config(doc, "test", tmp_path)).run_id
    old_p50 = results.summarize(results.load(old_run, url))["p50_us"].iloc[0]

    out = _with_new_metric(url, tmp_path)
    before, opened = out["before"], out["opened"]
    assert before["version"] == opened["version"] == "2"
    assert "wobble_mj" not in before["columns"] and opened["columns"] == [*before["columns"], "wobble_mj"]
    assert opened["rows"] == before["rows"] == 2  # nothing lost on open
    assert out["old"][old_run]["p50_us"]["board-a"] == pytest.approx(old_p50)
    assert out["old"][old_run]["wobble_mj"] == [None]  # never measured: empty, not zero
    assert out["after"]["rows"] == 2 + 2 * 2 * 2  # and two new sweeps were written beside them
    assert out["summary_wobble"] == {"board-a": 4.0, "board-b": 4.0}

    # Back in a bench without the metric: the extra column is no obstacle to reading or writing.
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT run_id, wobble_mj FROM measurements ORDER BY id").fetchall()
    engine.dispose()
    assert [w for run, w in stored if run == old_run] == [None, None]
    assert all(w is not None for run, w in stored if run != old_run)
    assert results.load(old_run, url)["p50_us"].notna().all()
    assert run_sweep(parse_config(doc, "test", tmp_path)).cells_ok == 2


def test_the_tables_take_their_metric_columns_from_the_registry() -> None:
    """Which metrics `bench show`, the report and cells.csv have, with their headers, in their order."""
    from harness.report.tables import ORIGINAL_VS_PRUNED_COLUMNS
    from harness.report.tidy import cell_columns
    from harness.table import RESULT_COLUMNS

    assert [c.header for c in RESULT_COLUMNS][5:] == [
        "p50 µs", "p5–p95 µs", "cv", "n", "RAM KiB", "arena KiB", "model KiB", "µJ/inf", "top-1", "≡ TFLM"]
    assert ORIGINAL_VS_PRUNED_COLUMNS[4:] == [
        "latency p50 µs (p5–p95)", "speed-up", "load ms", "RAM KiB", "flash KiB (gzip)", "energy µJ", "top-1",
        "max Δ LSB", "n"]
    stored = [m.column for m in metrics.stored()]
    assert [c for c in cell_columns() if c in stored] == stored
    assert METRICS["flash"].pool == "first" and METRICS["repeat_spread"].spread_of == "latency"

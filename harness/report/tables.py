"""Report tables as plain rows of display strings, rendered alike by the HTML and Markdown writers.

The main one is the table every pruning article promises and few measure: the original model against
each pruned variant on each board — latency, speed-up, RAM, flash, energy, accuracy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from benchcore.metrics import METRICS, Metric
from harness.report.data import ReportData
from harness.sparsity import LEGEND as SPARSITY_LEGEND
from harness.sparsity import REMOVED_OR_ZERO, ZERO_WEIGHTS

MISSING = "–"


@dataclass
class Table:
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    #: Column indexes holding numbers (right-aligned).
    numeric: set[int] = field(default_factory=set)
    caption: str = ""


def missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def num(value: Any, fmt: str, scale: float = 1.0) -> str:
    if missing(value):
        return MISSING
    try:
        return format(float(value) / scale, fmt)
    except (TypeError, ValueError):
        return str(value)


def pct(value: Any, digits: int = 0) -> str:
    return MISSING if missing(value) else f"{float(value) * 100:.{digits}f}%"


def source_mark(source: Any) -> str:
    parts = set(str(source or "").split(","))
    return " est." if "estimated" in parts else " emu." if "emulated" in parts else ""


def _signed_pp(value: Any) -> str:
    if missing(value) or math.isclose(float(value), 0.0, abs_tol=1e-9):
        return ""
    return f" ({float(value):+.1f} pp)"


#: The original-vs-pruned table's columns, in order: a registry metric (shown by its own header and
#: format), or a column this table composes (sparsity, latency with its spread, speed-up, flash, top-1, n).
_COLUMNS: list[str | Metric] = [
    "variant", "method", ZERO_WEIGHTS.label, REMOVED_OR_ZERO.label, "latency p50 µs (p5–p95)", "speed-up",
    METRICS["load_time"], METRICS["ram"], "flash KiB (gzip)", METRICS["energy"], "top-1", METRICS["output_max_lsb"],
    "n",
]
ORIGINAL_VS_PRUNED_COLUMNS = [c.header if isinstance(c, Metric) else c for c in _COLUMNS]


def metric_cell(metric: Metric, row: dict[str, Any]) -> str:
    """A registry metric's figure in a summary row, as the table shows it."""
    return num(metric.value(row), metric.table_fmt, metric.table_scale)


def original_vs_pruned(data: ReportData) -> dict[str, Table]:
    """One table per board: the dense reference first, then each pruned variant against it."""
    out: dict[str, Table] = {}
    summary = data.summary
    for board in data.boards:
        rows = summary[summary["board"] == board]
        rows = pd.concat([rows[rows["is_reference"]],
                          rows[~rows["is_reference"]].sort_values(["series", REMOVED_OR_ZERO.column],
                                                                  kind="stable")])
        table = Table(list(ORIGINAL_VS_PRUNED_COLUMNS), numeric=set(range(2, len(ORIGINAL_VS_PRUNED_COLUMNS))))
        caps: list[str] = []
        for r, record in zip(rows.itertuples(index=False), rows.to_dict(orient="records"), strict=True):
            sparsity = [pct(r.zero_weights, 1), pct(r.removed_or_zero, 1)]
            if not r.repeats:
                table.rows.append([r.variant_name, r.series, *sparsity, f"failed ×{r.failed}",
                                   *[MISSING] * (len(table.columns) - 5)])
                continue
            failed = f" ({r.failed} failed)" if r.failed else ""
            composed = {
                "variant": r.variant_name, "method": r.series,
                ZERO_WEIGHTS.label: sparsity[0], REMOVED_OR_ZERO.label: sparsity[1],
                "latency p50 µs (p5–p95)": f"{num(r.p50_us, '.1f')}{source_mark(r.latency_source)} "
                                           f"({num(r.p5_us, '.1f')}–{num(r.p95_us, '.1f')}){failed}",
                "speed-up": MISSING if missing(r.speedup) else f"{r.speedup:.2f}×",
                "flash KiB (gzip)": f"{num(r.model_bytes, '.1f', 1024)} ({num(r.gzip_bytes, '.1f', 1024)})",
                "top-1": (MISSING if missing(r.accuracy) else f"{r.accuracy * 100:.1f}%")
                         + _signed_pp(r.accuracy_delta_pp),
                "n": n_text(r),
            }  # fmt: skip
            table.rows.append([metric_cell(c, record) if isinstance(c, Metric) else composed[c] for c in _COLUMNS])
            if not missing(r.iterations_cap) and r.iterations_cap_reason and r.iterations_cap_reason not in caps:
                caps.append(str(r.iterations_cap_reason))
        mem = "TFLM arena" if rows["arena_bytes"].notna().any() else "peak RAM growth"
        table.caption = (f"{SPARSITY_LEGEND}. RAM = {mem}; flash = model file size (gzip -9 in brackets); "
                         f"load = deploying the model; max Δ LSB = largest output difference from the TFLM "
                         f"runtime's, in int8 steps; speed-up and Δ pp are against "
                         f"{', '.join(sorted(set(rows['ref_variant'].dropna()))) or 'the dense model'} "
                         f"on this board; est. = estimated by a cost model, emu. = emulated; "
                         f"n = timed inferences pooled over the repeats."
                         + "".join(f" n capped: {c}." for c in caps))
        out[board] = table
    return out


def n_text(row: Any) -> str:
    """`n`, and when the driver ran fewer timed inferences than asked, how many were asked."""
    if missing(row.n):
        return MISSING
    text = str(int(row.n))
    if not missing(row.iterations_cap) and not missing(row.iterations_requested):
        text += f" of {int(row.iterations_requested)} asked"
    return text


def op_tables(data: ReportData, top: int = 5) -> dict[str, Table]:
    """Per board with a per-op profile: its top operators in the dense model, and the share of one
    inference each takes in every variant, so a reader sees which operators pruning moved."""
    out: dict[str, Table] = {}
    if data.ops.empty:
        return out
    order = data.summary.sort_values(["is_reference"], ascending=False, kind="stable")
    for board in data.boards:
        ops = data.ops[data.ops["board"] == board]
        if ops.empty:
            continue
        variants = [v for v in dict.fromkeys(order[order["board"] == board]["variant_name"])
                    if v in set(ops["variant_name"])]
        reference = variants[0]
        leading = list(ops[ops["variant_name"] == reference].nlargest(top, "share")["op"])
        table = Table(["operator", *variants], numeric=set(range(1, len(variants) + 1)))
        cell = {(r.variant_name, r.op): r for r in ops.itertuples(index=False)}
        for op in leading:
            row = [op]
            for v in variants:
                r = cell.get((v, op))
                if r is None:
                    row.append(MISSING)
                    continue
                time = "" if missing(r.time_us) else f" ({num(r.time_us, '.1f')} µs)"
                row.append(f"{pct(r.share)}{time}")
            table.rows.append(row)
        units = ", ".join(sorted(set(ops["unit"].dropna())))
        table.caption = (f"Share of one inference's time per operator type (time per inference in brackets), "
                         f"from the device's per-op profile ({units}); top {len(leading)} of {reference}, "
                         f"the first column, and the same operators in each variant.")
        out[board] = table
    return out


def warnings_table(data: ReportData, limit: int = 200) -> Table:
    table = Table(["kind", "board", "variant", "what"])
    for w in data.warnings[:limit]:
        table.rows.append([w.kind, w.board or "", w.variant or "", w.message])
    if len(data.warnings) > limit:
        table.caption = f"… and {len(data.warnings) - limit} more (see cells.csv)."
    return table


def mlperf_table(data: ReportData) -> Table | None:
    """Cells measured the MLPerf Tiny way (`mlperf` devices), in the runner's own terms, so a figure can be
    quoted beside a submission: windows, inferences per window, shortest window, median throughput."""
    cells = data.cells
    if cells.empty or "details" not in cells:
        return None
    ok = cells[cells["status"] == "ok"]
    picked = [isinstance(d, dict) and isinstance(d.get("mlperf"), dict) for d in ok["details"]]
    table = Table(["board", "variant", "repeat", "model id", "windows × inferences", "shortest window (s)",
                   "median throughput (inf./sec.)", "median latency (µs)", "rules", "source"],
                  numeric={4, 5, 6, 7})  # fmt: skip
    for cell in ok[picked].itertuples(index=False):
        ml = cell.details["mlperf"]
        windows = ml.get("windows") or []
        n = sorted({w.get("iterations") for w in windows})
        shortest = min((w.get("runtime_s") or 0.0 for w in windows), default=None)
        if ml.get("rules"):
            rules = "MLCommons Tiny: 5 windows ≥ 10 s" + ("" if ml.get("valid_for_submission") else " (emulated)")
        else:
            rules = f"not MLPerf rules ({len(windows)} windows ≥ {ml.get('min_seconds', 0):g} s)"
        table.rows.append([
            str(cell.board), str(cell.variant_name), str(cell.repeat), str(ml.get("model_id") or ""),
            f"{len(windows)} × {'/'.join(str(x) for x in n)}", num(shortest, ".3f"),
            num(ml.get("median_throughput_inf_s"), ".3f"), num(ml.get("median_latency_us"), ".1f"), rules,
            str(cell.latency_source),
        ])  # fmt: skip
    if not table.rows:
        return None
    table.caption = ("Throughput = inferences / (second m-lap-us − first m-lap-us) per window, by the DUT's own "
                     "clock; the median over windows, as MLCommons' runner reports it.")
    return table

"""Report tables as plain rows of display strings, rendered alike by the HTML and Markdown writers.

The main one is the table every pruning article promises and few measure: the original model against
each pruned variant on each board — latency, speed-up, RAM, flash, energy, accuracy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from benchcore import metrics as metric_registry
from benchcore.metrics import METRICS, Metric, Shown
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


#: The original-vs-pruned table's leading columns (who each row is, its sparsity), then the registry
#: metrics that have a `report` column (benchcore.metrics), in its order, by their headers and formats.
_KEYS = ["variant", "method", ZERO_WEIGHTS.label, REMOVED_OR_ZERO.label]
#: Columns this table composes that are no metric of their own, by the metric they follow.
_AFTER = {"latency": ["speed-up"]}


def _columns() -> list[tuple[Metric, Shown] | str]:
    out: list[tuple[Metric, Shown] | str] = list(_KEYS)
    for metric, shown in metric_registry.report_columns():
        out += [(metric, shown), *_AFTER.get(metric.name, [])]
    return out


_COLUMNS = _columns()
ORIGINAL_VS_PRUNED_COLUMNS = [c if isinstance(c, str) else c[1].header for c in _COLUMNS]


def metric_cell(metric: Metric, row: dict[str, Any], shown: Shown | None = None) -> str:
    """A registry metric's figure in a summary row, as the table shows it (its `report` format by default)."""
    shown = shown or metric.report or Shown(metric.name)
    return num(metric.value(row), shown.fmt, shown.scale)


def _composed_cell(metric: Metric, shown: Shown, r: Any, record: dict[str, Any], failed: str) -> str:
    """A metric's cell, with what this table shows around some figures: the latency's source mark, p5–p95
    band and failed repeats; the gzip size beside the file size; top-1's change against the dense model."""
    figure = metric_cell(metric, record, shown)
    if metric.name == "latency":
        band = "–".join(metric_cell(METRICS[m], record, shown) for m in ("p5", "p95"))
        return f"{figure}{source_mark(r.latency_source)} ({band}){failed}"
    if metric.name == "flash":
        return f"{figure} ({num(record.get('gzip_bytes'), shown.fmt, shown.scale)})"
    if metric.name == "accuracy":
        return figure + _signed_pp(r.accuracy_delta_pp)
    if metric.name == "n":
        return n_text(r)
    return figure


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
            keys = [r.variant_name, r.series, *sparsity]
            if not r.repeats:
                table.rows.append([*keys, f"failed ×{r.failed}", *[MISSING] * (len(table.columns) - len(keys) - 1)])
                continue
            failed = f" ({r.failed} failed)" if r.failed else ""
            composed = {"speed-up": MISSING if missing(r.speedup) else f"{r.speedup:.2f}×"}
            table.rows.append([*keys, *(composed[c] if isinstance(c, str) else
                                        _composed_cell(*c, r, record, failed) for c in _COLUMNS[len(keys):])])
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

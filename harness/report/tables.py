"""Report tables as plain rows of display strings, rendered alike by the HTML and Markdown writers.

The main one is the table every pruning article promises and few measure: the original model against
each pruned variant on each board — latency, speed-up, RAM, flash, energy, accuracy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from harness.report.data import ReportData

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


def original_vs_pruned(data: ReportData) -> dict[str, Table]:
    """One table per board: the dense reference first, then each pruned variant against it."""
    out: dict[str, Table] = {}
    summary = data.summary
    for board in data.boards:
        rows = summary[summary["board"] == board]
        rows = pd.concat([rows[rows["is_reference"]],
                          rows[~rows["is_reference"]].sort_values(["series", "sparsity"], kind="stable")])
        table = Table(["variant", "method", "sparsity", "latency p50 µs (p5–p95)", "speed-up", "RAM KiB",
                       "flash KiB (gzip)", "energy µJ", "top-1", "n"], numeric={2, 3, 4, 5, 6, 7, 8, 9})
        for r in rows.itertuples(index=False):
            if not r.repeats:
                table.rows.append([r.variant_name, r.series, pct(r.sparsity), f"failed ×{r.failed}",
                                   *[MISSING] * 6])
                continue
            ram = r.arena_bytes if not missing(r.arena_bytes) else r.ram_bytes
            failed = f" ({r.failed} failed)" if r.failed else ""
            table.rows.append([
                r.variant_name, r.series, pct(r.sparsity),
                f"{num(r.p50_us, '.1f')}{source_mark(r.latency_source)} ({num(r.p5_us, '.1f')}–"
                f"{num(r.p95_us, '.1f')}){failed}",
                MISSING if missing(r.speedup) else f"{r.speedup:.2f}×",
                num(ram, ".1f", 1024),
                f"{num(r.model_bytes, '.1f', 1024)} ({num(r.gzip_bytes, '.1f', 1024)})",
                num(r.energy_uj, ".2f"),
                (MISSING if missing(r.accuracy) else f"{r.accuracy * 100:.1f}%") + _signed_pp(r.accuracy_delta_pp),
                str(int(r.n)) if not missing(r.n) else MISSING,
            ])
        mem = "TFLM arena" if rows["arena_bytes"].notna().any() else "peak RAM growth"
        table.caption = (f"RAM = {mem}; flash = model file size (gzip -9 in brackets); speed-up and Δ pp are "
                         f"against {', '.join(sorted(set(rows['ref_variant'].dropna()))) or 'the dense model'} "
                         f"on this board; est. = estimated by a cost model, emu. = emulated.")
        out[board] = table
    return out


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

"""Firmware backends side by side: the same variant on `ref`, `tflm` and `tflm-cmsis-nn`, and where the
instructions go per operator.

Reads only what the MCU drivers put in each cell's `details` (backend, tflm_commit, instructions,
arena_used_bytes / arena_min_bytes); a run without such cells yields no table, so the rest of the report is
untouched. Where the instructions go per operator is the report's operator table (`tables.op_tables`), from
the typed per-op profiles in the store: every backend is its own board there.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from harness.report.data import METHOD_STRUCTURE, ReportData
from harness.report.tables import MISSING, Table, num

#: Display order; any other backend name a firmware reports follows these.
ORDER = ("ref", "tflm", "tflm-cmsis-nn")


def _backend_cells(data: ReportData) -> pd.DataFrame:
    cells = data.cells
    if cells.empty or "details" not in cells:
        return cells.iloc[0:0]
    ok = cells[cells["status"] == "ok"].copy()
    ok["backend"] = [d.get("backend") if isinstance(d, dict) else None for d in ok["details"]]
    return ok[ok["backend"].notna()]


def _order(names: list[str]) -> list[str]:
    return sorted(set(names), key=lambda b: (ORDER.index(b) if b in ORDER else len(ORDER), b))


def _median_instructions(group: pd.DataFrame) -> float | None:
    xs = [x for d in group["details"] for x in (d.get("instructions") or [])]
    return float(np.median(xs)) if xs else None


def _first(group: pd.DataFrame, key: str) -> Any:
    for d in group["details"]:
        if d.get(key) is not None:
            return d[key]
    return None


def backends_side_by_side(data: ReportData) -> Table | None:
    """Per variant: emulated instructions, speed-up over the dense variant and on-target arena, per backend."""
    cells = _backend_cells(data)
    backends = _order(list(cells["backend"]))
    if len(backends) < 2:
        return None
    stats: dict[tuple[str, str], dict[str, Any]] = {}
    for (variant, backend), g in cells.groupby(["variant_name", "backend"], sort=False):
        lsb = g["output_max_lsb"].dropna()
        stats[(variant, backend)] = {
            "instr": _median_instructions(g), "arena": _first(g, "arena_min_bytes") or _first(g, "arena_used_bytes"),
            "lsb": int(lsb.max()) if len(lsb) else None, "method": g["method"].iloc[0],
        }  # fmt: skip
    variants = list(dict.fromkeys(cells["variant_name"]))
    dense = {b: stats[(v, b)]["instr"] for v in variants for b in backends
             if (v, b) in stats and METHOD_STRUCTURE.get(str(stats[(v, b)]["method"])) == "baseline"}  # fmt: skip
    columns = ["variant", "pruning"]
    for b in backends:
        columns += [f"{b} instructions", f"{b} speed-up", f"{b} arena B", f"{b} max LSB"]
    table = Table(columns, numeric=set(range(2, len(columns))))
    for v in variants:
        method = next((stats[(v, b)]["method"] for b in backends if (v, b) in stats), None)
        row = [v, METHOD_STRUCTURE.get(str(method), str(method or MISSING))]
        for b in backends:
            s = stats.get((v, b))
            if s is None:
                row += [MISSING] * 4
                continue
            base = dense.get(b)
            speed = base / s["instr"] if base and s["instr"] else None
            row += [num(s["instr"], ",.0f"), num(speed, ".2f") + ("×" if speed else ""), num(s["arena"], ",.0f"),
                    num(s["lsb"], "d")]  # fmt: skip
        table.rows.append(row)
    commits = sorted({str(c)[:12] for _, g in cells.groupby("backend") if (c := _first(g, "tflm_commit"))})
    table.caption = (
        "Instructions: QEMU -icount instruction counts per inference (emulated, not Cortex-M cycles; median of the "
        "timed inferences, deterministic run to run). Speed-up: over the dense variant on the same backend. Arena: "
        "the smallest arena ALLOCATE accepts on the 32-bit target (binary search), else the backend's own figure. "
        "Max LSB: largest output difference from the TFLM reference on the accuracy samples. "
        + (f"TFLM commit {', '.join(commits)}." if commits else "")
    )
    return table


def backend_tables(data: ReportData) -> list[tuple[str, Table]]:
    """The (title, table) pairs the writers append: nothing when no cell names a firmware backend."""
    side = backends_side_by_side(data)
    return [("Firmware backends side by side", side)] if side is not None else []

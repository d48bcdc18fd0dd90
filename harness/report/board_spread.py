"""Board-to-board spread: how much identical boards of one pool disagree, next to how much one board
disagrees with itself across repeats.

A pool is a set of boards sold as the same part (harness/lab). If the spread between boards is no
larger than the spread between repeats on one board, a figure measured on any of them stands for the
part; if it is larger, the part's figure needs several boards. Cells name their physical board in
`details["board"]` (a pool's cells on the lab) or are a pooled board's own (a local sweep).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from harness.report.data import ReportData
from harness.report.tables import Table, num, pct, source_mark

TITLE = "Board-to-board spread, per pool"


def _pools(runs: pd.DataFrame) -> dict[tuple[str, str], str]:
    """(run, device name) -> pool, from each run's config as it ran."""
    out: dict[tuple[str, str], str] = {}
    for _, run in runs.iterrows():
        config = run.get("config") or {}
        for dev in config.get("devices", []) if isinstance(config, dict) else []:
            if dev.get("pool"):
                out[(run["id"], dev["name"])] = dev["pool"]
    return out


def pooled_cells(data: ReportData) -> pd.DataFrame:
    """The successful cells of pooled boards, with `pool` and `board` (the physical one) columns."""
    cells = data.cells
    if cells.empty or data.runs.empty:
        return pd.DataFrame(columns=["pool", "board", "variant_name", "p50_us", "latency_source"])
    pools = _pools(data.runs)
    ok = cells[cells["status"] == "ok"]
    rows: list[dict[str, Any]] = []
    for _, c in ok.iterrows():
        pool = pools.get((c["run_id"], c["device_name"]))
        if pool is None:
            continue
        details = c.get("details") if isinstance(c.get("details"), dict) else {}
        rows.append({"pool": pool, "board": details.get("board") or c["device_name"],
                     "variant_name": c["variant_name"], "p50_us": float(c["p50_us"]),
                     "latency_source": c.get("latency_source")})
    return pd.DataFrame(rows, columns=["pool", "board", "variant_name", "p50_us", "latency_source"])


def _rel_spread(values: pd.Series) -> float | None:
    if len(values) < 2 or not values.median():
        return None
    return float((values.max() - values.min()) / values.median())


def _pool_row(pool: str, group: pd.DataFrame) -> list[str] | None:
    """Across all variants: each board's median offset from the pool's per-variant median."""
    # Only variants measured on two boards or more say anything about the boards.
    group = group[group.groupby("variant_name")["board"].transform("nunique") >= 2]
    if group["board"].nunique() < 2 or group["variant_name"].nunique() < 2:
        return None  # with one variant, its own row says it all
    rel = group["p50_us"] / group.groupby("variant_name")["p50_us"].transform("median") - 1.0
    offsets = rel.groupby(group["board"]).median()
    within = [s for (_, _), v in group.groupby(["board", "variant_name"])["p50_us"]
              if (s := _rel_spread(v)) is not None]
    sizes = group.groupby("board").size()
    return [pool, "all variants", ", ".join(f"{b} ({n})" for b, n in sizes.items()),
            ", ".join(f"{o * 100:+.2f}%" for o in offsets), pct(float(offsets.max() - offsets.min()), 2),
            pct(float(pd.Series(within).median()), 2) if within else "– (one cell per board and variant)"]


def board_spread_table(data: ReportData) -> Table | None:
    """One row per (pool, variant) measured on two boards or more; None when no pool has two."""
    cells = pooled_cells(data)
    table = Table(columns=["pool", "variant", "boards (cells)", "p50 per board (µs)", "board-to-board",
                           "run-to-run"], numeric={4, 5})
    for pool, group in cells.groupby("pool", sort=False):
        row = _pool_row(pool, group)
        if row is not None:
            table.rows.append(row)
    for (pool, variant), group in cells.groupby(["pool", "variant_name"], sort=False):
        per_board = group.groupby("board", sort=True)["p50_us"]
        if per_board.ngroups < 2:
            continue
        medians = per_board.median()
        within = [s for s in (_rel_spread(v) for _, v in per_board) if s is not None]
        mark = source_mark(",".join(sorted(set(group["latency_source"].dropna()))))
        table.rows.append([
            pool, variant, ", ".join(f"{b} ({n})" for b, n in per_board.size().items()),
            ", ".join(num(m, ".1f") + mark for m in medians), pct(_rel_spread(medians), 2),
            pct(float(pd.Series(within).median()), 2) if within else "– (one cell per board)",
        ])
    if not table.rows:
        return None
    table.caption = ("all variants: each cell relative to its variant's median over the pool, so boards that "
                     "measured different variants still compare; "
                     "board-to-board: (max − min) / median of each board's median p50; run-to-run: the same over "
                     "one board's repeats, median across the pool's boards. est. = estimated by a cost model, "
                     "emu. = emulator instruction count: their spread is the model's, not silicon's.")
    return table

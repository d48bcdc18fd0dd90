"""The headline of each board: which variant is fastest, smallest and most frugal while it stays
accurate enough, so a reader gets the answer before the tables.

"Accurate enough" is an accuracy floor: the dense model's top-1 on that board minus a tolerance in
percentage points (1 pp by default). A board that measured no accuracy gets no floor, and says so:
the winners there are only the cheapest variants, whatever they cost in accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from harness.report.data import DEFAULT_ACCURACY_FLOOR_PP, ReportData
from harness.report.tables import MISSING, Table, missing, num, source_mark

#: (what, column, how the winning figure is written) in headline order.
_GOALS = (
    ("fastest", "p50_us", lambda r: f"{num(r.p50_us, '.1f')} µs{source_mark(r.latency_source)}"
     + (f", {r.speedup:.2f}× dense" if not missing(r.speedup) else "")),
    ("smallest", "model_bytes", lambda r: f"{num(r.model_bytes, '.1f', 1024)} KiB flash "
     f"(gzip {num(r.gzip_bytes, '.1f', 1024)})"),
    ("least energy", "energy_uj", lambda r: f"{num(r.energy_uj, '.2f')} µJ per inference"),
)


@dataclass
class Headline:
    board: str
    floor: str
    #: what -> "variant: figure (top-1)" or a reason there is none.
    best: dict[str, str] = field(default_factory=dict)


def headlines(data: ReportData, floor_pp: float = DEFAULT_ACCURACY_FLOOR_PP) -> list[Headline]:
    ok = data.ok_summary()
    out = []
    for board in data.boards_with_results():
        rows = ok[ok["board"] == board]
        eligible, floor = _eligible(rows, floor_pp)
        head = Headline(board, floor)
        for what, column, text in _GOALS:
            values = pd.to_numeric(eligible[column], errors="coerce")
            if values.notna().any():
                r = eligible.loc[values.idxmin()]
                acc = "" if missing(r.accuracy) else f", top-1 {r.accuracy * 100:.1f}%"
                head.best[what] = f"{r.variant_name}: {text(r)}{acc}"
            elif pd.to_numeric(rows[column], errors="coerce").notna().any():
                head.best[what] = "no variant meets the floor"
            else:
                head.best[what] = "not measured"
        out.append(head)
    return out


def _eligible(rows: pd.DataFrame, floor_pp: float) -> tuple[pd.DataFrame, str]:
    accuracy = pd.to_numeric(rows["accuracy"], errors="coerce")
    dense = pd.to_numeric(rows.loc[rows["is_reference"], "accuracy"], errors="coerce").dropna()
    if accuracy.isna().all():
        return rows, "none: no accuracy measured on this board"
    if dense.empty:
        return rows[accuracy.notna()], "none: the dense model's accuracy is not measured here"
    floor = float(dense.max()) - floor_pp / 100
    text = f"top-1 ≥ {floor * 100:.1f}% (dense {dense.max() * 100:.1f}% − {floor_pp:g} pp)"
    return rows[accuracy >= floor - 1e-12], text


def headline_table(data: ReportData, floor_pp: float = DEFAULT_ACCURACY_FLOOR_PP) -> Table:
    table = Table(["board", "accuracy floor", *(g[0] for g in _GOALS)])
    for h in headlines(data, floor_pp):
        table.rows.append([h.board, h.floor, *(h.best.get(g[0], MISSING) for g in _GOALS)])
    table.caption = ("Best variant on each board among those at or above the accuracy floor (the dense model "
                     "counts); est. = estimated, emu. = emulated — see Warnings before comparing boards.")
    return table

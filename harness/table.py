"""The results table for the terminal: one row per (variant, device), built from `results.summarize`."""

from __future__ import annotations

import math

import pandas as pd
from rich.table import Table

_SOURCE_MARK = {"measured": "", "estimated": " est.", "emulated": " emu."}


def _num(value: object, fmt: str, scale: float = 1.0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return format(float(value) / scale, fmt)


def results_table(summary: pd.DataFrame, title: str) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    for name, justify in [
        ("device", "left"), ("variant", "left"), ("method", "left"), ("sparsity", "right"),
        ("p50 µs", "right"), ("p5–p95 µs", "right"), ("cv", "right"), ("n", "right"),
        ("RAM KiB", "right"), ("arena KiB", "right"), ("model KiB", "right"), ("µJ/inf", "right"), ("top-1", "right"),
        ("≡ TFLM", "right"),
    ]:
        table.add_column(name, justify=justify)
    for row in summary.itertuples(index=False):
        if not row.repeats:
            table.add_row(row.device_name, row.variant_name, row.method or "", "", f"[red]failed ×{row.failed}",
                          *[""] * 9)
            continue
        mark = "".join(_SOURCE_MARK.get(s, f" {s}") for s in (row.latency_source or "").split(","))
        sparsity = _num(row.measured_sparsity, ".0%") if row.measured_sparsity is not None else "–"
        failed = f" [red]({row.failed} failed)" if row.failed else ""
        table.add_row(
            row.device_name, row.variant_name, row.method or "", sparsity,
            _num(row.p50_us, ".1f") + mark + failed,
            f"{_num(row.p5_us, '.1f')}–{_num(row.p95_us, '.1f')}",
            _num(row.cv, ".2f"), str(row.n),
            _num(row.ram_bytes, ".0f", 1024), _num(row.arena_bytes, ".1f", 1024),
            _num(row.model_bytes, ".1f", 1024), _num(row.energy_uj, ".1f"), _num(row.accuracy, ".3f"),
            _num(row.output_agreement, ".0%"),
        )
    table.caption = (
        "est. = estimated by a cost model; emu. = emulator instruction count; "
        "≡ TFLM = share of outputs identical to the TFLM runtime's"
    )
    return table

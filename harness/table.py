"""The results table for the terminal: one row per (variant, device), built from `results.summarize`."""

from __future__ import annotations

import math

import pandas as pd
from rich.table import Table

from harness.sparsity import LEGEND as SPARSITY_LEGEND
from harness.sparsity import REMOVED_OR_ZERO, ZERO_WEIGHTS

_SOURCE_MARK = {"measured": "", "estimated": " est.", "emulated": " emu."}


def _num(value: object, fmt: str, scale: float = 1.0) -> str:
    if not _present(value):
        return "–"
    return format(float(value) / scale, fmt)


def results_table(summary: pd.DataFrame, title: str) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    for name, justify in [
        ("device", "left"), ("variant", "left"), ("method", "left"), (ZERO_WEIGHTS.label, "right"),
        (REMOVED_OR_ZERO.label, "right"),
        ("p50 µs", "right"), ("p5–p95 µs", "right"), ("cv", "right"), ("n", "right"),
        ("RAM KiB", "right"), ("arena KiB", "right"), ("model KiB", "right"), ("µJ/inf", "right"), ("top-1", "right"),
        ("≡ TFLM", "right"),
    ]:
        table.add_column(name, justify=justify)
    capped: dict[str, str] = {}
    for row in summary.itertuples(index=False):
        zero, removed = _num(row.zero_weights, ".1%"), _num(row.removed_or_zero, ".1%")
        if not row.repeats:
            table.add_row(row.device_name, row.variant_name, row.method or "", zero, removed,
                          f"[red]failed ×{row.failed}", *[""] * 9)
            continue
        mark = "".join(_SOURCE_MARK.get(s, f" {s}") for s in (row.latency_source or "").split(","))
        failed = f" [red]({row.failed} failed)" if row.failed else ""
        n = str(row.n)
        if _present(row.iterations_cap):
            n += "*"
            capped[row.device_name] = (f"{row.device_name}: n = {row.n} of {int(row.iterations_requested)} asked, "
                                       f"{row.iterations_cap_reason or f'capped at {int(row.iterations_cap)}'}")
        table.add_row(
            row.device_name, row.variant_name, row.method or "", zero, removed,
            _num(row.p50_us, ".1f") + mark + failed,
            f"{_num(row.p5_us, '.1f')}–{_num(row.p95_us, '.1f')}",
            _num(row.cv, ".2f"), n,
            _num(row.ram_bytes, ".0f", 1024), _num(row.arena_bytes, ".1f", 1024),
            _num(row.model_bytes, ".1f", 1024), _num(row.energy_uj, ".1f"), _num(row.accuracy, ".3f"),
            _num(row.output_agreement, ".0%"),
        )
    table.caption = (
        "est. = estimated by a cost model; emu. = emulator instruction count; "
        "≡ TFLM = share of outputs identical to the TFLM runtime's; " + SPARSITY_LEGEND
        + "".join(f"\n* {text}" for text in capped.values())
    )
    return table


def _present(value: object) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))

"""Tables for the terminal: the results table (one row per (variant, device), from `results.summarize`)
and `fitted_table`, which every bench table goes through so a narrow terminal never cuts a figure.

Rich, given too little width, shortens cells to `12…`. A truncated number is a wrong number, so here
figures never wrap nor shrink: text columns fold, headers wrap at spaces, and when that is not enough the
least important columns are left out — named in the caption, with where to see them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text

from benchcore import metrics as metric_registry
from harness.sparsity import LEGEND as SPARSITY_LEGEND
from harness.sparsity import REMOVED_OR_ZERO, ZERO_WEIGHTS

if TYPE_CHECKING:  # only for annotations: `bench --help` must not load pandas
    import pandas as pd

_SOURCE_MARK = {"measured": "", "estimated": " est.", "emulated": " emu."}
#: A text column (names) may fold down to this width before figures lose columns.
_TEXT_MIN = 12
#: ...but a word (a variant name, a run id) of up to this many cells stays whole.
_NAME_WORD = 20
_EMPTY = ("", "–")
#: Cells a column costs besides its content: one space of padding each side and one border.
_CELL_EXTRA = 3


@dataclass(frozen=True)
class Col:
    """One column: `figure` columns hold numbers (never wrapped or cut); `keep` orders what goes first when
    the terminal is too narrow (lower goes first; columns with no value at all go before any other)."""

    header: str
    justify: str = "right"
    figure: bool = True
    keep: int = 100


def fitted_table(cols: list[Col], rows: list[list[str]], *, title: str | None = None, caption: str | None = None,
                 width: int | None = None, hint: str = "", styles: list[str | None] | None = None) -> Table:
    """A rich Table that fits `width` columns (None: as wide as it needs) without cutting any figure.

    Cells may hold rich markup. Left-out columns are named in the caption, followed by `hint`."""
    shown = list(range(len(cols)))
    needs = [_min_width(c, [r[i] for r in rows]) for i, c in enumerate(cols)]
    natural = [max(Text(c.header).cell_len, *(Text.from_markup(r[i]).cell_len for r in rows)) for i, c in
               enumerate(cols)]
    widths: dict[int, int] = {}
    if width is not None:
        empty = {i for i in shown if rows and all(Text.from_markup(r[i]).plain.strip() in _EMPTY for r in rows)}
        # Drop order: empty columns first, then by `keep`, the rightmost of equals first.
        order = sorted((i for i in shown if cols[i].keep >= 0), key=lambda i: (i not in empty, cols[i].keep, -i))
        while order and sum(needs[i] + _CELL_EXTRA for i in shown) + 1 > width:
            shown.remove(order.pop(0))
        widths = _allot({i: natural[i] for i in shown}, needs, width - len(shown) * _CELL_EXTRA - 1)
    dropped = [cols[i].header for i in range(len(cols)) if i not in shown]
    notes = [caption] if caption else []
    if dropped:
        notes.append(f"not shown at {width} columns: {', '.join(dropped)}" + (f" ({hint})" if hint else ""))
    table = Table(title=title, title_justify="left", header_style="bold",
                  caption="\n".join(notes) or None, caption_justify="left")
    for i in shown:
        c = cols[i]
        # Widths are set here, not left to rich (which shrinks the widest column first, figures included):
        # a figure column is never narrower than its widest figure; headers and names fold, never "…".
        table.add_column(c.header, justify=c.justify, overflow="fold",  # type: ignore[arg-type]
                         min_width=needs[i], width=widths.get(i))
    for n, row in enumerate(rows):
        table.add_row(*(row[i] for i in shown), style=styles[n] if styles else None)
    return table


def _allot(natural: dict[int, int], least: list[int], room: int) -> dict[int, int]:
    """Widths as close to natural as `room` allows: the column with the most to spare gives a cell first."""
    widths = dict(natural)
    while sum(widths.values()) > room:
        spare = {i: w - least[i] for i, w in widths.items() if w > least[i]}
        if not spare:
            break
        widest = max(spare, key=lambda i: (spare[i], i))
        widths[widest] -= 1
    return widths


def _min_width(col: Col, values: list[str]) -> int:
    """The narrowest a column can be: its widest figure whole, or names folded (but not inside a word of up
    to _NAME_WORD cells); headers wrap at spaces."""
    header = max((len(w) for w in col.header.split()), default=0)
    texts = [Text.from_markup(v).plain for v in values]
    widest = max((Text(t).cell_len for t in texts), default=0)
    if col.figure:
        return max(header, widest)
    word = max((len(w) for t in texts for w in t.split()), default=0)
    return max(header, min(widest, max(_TEXT_MIN, min(word, _NAME_WORD))))


def _num(value: object, fmt: str, scale: float = 1.0) -> str:
    if not _present(value):
        return "–"
    return format(float(value) / scale, fmt)


#: The results table's leading columns: who and what each row is; the metric columns follow.
_KEY_COLUMNS = [
    Col("device", "left", figure=False, keep=-1), Col("variant", "left", figure=False, keep=-1),
    Col("method", "left", figure=False, keep=10), Col(ZERO_WEIGHTS.label, keep=60),
    Col(REMOVED_OR_ZERO.label, keep=60),
]
#: The results table's columns, in order: the keys, then every registry metric that has a `show` column
#: (benchcore.metrics), with its header; `keep` says what a narrow terminal gives up first.
RESULT_COLUMNS = [*_KEY_COLUMNS, *(Col(shown.header, keep=shown.keep) for _, shown in metric_registry.show_columns())]


def _metric_cells(row: Any, marks: str, capped: bool) -> list[str]:
    """A summary row's metric columns, each by its registry format and divisor. Composed around the figure:
    latency carries how it was timed and any failed repeats, p5 shows the p5–p95 band, n marks a cap."""
    out = []
    for metric, shown in metric_registry.show_columns():
        value = getattr(row, metric.column, None)
        if metric.name == "latency":
            out.append(_num(value, shown.fmt, shown.scale) + marks)
        elif metric.name == "p5":
            p95 = getattr(row, metric_registry.METRICS["p95"].column)
            out.append(f"{_num(value, shown.fmt, shown.scale)}–{_num(p95, shown.fmt, shown.scale)}")
        elif metric.name == "n":
            out.append(str(value) + ("*" if capped else ""))
        else:
            out.append(_num(value, shown.fmt, shown.scale))
    return out


def results_table(summary: pd.DataFrame, title: str, width: int | None = None) -> Table:
    rows: list[list[str]] = []
    capped: dict[str, str] = {}
    for row in summary.itertuples(index=False):
        zero, removed = _num(row.zero_weights, ".1%"), _num(row.removed_or_zero, ".1%")
        keys = [row.device_name, row.variant_name, row.method or "", zero, removed]
        if not row.repeats:
            rows.append([*keys, f"[red]failed ×{row.failed}", *[""] * (len(RESULT_COLUMNS) - len(keys) - 1)])
            continue
        mark = "".join(_SOURCE_MARK.get(s, f" {s}") for s in (row.latency_source or "").split(","))
        failed = f" [red]({row.failed} failed)" if row.failed else ""
        is_capped = _present(row.iterations_cap)
        if is_capped:
            capped[row.device_name] = (f"{row.device_name}: n = {row.n} of {int(row.iterations_requested)} asked, "
                                       f"{row.iterations_cap_reason or f'capped at {int(row.iterations_cap)}'}")
        rows.append([*keys, *_metric_cells(row, mark + failed, is_capped)])
    caption = ("est. = estimated by a cost model; emu. = emulator instruction count; "
               "≡ TFLM = share of outputs identical to the TFLM runtime's; " + SPARSITY_LEGEND
               + "".join(f"\n* {text}" for text in capped.values()))
    return fitted_table(RESULT_COLUMNS, rows, title=title, caption=caption, width=width,
                        hint="a wider terminal or `bench show --json` has them")


def _present(value: object) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))

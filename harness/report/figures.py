"""The report's figures: each metric against sparsity, one panel per board, and an accuracy–latency Pareto front.

matplotlib with the Agg backend (no display, no fonts fetched), rendered to PNG bytes the HTML embeds.
Unstructured and structured methods are separate series (solid vs dashed) that all start at the dense
model, so a reader sees at a glance whether a method moves the figure at all on that board.
"""

from __future__ import annotations

import io
import logging
import math
import textwrap
from collections.abc import Callable
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # before pyplot: never open a display, also on a CI runner with $DISPLAY set

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from PIL import Image

from harness.report.data import ReportData
from harness.report.provenance import figure_caption

log = logging.getLogger(__name__)

DPI = 110
_STYLE = {
    "font.size": 8.5, "axes.titlesize": 9, "axes.labelsize": 8.5, "legend.fontsize": 7.5,
    "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False,
}
SPARSITY_LABEL = "sparsity (% of dense weights zero or removed)"


@dataclass(frozen=True)
class Figure:
    key: str
    title: str
    caption: str
    png: bytes
    alt: str


# --- plotting helpers -----------------------------------------------------------------------------

def _panels(n: int, ncols_max: int = 3, size: tuple[float, float] = (4.0, 2.9)) -> tuple[plt.Figure, list[Axes]]:
    ncols = max(1, min(ncols_max, n))
    nrows = math.ceil(n / ncols)
    width, height = size[0] * ncols, size[1] * nrows + 0.55
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False)
    # Fixed margins in inches instead of constrained layout, which costs a full extra draw per figure
    # (seconds for a report of many boards); the legend goes in the bottom margin.
    fig.subplots_adjust(left=0.7 / width, right=1 - 0.15 / width, top=1 - 0.45 / height, bottom=1.05 / height,
                        wspace=0.85 / size[0], hspace=1.1 / size[1])
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _series_styles(data: ReportData) -> dict[str, dict[str, object]]:
    """One colour per series, the same in every figure; dashed lines for structured methods."""
    ok = data.ok_summary()
    pruned = ok[~ok["is_reference"]].drop_duplicates("series")
    colours = plt.get_cmap("tab10").colors
    styles: dict[str, dict[str, object]] = {}
    for i, row in enumerate(pruned.itertuples(index=False)):
        structured = row.structure == "structured"
        styles[row.series] = {"color": colours[i % len(colours)], "linestyle": "--" if structured else "-",
                              "marker": "s" if structured else "o", "markersize": 3.5, "linewidth": 1.4}
    return styles


def _board_title(data: ReportData, board: str, suffix: str = "") -> str:
    rows = data.ok_summary()
    sources = set(",".join(rows.loc[rows["board"] == board, "latency_source"].dropna()).split(","))
    mark = " (estimated)" if "estimated" in sources else " (emulated)" if "emulated" in sources else ""
    # Long board labels (two runs side by side) wrap instead of running into the next panel's title.
    return textwrap.fill(f"{board}{mark}{suffix}", 44)


def _series_lines(data: ReportData, board: str) -> list[tuple[str, pd.DataFrame]]:
    """Each series on a board, sorted by sparsity, starting from the board's dense reference."""
    ok = data.ok_summary()
    on_board = ok[ok["board"] == board]
    refs = on_board[on_board["is_reference"]]
    out = []
    for series, rows in on_board[~on_board["is_reference"]].groupby("series", sort=False):
        ref = refs[refs["variant_name"].isin(set(rows["ref_variant"].dropna()))]
        out.append((series, pd.concat([ref, rows]).sort_values("sparsity", kind="stable")))
    return out


def _plot_metric(ax: Axes, data: ReportData, board: str, column: str, scale: float,
                 styles: dict[str, dict[str, object]], band: tuple[str, str] | None = None) -> bool:
    drew = False
    for series, rows in _series_lines(data, board):
        y = pd.to_numeric(rows[column], errors="coerce") * scale
        if y.isna().all():
            continue
        x = rows["sparsity"].astype(float) * 100
        ax.plot(x, y, label=series, **styles.get(series, {}))
        if band is not None:
            lo = pd.to_numeric(rows[band[0]], errors="coerce") * scale
            hi = pd.to_numeric(rows[band[1]], errors="coerce") * scale
            ax.fill_between(x, lo, hi, color=styles.get(series, {}).get("color"), alpha=0.15, linewidth=0)
        drew = True
    ok = data.ok_summary()
    refs = ok[(ok["board"] == board) & ok["is_reference"]]
    ref_y = pd.to_numeric(refs[column], errors="coerce") * scale
    if ref_y.notna().any():
        ax.plot(refs["sparsity"].astype(float) * 100, ref_y, "k*", markersize=8, label="dense", zorder=5)
        drew = True
    return drew


def _finish(fig: plt.Figure, axes: list[Axes], xlabel: str, ylabel: str) -> None:
    ncols = axes[0].get_gridspec().ncols if axes else 1
    for i, ax in enumerate(axes):
        # Every panel keeps its y unit; the long x label goes under the lowest panel of each column only.
        ax.set_ylabel(ylabel)
        if i + ncols >= len(axes):
            ax.set_xlabel(xlabel)
    handles: dict[str, object] = {}
    for ax in axes:
        for h, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, h)
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="lower center",
                   ncols=min(4, len(handles)), frameon=False)


def _png(fig: plt.Figure) -> bytes:
    """PNG with a 128-colour palette: a third of the RGBA size, and line plots look the same.

    The canvas's RGBA buffer goes straight to the quantiser; letting matplotlib encode a PNG first
    would compress and decompress every figure once for nothing."""
    fig.set_dpi(DPI)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgba = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
    plt.close(fig)
    small = rgba.convert("RGB").quantize(colors=128, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    out = io.BytesIO()
    small.save(out, format="PNG")
    return out.getvalue()


def _per_board(data: ReportData, key: str, title: str, column: str, scale: float, ylabel: str,
               band: tuple[str, str] | None = None, hline: float | None = None,
               boards: list[str] | None = None) -> Figure | None:
    boards = boards if boards is not None else data.boards_with_results()
    if not boards:
        return None
    styles = _series_styles(data)
    fig, axes = _panels(len(boards))
    for ax, board in zip(axes, boards, strict=True):
        if not _plot_metric(ax, data, board, column, scale, styles, band):
            ax.text(0.5, 0.5, "not measured on this board", ha="center", va="center", transform=ax.transAxes)
        if hline is not None:
            ax.axhline(hline, color="grey", linewidth=0.8, linestyle=":")
        ax.set_title(_board_title(data, board))
    _finish(fig, axes, SPARSITY_LABEL, ylabel)
    return Figure(key, title, figure_caption(data, boards), _png(fig), f"{title}, one panel per board")


# --- the figures ----------------------------------------------------------------------------------

def latency_figure(data: ReportData) -> Figure | None:
    return _per_board(data, "latency", "Latency against sparsity (median, p5–p95 band)", "p50_us", 1.0,
                      "latency per inference (µs)", band=("p5_us", "p95_us"))


def speedup_figure(data: ReportData) -> Figure | None:
    return _per_board(data, "speedup", "Speed-up over the dense model", "speedup", 1.0,
                      "speed-up over dense (×, median latency)", hline=1.0)


def memory_figure(data: ReportData) -> Figure | None:
    """TFLM arena where the board reports one (MCUs), else the peak RAM growth of loading the model."""
    boards = data.boards_with_results()
    if not boards:
        return None
    styles = _series_styles(data)
    fig, axes = _panels(len(boards))
    for ax, board in zip(axes, boards, strict=True):
        rows = data.ok_summary()
        rows = rows[rows["board"] == board]
        column, what = ("arena_bytes", "TFLM arena") if rows["arena_bytes"].notna().any() else \
            ("ram_bytes", "peak RAM growth")
        if not _plot_metric(ax, data, board, column, 1 / 1024, styles):
            ax.text(0.5, 0.5, "not measured on this board", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(_board_title(data, board, f" — {what}"))
        ax.set_ylim(bottom=0)
    _finish(fig, axes, SPARSITY_LABEL, "RAM (KiB)")
    return Figure("memory", "Arena / peak RAM against sparsity", figure_caption(data, boards), _png(fig),
                  "RAM against sparsity, one panel per board")


def size_figure(data: ReportData) -> Figure | None:
    """Model size is a property of the file, the same on every board: one panel each for raw and gzip."""
    boards = data.boards_with_results()
    if not boards:
        return None
    styles = _series_styles(data)
    board = boards[0]
    fig, axes = _panels(2)
    for ax, (column, what) in zip(axes, [("model_bytes", "raw .tflite (flash)"), ("gzip_bytes", "gzip -9")],
                                  strict=True):
        _plot_metric(ax, data, board, column, 1 / 1024, styles)
        ax.set_title(f"model size, {what}")
        ax.set_ylim(bottom=0)
    _finish(fig, axes, SPARSITY_LABEL, "model size (KiB)")
    return Figure("size", "Model size against sparsity (raw and gzip)", figure_caption(data, [board]),
                  _png(fig), "model size raw and gzip against sparsity")


def energy_figure(data: ReportData) -> Figure | None:
    ok = data.ok_summary()
    boards = [b for b in data.boards_with_results() if ok.loc[ok["board"] == b, "energy_uj"].notna().any()]
    if not boards:
        return None
    return _per_board(data, "energy", "Energy per inference against sparsity", "energy_uj", 1.0,
                      "energy per inference (µJ)", boards=boards)


def accuracy_figure(data: ReportData) -> Figure | None:
    ok = data.ok_summary()
    boards = [b for b in data.boards_with_results() if ok.loc[ok["board"] == b, "accuracy"].notna().any()]
    if not boards:
        return None
    return _per_board(data, "accuracy", "Top-1 accuracy against sparsity (on the board)", "accuracy", 100.0,
                      "top-1 accuracy (%)", boards=boards)


def pareto_figure(data: ReportData) -> Figure | None:
    """Accuracy against latency; the front joins the variants no other variant beats on both."""
    ok = data.ok_summary()
    boards = [b for b in data.boards_with_results() if ok.loc[ok["board"] == b, "accuracy"].notna().any()]
    if not boards:
        return None
    styles = _series_styles(data)
    fig, axes = _panels(len(boards))
    for ax, board in zip(axes, boards, strict=True):
        rows = ok[(ok["board"] == board) & ok["accuracy"].notna()]
        for series, group in rows.groupby("series", sort=False):
            style = styles.get(series, {"color": "black", "marker": "*", "markersize": 8})
            ax.plot(group["p50_us"], group["accuracy"] * 100, linestyle="none", label=series,
                    color=style["color"], marker=style["marker"], markersize=float(style["markersize"]) + 1)
        front = pareto_front(rows)
        ax.step(front["p50_us"], front["accuracy"] * 100, where="post", color="black", linewidth=0.9,
                alpha=0.7, label="Pareto front")
        for r in front.itertuples(index=False):
            ax.annotate(r.variant_name, (r.p50_us, r.accuracy * 100), fontsize=6.5, xytext=(3, 3),
                        textcoords="offset points")
        ax.set_title(_board_title(data, board))
    _finish(fig, axes, "median latency per inference (µs)", "top-1 accuracy (%)")
    return Figure("pareto", "Accuracy–latency Pareto front", figure_caption(data, boards), _png(fig),
                  "accuracy against latency with the Pareto front, one panel per board")


def pareto_front(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows not dominated by a faster-or-equal, at-least-as-accurate row, fastest first."""
    ordered = rows.sort_values(["p50_us", "accuracy"], ascending=[True, False], kind="stable")
    best = -np.inf
    keep = []
    for acc in ordered["accuracy"].astype(float):
        keep.append(acc > best)
        best = max(best, acc)
    return ordered[keep]


#: Figures in report order; each returns None when the runs hold nothing to draw.
FIGURES: list[Callable[[ReportData], Figure | None]] = [
    latency_figure, speedup_figure, memory_figure, size_figure, energy_figure, accuracy_figure, pareto_figure,
]


def make_figures(data: ReportData) -> list[Figure]:
    if not data.has_results:
        return []
    out = []
    with plt.rc_context(_STYLE):
        for build in FIGURES:
            figure = build(data)
            if figure is not None:
                out.append(figure)
                log.debug("figure %s: %d bytes", figure.key, len(figure.png))
    return out

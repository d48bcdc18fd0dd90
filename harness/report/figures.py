"""The report's figures: each metric against sparsity, one panel per board, and an accuracy–latency Pareto front.

matplotlib (Agg, no display, no fonts fetched) rendered to SVG that the HTML inlines: crisp at any zoom,
no script, glyphs as paths so the page looks the same without the fonts installed. Unstructured and
structured methods are separate series (solid vs dashed) that all start at the dense model (★), so a
reader sees at a glance whether a method moves the figure at all on that board. Series that would
hide each other (post-training and fine-tuned pruning often cost the same) are offset sideways by a
stated amount; legends sit below the panels and the saved area grows to hold every label.
"""

from __future__ import annotations

import io
import logging
import math
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # before pyplot: never open a display, also on a CI runner with $DISPLAY set

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from harness.report.data import ReportData
from harness.report.provenance import figure_caption
from harness.sparsity import REMOVED_OR_ZERO

log = logging.getLogger(__name__)

_STYLE = {
    "font.size": 8.5, "axes.titlesize": 9, "axes.labelsize": 8.5, "legend.fontsize": 7.5,
    "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False,
    # Glyphs as paths: the figure needs no font on the reader's machine and every label measures the
    # same in the browser as here. A fixed hash salt keeps the SVG identical from run to run.
    "svg.fonttype": "none", "svg.hashsalt": "bench", "path.simplify": True,
}
X_COLUMN = REMOVED_OR_ZERO.column
SPARSITY_LABEL = f"{REMOVED_OR_ZERO.label} (% of the dense model's weights)"
#: Sideways offset between series that would otherwise cover each other, as a share of the x span.
DODGE = 0.022


@dataclass(frozen=True)
class Figure:
    key: str
    title: str
    caption: str
    svg: str
    alt: str


# --- plotting helpers -----------------------------------------------------------------------------

def _panels(n: int, ncols_max: int = 3, size: tuple[float, float] = (4.0, 2.9)) -> tuple[plt.Figure, list[Axes]]:
    ncols = max(1, min(ncols_max, n))
    nrows = math.ceil(n / ncols)
    width, height = size[0] * ncols, size[1] * nrows + 0.55
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False)
    # Fixed margins in inches instead of constrained layout, which costs a full extra draw per figure
    # (seconds for a report of many boards); the legend goes in the bottom margin.
    fig.subplots_adjust(left=0.7 / width, right=1 - 0.15 / width, top=1 - 0.45 / height, bottom=0.6 / height,
                        wspace=0.85 / size[0], hspace=1.1 / size[1])
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    for i, ax in enumerate(flat[:n]):
        ax.patch.set_gid(f"ax{i}-frame")  # the browser test finds each panel's box by this id
    return fig, flat[:n]


#: Marker shapes handed to series in order; hollow markers for post-training variants.
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">")


def _series_styles(data: ReportData) -> dict[str, dict[str, object]]:
    """One colour and marker per series, the same in every figure; dashed lines for structured methods,
    hollow markers for post-training ones, so two series on the same points still read as two."""
    ok = data.ok_summary()
    pruned = ok[~ok["is_reference"]].drop_duplicates("series")
    colours = plt.get_cmap("tab10").colors
    styles: dict[str, dict[str, object]] = {}
    for i, row in enumerate(pruned.itertuples(index=False)):
        structured = row.structure == "structured"
        colour = colours[i % len(colours)]
        post = row.engine == "tflite"
        styles[row.series] = {"color": colour, "linestyle": "--" if structured else ":" if post else "-",
                              "marker": _MARKERS[i % len(_MARKERS)], "markersize": 5.0 if post else 3.8,
                              "markerfacecolor": "white" if post else colour, "markeredgewidth": 1.1,
                              "linewidth": 1.4}
    return styles


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


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
        out.append((series, pd.concat([ref, rows]).sort_values(X_COLUMN, kind="stable")))
    return out


def dodge_offsets(points: list[np.ndarray], x_span: float, y_span: float) -> list[float]:
    """A sideways offset per series so that none covers another: 0 for a series that overlaps no
    earlier one, else the nearest free slot (+1, -1, +2, … × DODGE of the x span).

    `points` are each series' pruned points as rows of (x, y); two points overlap when they are
    closer than the offset step in x and 2 % of the y span in y."""
    step = DODGE * (x_span or 1.0)
    tol_y = 0.02 * (y_span or 1.0)
    placed: list[tuple[np.ndarray, float]] = []
    out = []
    for pts in points:
        offset = 0.0
        for k in [0, 1, -1, 2, -2, 3, -3]:
            candidate = k * step
            shifted = pts + np.array([candidate, 0.0])
            if not any(_overlap(shifted, other + np.array([o, 0.0]), step, tol_y) for other, o in placed):
                offset = candidate
                break
        placed.append((pts, offset))
        out.append(offset)
    return out


def _overlap(a: np.ndarray, b: np.ndarray, tol_x: float, tol_y: float) -> bool:
    if not len(a) or not len(b):
        return False
    dx = np.abs(a[:, None, 0] - b[None, :, 0])
    dy = np.abs(a[:, None, 1] - b[None, :, 1])
    return bool(((dx < tol_x * 0.999) & (dy <= tol_y)).any())


def _plot_metric(ax: Axes, data: ReportData, board: str, column: str, scale: float,
                 styles: dict[str, dict[str, object]], band: tuple[str, str] | None = None,
                 dodged: dict[str, float] | None = None) -> bool:
    """One panel; a series drawn aside to stay visible is recorded in `dodged` for the legend."""
    drew = False
    lines = []
    for series, rows in _series_lines(data, board):
        y = pd.to_numeric(rows[column], errors="coerce") * scale
        x = pd.to_numeric(rows[X_COLUMN], errors="coerce") * 100
        keep = y.notna() & x.notna()
        if keep.any():
            lines.append((series, rows[keep], x[keep].to_numpy(float), y[keep].to_numpy(float)))
    if lines:
        xs = np.concatenate([x for *_, x, _ in lines])
        ys = np.concatenate([y for *_, y in lines])
        pruned = [np.column_stack([x, y])[~rows["is_reference"].to_numpy(bool)] for _, rows, x, y in lines]
        offsets = dodge_offsets(pruned, float(np.ptp(xs)), float(np.ptp(ys)))
    for k, (series, rows, x, y) in enumerate(lines):
        # The dense point stays where it is: every series starts at the same measured model.
        ref = rows["is_reference"].to_numpy(bool)
        x = np.where(ref, x, x + offsets[k])
        if offsets[k] and dodged is not None:
            dodged[series] = max(dodged.get(series, 0.0), abs(offsets[k]))
        line, = ax.plot(x, y, label=series, **styles.get(series, {}))
        line.set_gid(f"{_axes_id(ax)}-series-{_slug(series)}")
        if band is not None:
            lo = pd.to_numeric(rows[band[0]], errors="coerce").to_numpy(float) * scale
            hi = pd.to_numeric(rows[band[1]], errors="coerce").to_numpy(float) * scale
            ax.fill_between(x, lo, hi, color=styles.get(series, {}).get("color"), alpha=0.15, linewidth=0)
        drew = True
    ok = data.ok_summary()
    refs = ok[(ok["board"] == board) & ok["is_reference"]]
    ref_y = pd.to_numeric(refs[column], errors="coerce") * scale
    if ref_y.notna().any():
        star, = ax.plot(pd.to_numeric(refs[X_COLUMN], errors="coerce") * 100, ref_y, linestyle="none",
                        marker="*", color="black", markeredgecolor="white", markeredgewidth=0.6, markersize=10,
                        label="dense (every series starts here)", zorder=5)
        star.set_gid(f"{_axes_id(ax)}-dense")
        drew = True
    return drew


def _axes_id(ax: Axes) -> str:
    return str(ax.patch.get_gid() or "ax").removesuffix("-frame")


def _finish(fig: plt.Figure, axes: list[Axes], xlabel: str, ylabel: str,
            dodged: dict[str, float] | None = None, unit: str = " pp") -> None:
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
    for series, offset in (dodged or {}).items():
        if series in handles:  # say it in the legend: the offset is drawing, not data
            note = f"{series} (drawn up to {offset:.3g}{unit} aside where it would hide another)"
            handles = {(note if k == series else k): v
                       for k, v in handles.items()}
    if handles:
        _legend_below(fig, axes, handles)


def _legend_below(fig: plt.Figure, axes: list[Axes], handles: dict[str, object]) -> None:
    """The legend under the panels, in as many columns as fit the figure's width (a legend wider than
    its figure was cut off); the saved area then grows downwards to hold it."""
    renderer = fig.canvas.get_renderer()
    bottom = min(ax.get_tightbbox(renderer).y0 for ax in axes) / fig.bbox.height
    width = fig.bbox.width
    for ncols in range(min(4, len(handles)), 0, -1):
        legend = fig.legend(list(handles.values()), list(handles), loc="upper center", ncols=ncols,
                            bbox_to_anchor=(0.5, bottom - 0.01), frameon=False)
        legend.set_gid("legend")
        if legend.get_window_extent(renderer).width <= width * 0.98 or ncols == 1:
            return
        legend.remove()


def _svg(fig: plt.Figure, key: str) -> str:
    """The figure as an SVG element to inline: every id prefixed with the figure's key (a page holds
    several figures, ids must stay unique), no XML prolog, no stylesheet leaking into the page."""
    out = io.StringIO()
    fig.savefig(out, format="svg", bbox_inches="tight", pad_inches=0.06, metadata={"Date": None})
    plt.close(fig)
    text = out.getvalue()
    text = text[text.index("<svg"):]
    text = re.sub(r"<style[^>]*>.*?</style>", "", text, flags=re.S)
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)
    text = re.sub(r'\bid="([^"]+)"', rf'id="{key}--\1"', text)
    # SVG 2 `href` and no namespace declarations: the HTML parser puts an inline <svg> in its namespace.
    text = re.sub(r'(?:xlink:href|href)="#([^"]+)"', rf'href="#{key}--\1"', text)
    text = re.sub(r'\s+xmlns(?::\w+)?="[^"]*"', "", text)
    text = re.sub(r"url\(#([^)]+)\)", rf"url(#{key}--\1)", text)
    # Text stays text (searchable, sharp); its font family is set once by the page's stylesheet
    # (html._CSS, DejaVu Sans first: the font matplotlib measured them in) rather than on each label.
    text = re.sub(r"font-family: [^;\"]*;? ?", "", text)
    text = re.sub(r' transform="rotate\(-?0 [^)]*\)"', "", text)
    # Half the size: no comments or indentation, coordinates to 1/100 pt (far below a pixel).
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    text = re.sub(r">\s+<", "><", text)
    text = re.sub(r"\s*\n\s*", " ", text)
    text = re.sub(r"-?\d+\.\d{3,}", lambda m: f"{float(m.group()):.2f}".rstrip("0").rstrip("."), text)
    return text.replace("<svg ", '<svg class="fig" role="img" ', 1).strip()


def _per_board(data: ReportData, key: str, title: str, column: str, scale: float, ylabel: str,
               band: tuple[str, str] | None = None, hline: float | None = None,
               boards: list[str] | None = None) -> Figure | None:
    boards = boards if boards is not None else data.boards_with_results()
    if not boards:
        return None
    styles = _series_styles(data)
    dodged: dict[str, float] = {}
    fig, axes = _panels(len(boards))
    for ax, board in zip(axes, boards, strict=True):
        if not _plot_metric(ax, data, board, column, scale, styles, band, dodged):
            ax.text(0.5, 0.5, "not measured on this board", ha="center", va="center", transform=ax.transAxes)
        if hline is not None:
            ax.axhline(hline, color="grey", linewidth=0.8, linestyle=":")
        ax.set_title(_board_title(data, board))
    _finish(fig, axes, SPARSITY_LABEL, ylabel, dodged)
    return Figure(key, title, figure_caption(data, boards), _svg(fig, key), f"{title}, one panel per board")


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
    dodged: dict[str, float] = {}
    fig, axes = _panels(len(boards))
    for ax, board in zip(axes, boards, strict=True):
        rows = data.ok_summary()
        rows = rows[rows["board"] == board]
        column, what = ("arena_bytes", "TFLM arena") if rows["arena_bytes"].notna().any() else \
            ("ram_bytes", "peak RAM growth")
        if not _plot_metric(ax, data, board, column, 1 / 1024, styles, dodged=dodged):
            ax.text(0.5, 0.5, "not measured on this board", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(_board_title(data, board, f" — {what}"))
        ax.set_ylim(bottom=0)
    _finish(fig, axes, SPARSITY_LABEL, "RAM (KiB)", dodged)
    return Figure("memory", "Arena / peak RAM against sparsity", figure_caption(data, boards), _svg(fig, "memory"),
                  "RAM against sparsity, one panel per board")


def size_figure(data: ReportData) -> Figure | None:
    """Model size is a property of the file, the same on every board: one panel each for raw and gzip."""
    boards = data.boards_with_results()
    if not boards:
        return None
    styles = _series_styles(data)
    board = boards[0]
    dodged: dict[str, float] = {}
    fig, axes = _panels(2)
    for ax, (column, what) in zip(axes, [("model_bytes", "raw .tflite (flash)"), ("gzip_bytes", "gzip -9")],
                                  strict=True):
        _plot_metric(ax, data, board, column, 1 / 1024, styles, dodged=dodged)
        ax.set_title(f"model size, {what}")
        ax.set_ylim(bottom=0)
    _finish(fig, axes, SPARSITY_LABEL, "model size (KiB)", dodged)
    return Figure("size", "Model size against sparsity (raw and gzip)", figure_caption(data, [board]),
                  _svg(fig, "size"), "model size raw and gzip against sparsity")


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
    dodged: dict[str, float] = {}
    fig, axes = _panels(len(boards))
    for ax, board in zip(axes, boards, strict=True):
        rows = ok[(ok["board"] == board) & ok["accuracy"].notna()]
        # The dense model first, so it keeps its place and a variant on top of it moves aside.
        groups = sorted(rows.groupby("series", sort=False), key=lambda g: g[0] in styles)
        xy = [np.column_stack([g["p50_us"].astype(float), g["accuracy"].astype(float) * 100]) for _, g in groups]
        allxy = np.concatenate(xy)
        offsets = dodge_offsets(xy, float(np.ptp(allxy[:, 0])), float(np.ptp(allxy[:, 1])))
        for (series, group), offset in zip(groups, offsets, strict=True):
            dense = series not in styles
            style = styles.get(series, {"color": "black", "marker": "*", "markersize": 9.0,
                                        "markerfacecolor": "black"})
            if offset:
                dodged[series] = max(dodged.get(series, 0.0), abs(offset))
            points, = ax.plot(group["p50_us"] + offset, group["accuracy"] * 100, linestyle="none",
                              label="dense" if dense else series, color=style["color"], marker=style["marker"],
                              markersize=float(style["markersize"]) + 1, markerfacecolor=style["markerfacecolor"],
                              zorder=4 if dense else 3)
            points.set_gid(f"{_axes_id(ax)}-series-{_slug(series)}")
        front = pareto_front(rows)
        ax.step(front["p50_us"], front["accuracy"] * 100, where="post", color="black", linewidth=0.9,
                alpha=0.7, label="Pareto front")
        ax.margins(x=0.08, y=0.12)
        labels = [ax.annotate(r.variant_name, (r.p50_us, r.accuracy * 100), fontsize=6.5, xytext=(4, 3),
                              textcoords="offset points", gid=f"{_axes_id(ax)}-pareto-label-{i}")
                  for i, r in enumerate(front.itertuples(index=False))]
        ax.set_title(_board_title(data, board))
        _keep_inside(ax, labels)
    _finish(fig, axes, "median latency per inference (µs)", "top-1 accuracy (%)", dodged, unit=" µs")
    return Figure("pareto", "Accuracy–latency Pareto front", figure_caption(data, boards), _svg(fig, "pareto"),
                  "accuracy against latency with the Pareto front, one panel per board")


def _keep_inside(ax: Axes, labels: list[plt.Annotation]) -> None:
    """Point labels stay inside their panel: a label running past the right edge goes to the left of
    its point, one past the top goes below it, one on top of the previous label moves down a line."""
    renderer = ax.figure.canvas.get_renderer()
    ax.get_xlim(), ax.get_ylim()  # settle autoscaling before measuring where labels land
    box = ax.get_window_extent(renderer)
    previous = []
    for label in labels:
        ext = label.get_window_extent(renderer)
        dx, dy = 4.0, 3.0
        if ext.x1 > box.x1:
            label.set_horizontalalignment("right")
            dx = -4.0
        if ext.y1 > box.y1:
            dy = -9.0
        label.set_position((dx, dy))
        ext = label.get_window_extent(renderer)
        for _ in range(4):
            if not any(ext.overlaps(p) for p in previous):
                break
            dy -= 8.0
            label.set_position((dx, dy))
            ext = label.get_window_extent(renderer)
        if ext.y0 < box.y0:  # pushed below the panel: put it above the point instead
            label.set_position((dx, 3.0))
            ext = label.get_window_extent(renderer)
        previous.append(ext)


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
                log.debug("figure %s: %d bytes", figure.key, len(figure.svg))
    return out

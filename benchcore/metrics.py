"""The metric registry: every figure a cell measures, described once.

Each entry says what the figure is (name, store column, unit, SQL type), how the repeats of a cell
pool into one figure, which direction is better, the default regression threshold `compare` applies
and how it is shown. The store's measurement columns, `results.summarize`, the report's tables and
`compare`'s metric map all read this table; a new metric is one entry here and its producer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

#: How repeats pool: "samples" — recomputed over every repeat's latency samples (percentiles, mean…);
#: "median" — median of the per-repeat figures; "max" — the worst repeat's figure; "spread" — (max - min) /
#: median of the per-repeat figures of the metric named by `spread_of`; "first" — the first cell's figure,
#: failed or not (a property of the model file, the same in every repeat); None — kept per cell only, not in
#: the summary.
Pool = Literal["samples", "median", "max", "spread", "first"] | None
Better = Literal["lower", "higher"] | None

#: Where a metric column goes among a table's metric columns when it names no place: after the others.
LAST = 1000


@dataclass(frozen=True)
class Shown:
    """A metric's column in one table: header (with the unit shown), format spec, divisor (KiB: 1024) and
    place among that table's metric columns (ascending; equals keep registry order). `keep` orders what a
    narrow terminal gives up first in `bench show` (lower goes first, -1: never)."""

    header: str
    fmt: str = ".1f"
    scale: float = 1.0
    order: int = LAST
    keep: int = 100


@dataclass(frozen=True)
class Metric:
    name: str
    #: The column holding it: in `measurements` when `stored`, and in `results.summarize`'s frame.
    column: str
    unit: str
    what: str
    sql_type: Literal["float", "int"] = "float"
    pool: Pool = "median"
    better: Better = None
    #: Default `compare` threshold ("+5%", "+0", "-0.5pp"); None: compared only when asked for.
    threshold: str | None = None
    #: Threshold units accepted: "%" relative, "pp" percentage points, "" absolute.
    threshold_units: tuple[str, ...] = ("%", "")
    #: A format spec for one value in its unit; "%" shows a 0..1 share as a percentage.
    fmt: str = ".2f"
    #: When this column is empty, the figure is read from this one (RAM: the arena, else peak RAM growth).
    fallback: str | None = None
    #: Stored as a column of `measurements` (False: derived in the summary, or an alias of another column).
    stored: bool = True
    #: Judged with a rank test over samples, not as one figure per cell.
    has_samples: bool = False
    #: pool="spread": the metric whose per-repeat figures it spreads.
    spread_of: str | None = None
    #: Summary columns that are not metrics but belong beside this one, right after it (the variant's gzip
    #: size beside its file size; the timed inferences asked for and the driver's cap beside `n`).
    beside: tuple[str, ...] = ()
    #: Its column in the report's original-vs-pruned table (None: not there). Some are composed there
    #: around the figure (latency with its p5–p95 band, flash with its gzip size, top-1 with its Δ pp).
    report: Shown | None = None
    #: Its column in `bench show`'s results table (None: not there; the JSON has every summary column).
    show: Shown | None = None
    #: The cell-details key where a driver declares how far this host-measured figure moves between identical
    #: runs (`Deployment.ram_noise_bytes`); `compare` does not call a change within it significant. None: exact.
    noise_key: str | None = None

    @property
    def worse(self) -> int:
        """+1: bigger is worse; -1: smaller is worse; 0: no direction."""
        return {"lower": +1, "higher": -1}.get(self.better or "", 0)

    def value_column(self, row: dict[str, Any]) -> str | None:
        """The column this metric's figure comes from in a summary row (its own, else its fallback)."""
        if as_float(row.get(self.column)) is not None:
            return self.column
        if self.fallback and as_float(row.get(self.fallback)) is not None:
            return self.fallback
        return None

    def value(self, row: dict[str, Any]) -> float | None:
        """This metric's figure in a summary row (falling back when its own column is empty)."""
        column = self.value_column(row)
        return as_float(row.get(column)) if column else None

    def format(self, value: Any) -> str:
        v = as_float(value)
        if v is None:
            return "–"
        if self.fmt == "%":
            return f"{v * 100:.2f}%"
        return f"{format(v, self.fmt)} {self.unit}".strip()


def as_float(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


_ENTRIES = (
    Metric("n", "n", "", "timed inferences", "int", pool="samples", fmt=".0f",
           beside=("iterations_requested", "iterations_cap", "iterations_cap_reason"),
           report=Shown("n", order=90), show=Shown("n", order=4, keep=-1)),  # composed: with the cap
    Metric("p5", "p5_us", "µs", "5th-percentile latency", pool="samples", better="lower",
           show=Shown("p5–p95 µs", order=2, keep=40)),  # composed there with p95: the band
    Metric("latency", "p50_us", "µs", "median latency", pool="samples", better="lower", threshold="+5%",
           has_samples=True, report=Shown("latency p50 µs (p5–p95)", order=10),
           show=Shown("p50 µs", order=1, keep=-1)),
    # An alias for comparing memory: the arena where the runtime reports one, else peak RAM growth.
    Metric("ram", "arena_bytes", "B", "RAM (arena, else peak RAM growth)", "int", pool=None, better="lower",
           threshold="+0", fmt=",.0f", fallback="ram_bytes", stored=False,
           report=Shown("RAM KiB", scale=1024, order=30)),
    Metric("p95", "p95_us", "µs", "95th-percentile latency", pool="samples", better="lower"),
    Metric("mean", "mean_us", "µs", "mean latency", pool="samples", better="lower"),
    Metric("std", "std_us", "µs", "latency standard deviation", pool=None),
    Metric("cv", "cv", "", "coefficient of variation of latency", pool="samples", better="lower",
           show=Shown("cv", ".2f", order=3, keep=30)),
    Metric("repeat_spread", "repeat_spread", "", "(max - min) / median of the repeats' medians", pool="spread",
           spread_of="latency", stored=False),
    Metric("load_time", "load_time_ms", "ms", "model load time", better="lower",
           report=Shown("load ms", order=20)),
    Metric("peak_ram", "ram_bytes", "B", "peak RAM growth", "int", better="lower", fmt=",.0f",
           noise_key="ram_noise_bytes", show=Shown("RAM KiB", ".0f", 1024, order=5, keep=50)),
    Metric("arena", "arena_bytes", "B", "tensor arena", "int", better="lower", fmt=",.0f",
           show=Shown("arena KiB", ".1f", 1024, order=6, keep=45)),
    Metric("flash", "model_bytes", "B", "model size", "int", pool="first", better="lower", threshold="+0",
           fmt=",.0f", beside=("gzip_bytes",), report=Shown("flash KiB (gzip)", scale=1024, order=40),
           show=Shown("model KiB", ".1f", 1024, order=7, keep=55)),
    Metric("accuracy", "accuracy", "%", "top-1 accuracy", better="higher", threshold="-0.5pp",
           threshold_units=("pp", "%"), fmt="%", report=Shown("top-1", ".1%", order=60),
           show=Shown("top-1", ".3f", order=9, keep=50)),
    Metric("accuracy_n", "accuracy_n", "", "labelled samples scored", "int", fmt=".0f"),
    Metric("output_agreement", "output_agreement", "", "share of outputs identical to the TFLM runtime's",
           better="higher", fmt="%", show=Shown("≡ TFLM", ".0%", order=10, keep=20)),
    Metric("output_max_lsb", "output_max_lsb", "LSB", "largest output difference to the TFLM runtime", "int",
           pool="max", better="lower", fmt=".0f", report=Shown("max Δ LSB", ".0f", order=70)),
    Metric("energy", "energy_uj", "µJ", "energy per inference", better="lower", threshold="+5%",
           report=Shown("energy µJ", ".2f", order=50), show=Shown("µJ/inf", ".1f", order=8, keep=35)),
)

#: name -> metric, in the order the summary shows them.
METRICS: dict[str, Metric] = {m.name: m for m in _ENTRIES}


def stored() -> list[Metric]:
    """The metrics that are columns of `measurements`, in column order."""
    return [m for m in METRICS.values() if m.stored]


def summarized() -> list[Metric]:
    """The metrics `results.summarize` pools, in its column order."""
    return [m for m in METRICS.values() if m.pool is not None]


def report_columns() -> list[tuple[Metric, Shown]]:
    """The metrics with a column in the report's original-vs-pruned table, in its order."""
    return sorted(((m, m.report) for m in METRICS.values() if m.report is not None), key=lambda c: c[1].order)


def show_columns() -> list[tuple[Metric, Shown]]:
    """The metrics with a column in `bench show`'s results table, in its order."""
    return sorted(((m, m.show) for m in METRICS.values() if m.show is not None), key=lambda c: c[1].order)


def comparable() -> dict[str, Metric]:
    """The metrics `compare` can judge: every one with a direction that the summary holds (pooled,
    or an alias of pooled columns)."""
    return {m.name: m for m in METRICS.values() if m.better is not None and (m.pool is not None or not m.stored)}


def noise_key(column: str | None) -> str | None:
    """The details key declaring the noise floor of the figure in `column`, None when it is exact."""
    return next((m.noise_key for m in METRICS.values() if m.column == column and m.noise_key), None)


def noise_keys() -> list[str]:
    return [m.noise_key for m in METRICS.values() if m.noise_key]


def may_be_noisy(metric: Metric) -> bool:
    """Whether a figure this metric judges can come from a column with a declared noise floor."""
    return noise_key(metric.column) is not None or noise_key(metric.fallback) is not None


def default_thresholds() -> tuple[str, ...]:
    return tuple(f"{m.name}={m.threshold}" for m in METRICS.values() if m.threshold is not None)

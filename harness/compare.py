"""Baseline against current: match cells by model (sha256), variant and device, and flag a regression
only when a metric moved past its threshold in the bad direction AND the move is significant.

    >>> from harness.compare import compare, resolve_bundle, parse_thresholds
    >>> result = compare(resolve_bundle("baseline.json", url), resolve_bundle("latest", url))
    >>> result.exit_code        # 1 when something regressed, else 0

Latency has samples, so significance is a Mann–Whitney U test on them (`harness.significance`).
RAM, flash, accuracy and energy are one figure per cell (accuracy on a fixed test set is not a random
draw), so for them crossing the threshold is the whole test; the output says which applied.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from benchcore import metrics as metric_registry
from benchcore.metrics import Metric
from harness import results
from harness.bundle import RunBundle, load_bundle, read_bundle
from harness.defaults import DEFAULT_ALPHA
from harness.errors import EXIT_CELLS_FAILED, EXIT_OK, BenchError, ConfigError
from harness.significance import TEST_NAME, mann_whitney_u

log = logging.getLogger(__name__)


EXACT_TEST = "none: one figure per cell, the threshold decides"


class CompareError(BenchError):
    """The two sides cannot be compared (for example: no cell in common)."""


#: The metrics compare can judge, from the one registry (benchcore.metrics): name, unit, direction,
#: accepted threshold units, default threshold and whether samples allow a rank test.
METRICS: dict[str, Metric] = metric_registry.comparable()
DEFAULT_THRESHOLDS = metric_registry.default_thresholds()


def _unit_spellings() -> list[str]:
    """How an absolute threshold may name its metric's unit: as the registry writes it, lower case, and
    with µ typed as u (`+5us`, `+0b`, `+2uJ`); longest first, for the pattern."""
    units = {u for m in METRICS.values() for u in (m.unit, m.unit.replace("µ", "u")) if u not in ("", "%")}
    return sorted(units | {u.lower() for u in units}, key=lambda u: (-len(u), u))


_ABSOLUTE_UNITS = _unit_spellings()
_THRESHOLD_RE = re.compile(r"^\s*(?P<metric>[A-Za-z_]+)\s*=\s*(?:(?P<off>off)|(?P<sign>[+-])?\s*"
                           r"(?P<value>\d+(?:\.\d*)?|\.\d+)\s*"
                           rf"(?P<unit>%|pp|{'|'.join(map(re.escape, _ABSOLUTE_UNITS))})?)\s*$")


@dataclass(frozen=True)
class Threshold:
    metric: str
    limit: float | None  # None: the metric is not checked
    unit: str  # "%", "pp" or "" (absolute, in the metric's unit)
    text: str


def parse_threshold(text: str) -> Threshold:
    """`latency=+5%`, `ram=+0`, `accuracy=-0.5pp`, `energy=off`; usage errors name what is wrong."""
    hint = (f"Write METRIC=[+|-]VALUE[%|pp], e.g. latency=+5% ram=+0 accuracy=-0.5pp, or METRIC=off; "
            f"metrics: {', '.join(METRICS)}.")
    match = _THRESHOLD_RE.match(text)
    name = text.split("=", 1)[0].strip().lower()
    if "=" in text and name and name not in METRICS:
        raise ConfigError(f"--threshold {text!r}: unknown metric {name!r}.", hint=hint)
    if match is None:
        raise ConfigError(f"--threshold {text!r} is malformed.", hint=hint)
    metric = METRICS[match["metric"].lower()]
    if match["off"]:
        return Threshold(metric.name, None, "", text.strip())
    unit = match["unit"] or ""
    unit = "" if unit in _ABSOLUTE_UNITS else unit
    if unit not in metric.threshold_units:
        allowed = " or ".join(f"'{u}'" if u else "an absolute value" for u in metric.threshold_units)
        raise ConfigError(f"--threshold {text!r}: {metric.name} takes {allowed}.", hint=hint)
    sign = {"+": 1, "-": -1}.get(match["sign"] or "", metric.worse)
    if sign != metric.worse:
        word = "an increase" if metric.worse > 0 else "a decrease"
        raise ConfigError(f"--threshold {text!r}: a {metric.name} regression is {word}, so its threshold is "
                          f"written {'+' if metric.worse > 0 else '-'}{match['value']}{match['unit'] or ''}.",
                          hint=hint)
    return Threshold(metric.name, float(match["value"]), unit, text.strip())


def parse_thresholds(texts: Iterable[str] = ()) -> dict[str, Threshold]:
    """The defaults, overridden metric by metric by what was given."""
    out = {t.metric: t for t in map(parse_threshold, DEFAULT_THRESHOLDS)}
    for text in texts:
        t = parse_threshold(text)
        out[t.metric] = t
    return out


# --- the comparison -------------------------------------------------------------------------------

@dataclass(frozen=True)
class CellKey:
    device: str
    variant: str
    sha256: str

    def __str__(self) -> str:
        return f"{self.device} / {self.variant} ({self.sha256[:12]})"


@dataclass(frozen=True)
class MetricResult:
    cell: CellKey
    metric: str
    baseline: float | None
    current: float | None
    change: float | None  # in the threshold's unit, signed (+ = bigger)
    threshold: str
    test: str
    p_value: float | None
    verdict: str  # regression | improvement | not significant | ok | failed | n/a
    note: str = ""


@dataclass
class Comparison:
    baseline: str
    current: str
    thresholds: dict[str, Threshold]
    alpha: float
    results: list[MetricResult] = field(default_factory=list)
    only_baseline: list[CellKey] = field(default_factory=list)
    only_current: list[CellKey] = field(default_factory=list)

    @property
    def regressions(self) -> list[MetricResult]:
        return [r for r in self.results if r.verdict in ("regression", "failed")]

    @property
    def improvements(self) -> list[MetricResult]:
        return [r for r in self.results if r.verdict == "improvement"]

    @property
    def cells(self) -> list[CellKey]:
        return list(dict.fromkeys(r.cell for r in self.results))

    @property
    def exit_code(self) -> int:
        return EXIT_CELLS_FAILED if self.regressions else EXIT_OK

    def tests_used(self) -> dict[str, str]:
        return {m: (TEST_NAME + f", α = {self.alpha:g}" if METRICS[m].has_samples
                    else EXACT_TEST + NOISE_NOTE if metric_registry.may_be_noisy(METRICS[m]) else EXACT_TEST)
                for m, t in self.thresholds.items() if t.limit is not None}


def resolve_bundle(ref: str, store_url: str) -> RunBundle:
    """A run id in the store, `latest`, or a file written by `bench export`."""
    path = Path(ref)
    if path.suffix in (".json", ".gz") or path.exists() or "/" in ref:
        return read_bundle(path)
    return load_bundle([results.resolve_run(ref, store_url)], store_url)


def compare(baseline: RunBundle, current: RunBundle, thresholds: dict[str, Threshold] | None = None,
            alpha: float = DEFAULT_ALPHA) -> Comparison:
    """Compare matched cells; CompareError when the two sides share no cell."""
    thresholds = thresholds if thresholds is not None else parse_thresholds()
    if not 0 < alpha < 1:
        raise ConfigError(f"--alpha {alpha} is not a significance level.", hint="Use a value in (0, 1), e.g. 0.01.")
    base, base_samples = _side(baseline)
    cur, cur_samples = _side(current)
    common = [k for k in base if k in cur]
    result = Comparison(baseline=_label(baseline), current=_label(current), thresholds=thresholds, alpha=alpha,
                        only_baseline=[k for k in base if k not in cur],
                        only_current=[k for k in cur if k not in base])
    if not common:
        raise CompareError(
            f"{result.baseline} and {result.current} have no cell in common "
            f"({len(base)} and {len(cur)} cells; cells match by device name, variant name and model sha256).",
            hint="Compare runs of the same models on the same devices.")
    for key in common:
        b, c = base[key], cur[key]
        if c["repeats"] == 0:
            if b["repeats"] > 0:
                result.results.append(MetricResult(key, "status", None, None, None, "", "", None, "failed",
                                                   f"every repeat failed in the current run ({c['failed']})"))
            continue
        if b["repeats"] == 0:
            result.results.append(MetricResult(key, "status", None, None, None, "", "", None, "n/a",
                                               "no successful repeat in the baseline"))
            continue
        for name, threshold in thresholds.items():
            if threshold.limit is None:
                continue
            samples = (base_samples[key], cur_samples[key]) if METRICS[name].has_samples else None
            metric = METRICS[name]
            result.results.append(_judge(key, metric, threshold, metric.value(b), metric.value(c), samples, alpha,
                                         noise=max(noise_floor(b, name), noise_floor(c, name))))
    log.info("compared %d cells: %d regressions, %d improvements", len(common), len(result.regressions),
             len(result.improvements))
    return result


def _side(bundle: RunBundle) -> tuple[dict[CellKey, dict], dict[CellKey, np.ndarray]]:
    """Pooled summary and pooled latency samples of every (device, variant, sha256) of a bundle."""
    cells = bundle.cells
    if cells.empty:
        return {}, {}
    summary = results.summarize(cells)
    sha = cells.drop_duplicates(["run_id", "device_name", "variant_name"])[
        ["run_id", "device_name", "variant_name", "variant_sha256"]]
    summary = summary.merge(sha, on=["run_id", "device_name", "variant_name"], how="left")
    rows = {CellKey(r["device_name"], r["variant_name"], str(r["variant_sha256"])): r
            for r in summary.to_dict(orient="records")}
    ok = cells[cells["status"] == "ok"]
    for key, floors in _declared_noise(ok).items():
        rows[key].update(floors)
    samples: dict[CellKey, np.ndarray] = {}
    for (device, variant, sha256), group in ok.groupby(["device_name", "variant_name", "variant_sha256"],
                                                        sort=False):
        samples[CellKey(device, variant, str(sha256))] = np.concatenate(
            [np.asarray(s, dtype=np.float64) for s in group["latency_ns"]])
    return rows, samples


# --- noise floors the drivers declare -----------------------------------------------------------------
# A figure measured on a host (peak RSS of a process) moves between identical runs; its driver says by how
# much (`Deployment.ram_noise_bytes`, stored in the cell's details). A change within that floor is not
# significant, as a latency shift the rank test cannot tell from noise is not. Exact figures have none.

NOISE_NOTE = ", beyond the noise floor the driver declares for a host-measured figure"


def _declared_noise(ok_cells: pd.DataFrame) -> dict[CellKey, dict[str, float]]:
    """The largest floor any repeat of a cell declared, per details key (the registry's `noise_key`s)."""
    out: dict[CellKey, dict[str, float]] = {}
    if ok_cells.empty or "details" not in ok_cells:
        return out
    for row in ok_cells[["device_name", "variant_name", "variant_sha256", "details"]].itertuples(index=False):
        details = row.details if isinstance(row.details, dict) else {}
        floors = out.setdefault(CellKey(row.device_name, row.variant_name, str(row.variant_sha256)), {})
        for detail_key in metric_registry.noise_keys():
            value = _num(details.get(detail_key))
            if value is not None:
                floors[detail_key] = max(floors.get(detail_key, 0.0), value)
    return out


def noise_floor(row: dict, metric: str) -> float:
    """The declared noise of the figure `metric` judges in this row, in its unit (0: an exact figure)."""
    key = metric_registry.noise_key(METRICS[metric].value_column(row))
    return (_num(row.get(key)) or 0.0) if key else 0.0


def _num(value: object) -> float | None:
    try:
        f = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _judge(key: CellKey, metric: Metric, threshold: Threshold, b: float | None, c: float | None,
           samples: tuple[np.ndarray, np.ndarray] | None, alpha: float, noise: float = 0.0) -> MetricResult:
    if b is None or c is None:
        return MetricResult(key, metric.name, b, c, None, threshold.text, "", None, "n/a", "not measured on both sides")
    if threshold.unit == "%":
        change = (c - b) / abs(b) * 100 if b else (0.0 if c == b else math.copysign(math.inf, c - b))
    elif threshold.unit == "pp":
        change = (c - b) * 100
    else:
        change = c - b
    worse = change * metric.worse  # > 0: moved in the bad direction
    limit = threshold.limit or 0.0
    test, p = EXACT_TEST, None
    significant, note = True, ""
    if noise > 0:
        test = f"none: one figure per cell, changes within its ±{noise:,.0f} {metric.unit} noise floor ignored"
        significant = abs(c - b) > noise
        note = "" if significant else f"within the ±{noise / 1024:,.0f} KiB noise of a host-measured figure" \
            if metric.unit == "B" else f"within the ±{noise:g} {metric.unit} noise floor"
    if samples is not None:
        rank = mann_whitney_u(samples[0], samples[1])
        test, p = TEST_NAME, rank.p
        significant = not math.isnan(rank.p) and rank.p < alpha
    if worse > limit:
        verdict = "regression" if significant else "not significant"
    elif -worse > limit:
        verdict = "improvement" if significant else "not significant"
    else:
        verdict = "ok"
    return MetricResult(key, metric.name, b, c, float(change), threshold.text, test, p, verdict,
                        note if verdict == "not significant" else "")


def _label(bundle: RunBundle) -> str:
    runs = ", ".join(bundle.run_ids) or "(no run)"
    return f"run {runs}" if bundle.source.startswith(("sqlite", "postgresql")) or "://" in bundle.source \
        else f"run {runs} from {bundle.source}"


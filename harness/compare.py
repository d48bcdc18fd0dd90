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

_THRESHOLD_RE = re.compile(r"^\s*(?P<metric>[A-Za-z_]+)\s*=\s*(?:(?P<off>off)|(?P<sign>[+-])?\s*"
                           r"(?P<value>\d+(?:\.\d*)?|\.\d+)\s*(?P<unit>%|pp|us|µs|b|B|uj|µJ|uJ)?)\s*$")


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
    unit = "" if unit.lower() in ("us", "µs", "b", "uj", "µj") else unit
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
        return {m: (TEST_NAME + f", α = {self.alpha:g}" if METRICS[m].has_samples else EXACT_TEST)
                for m, t in self.thresholds.items() if t.limit is not None}


def resolve_bundle(ref: str, store_url: str) -> RunBundle:
    """A run id in the store, `latest`, or a file written by `bench export`."""
    path = Path(ref)
    if path.suffix in (".json", ".gz") or path.exists() or "/" in ref:
        return read_bundle(path)
    run_id = results.latest_run(store_url) if ref == "latest" else ref
    return load_bundle([run_id], store_url)


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
            result.results.append(_judge(key, metric, threshold, metric.value(b), metric.value(c), samples, alpha))
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
    samples: dict[CellKey, np.ndarray] = {}
    for (device, variant, sha256), group in ok.groupby(["device_name", "variant_name", "variant_sha256"],
                                                        sort=False):
        samples[CellKey(device, variant, str(sha256))] = np.concatenate(
            [np.asarray(s, dtype=np.float64) for s in group["latency_ns"]])
    return rows, samples


def _judge(key: CellKey, metric: Metric, threshold: Threshold, b: float | None, c: float | None,
           samples: tuple[np.ndarray, np.ndarray] | None, alpha: float) -> MetricResult:
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
    significant = True
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
    return MetricResult(key, metric.name, b, c, float(change), threshold.text, test, p, verdict)


def _label(bundle: RunBundle) -> str:
    runs = ", ".join(bundle.run_ids) or "(no run)"
    return f"run {runs}" if bundle.source.startswith(("sqlite", "postgresql")) or "://" in bundle.source \
        else f"run {runs} from {bundle.source}"


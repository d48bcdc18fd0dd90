"""Everything a report shows, read from the store once: runs, devices, variants, cells and a summary.

The summary is `results.summarize` (the one pooling of repeats every view shares) plus what a report
needs on top: a board label that stays unique when several runs are shown side by side, the series a
variant belongs to, and its dense reference on the same board. Figures plot against `removed_or_zero`
(see `harness.sparsity`), which puts structured and unstructured methods on one axis.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from harness import results
from harness.bundle import RunBundle, load_bundle
from harness.config import DEFAULT_STORE_URL
from harness.defaults import DEFAULT_ACCURACY_FLOOR_PP, DEFAULT_CV_THRESHOLD
from harness.failures import group_failures
from harness.sparsity import METHOD_STRUCTURE, REMOVED_OR_ZERO, structure

log = logging.getLogger(__name__)

#: How each engine made its variants, in words a reader of the report understands.
ENGINE_LABEL: dict[str, str] = {"keras": "fine-tuned", "tflite": "post-training"}
#: Cell `details` keys a driver sets when the board throttled during the timed window.
THROTTLE_KEYS = ("throttled", "thermal_throttling")
#: An estimate and an emulation of the same core further apart than this (in cycles) get a warning.
DISAGREE_RATIO = 2.0
#: Coefficient of variation above which a latency figure gets a warning.


@dataclass(frozen=True)
class ReportWarning:
    kind: str  # estimated | emulated | disagree | capped | high-cv | throttled | failed | no-data
    message: str
    board: str | None = None
    variant: str | None = None


@dataclass
class ReportData:
    run_ids: list[str]
    runs: pd.DataFrame
    devices: pd.DataFrame
    variants: pd.DataFrame
    cells: pd.DataFrame
    summary: pd.DataFrame
    warnings: list[ReportWarning] = field(default_factory=list)
    cv_threshold: float = DEFAULT_CV_THRESHOLD
    #: board -> the warm-up counts of its successful cells (for figure captions).
    warmups: dict[str, list[int]] = field(default_factory=dict)
    #: The headline's tolerance below the dense model's top-1, in percentage points.
    accuracy_floor_pp: float = DEFAULT_ACCURACY_FLOOR_PP
    #: Per-op profiles pooled by (board, variant, operator type): `results.op_summary` plus `board`.
    ops: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=[*results.OP_COLUMNS, "board"]))

    @property
    def has_results(self) -> bool:
        return bool(len(self.summary)) and bool((self.summary["repeats"] > 0).any())

    @property
    def boards(self) -> list[str]:
        return list(dict.fromkeys(self.summary["board"]))

    def ok_summary(self) -> pd.DataFrame:
        return self._ok

    @cached_property
    def _ok(self) -> pd.DataFrame:
        # Figures ask for it dozens of times; filtering a frame each time costs seconds at scale.
        return self.summary[self.summary["repeats"] > 0]

    def boards_with_results(self) -> list[str]:
        return list(dict.fromkeys(self.ok_summary()["board"]))


def load_report_data(run_ids: list[str], store_url: str = DEFAULT_STORE_URL, *,
                     cv_threshold: float = DEFAULT_CV_THRESHOLD) -> ReportData:
    """Read the runs (raising StoreError for an unknown id) and derive the report's tables."""
    return build_report_data(load_bundle(run_ids, store_url), cv_threshold=cv_threshold)


def build_report_data(bundle: RunBundle, *, cv_threshold: float = DEFAULT_CV_THRESHOLD) -> ReportData:
    """Derive the report's tables from a bundle (the store's runs, or an exported file's)."""
    runs_df = pd.DataFrame(bundle.runs)
    cells = bundle.cells
    summary = results.summarize(cells) if len(cells) else pd.DataFrame(columns=results.SUMMARY_COLUMNS)
    summary = _enrich(summary, cells, runs_df)
    cells = _label_cells(cells, summary)
    snapped = cells[cells["device_snapshot_id"].notna()] if "device_snapshot_id" in cells else cells.iloc[0:0]
    opened = set(zip(snapped["run_id"], snapped["device_name"], strict=True)) if len(snapped) else set()
    data = ReportData(run_ids=bundle.run_ids, runs=runs_df,
                      devices=_devices(bundle.devices, summary, bundle.run_ids, opened),
                      variants=bundle.variants, cells=cells, summary=summary, cv_threshold=cv_threshold)
    data.warnings = collect_warnings(data)
    data.warmups = _warmups(cells)
    data.ops = _label_ops(results.op_summary(bundle.cells, bundle.ops), summary)
    return data


def _label_ops(ops: pd.DataFrame, summary: pd.DataFrame) -> pd.DataFrame:
    labels = dict(zip(zip(summary["run_id"], summary["device_name"], strict=True), summary["board"], strict=True))
    ops = ops.copy()
    ops["board"] = [labels.get((r, d), d) for r, d in zip(ops["run_id"], ops["device_name"], strict=True)]
    return ops


def _warmups(cells: pd.DataFrame) -> dict[str, list[int]]:
    if cells.empty:
        return {}
    ok = cells[cells["status"] == "ok"]
    grouped = pd.to_numeric(ok["warmup"], errors="coerce").groupby(ok["board"]).unique()
    return {b: sorted(int(w) for w in ws if not pd.isna(w)) for b, ws in grouped.items()}


# --- derived columns ------------------------------------------------------------------------------

def _board_labels(pairs: list[tuple[str, str]], runs_df: pd.DataFrame) -> dict[tuple[str, str], str]:
    """A device measured in several runs (two days, two firmware versions) gets the run's date too."""
    runs_of: dict[str, set[str]] = {}
    for run_id, device in pairs:
        runs_of.setdefault(device, set()).add(run_id)
    created = dict(zip(runs_df["id"], runs_df["created_at"], strict=True)) if len(runs_df) else {}
    labels = {}
    for run_id, device in pairs:
        if len(runs_of[device]) > 1:
            when = str(created.get(run_id, ""))[:16].replace("T", " ")
            labels[(run_id, device)] = f"{device} @ {when or run_id}"
        else:
            labels[(run_id, device)] = device
    # Two runs started in the same minute: fall back to the run id, which is unique.
    seen: dict[str, int] = {}
    for label in labels.values():
        seen[label] = seen.get(label, 0) + 1
    return {k: (f"{k[1]} @ {k[0]}" if seen[v] > 1 else v) for k, v in labels.items()}


def series_name(method: str | None, engine: str | None) -> str:
    method = method or "original"
    label = ENGINE_LABEL.get(engine or "", engine or "")
    return f"{method} ({label})" if label and METHOD_STRUCTURE.get(method) != "baseline" else method


def _enrich(summary: pd.DataFrame, cells: pd.DataFrame, runs_df: pd.DataFrame) -> pd.DataFrame:
    extra_cols = ["board", "variant_sha256", "base_sha256", "params", "macs", "device_kind", "runtime",
                  "runtime_version", "clock_hz", "structure", "series", "ref_p50_us", "speedup",
                  "ref_accuracy", "accuracy_delta_pp", "ref_variant", "is_reference"]
    if summary.empty:
        return summary.reindex(columns=[*summary.columns, *extra_cols])
    firsts = (cells.drop_duplicates(["run_id", "device_name", "variant_name"])
              [["run_id", "device_name", "variant_name", "variant_sha256", "base_sha256", "params", "macs",
                "device_kind", "runtime", "runtime_version", "clock_hz"]])
    out = summary.merge(firsts, on=["run_id", "device_name", "variant_name"], how="left")
    pairs = list(dict.fromkeys(zip(out["run_id"], out["device_name"], strict=True)))
    labels = _board_labels(pairs, runs_df)
    out["board"] = [labels[(r, d)] for r, d in zip(out["run_id"], out["device_name"], strict=True)]
    out["structure"] = [structure(m) for m in out["method"]]
    out["series"] = [series_name(m, e) for m, e in zip(out["method"], out["engine"], strict=True)]
    out["is_reference"] = out["structure"] == "baseline"
    out[REMOVED_OR_ZERO.column] = pd.to_numeric(out[REMOVED_OR_ZERO.column], errors="coerce")
    return _add_references(out)


def _add_references(out: pd.DataFrame) -> pd.DataFrame:
    """Each variant's dense reference is its base model measured on the same board in the same run."""
    ref = out[out["is_reference"] & (out["repeats"] > 0)]
    ref_index = {(r.board, r.variant_sha256): r for r in ref.itertuples(index=False)}
    p50, acc, names = [], [], []
    for row in out.itertuples(index=False):
        key_sha = row.variant_sha256 if row.is_reference or not row.base_sha256 else row.base_sha256
        r = ref_index.get((row.board, key_sha))
        p50.append(r.p50_us if r is not None else np.nan)
        acc.append(r.accuracy if r is not None else np.nan)
        names.append(r.variant_name if r is not None else None)
    out["ref_p50_us"] = pd.to_numeric(pd.Series(p50, index=out.index), errors="coerce")
    out["ref_accuracy"] = pd.to_numeric(pd.Series(acc, index=out.index), errors="coerce")
    out["ref_variant"] = names
    out["speedup"] = out["ref_p50_us"] / pd.to_numeric(out["p50_us"], errors="coerce")
    out["accuracy_delta_pp"] = (pd.to_numeric(out["accuracy"], errors="coerce") - out["ref_accuracy"]) * 100
    return out


def _float(value: Any) -> float:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return math.nan
    return f


def _label_cells(cells: pd.DataFrame, summary: pd.DataFrame) -> pd.DataFrame:
    if cells.empty:
        return cells
    labels = dict(zip(zip(summary["run_id"], summary["device_name"], strict=True), summary["board"], strict=True))
    cells = cells.copy()
    cells["board"] = [labels.get((r, d), d) for r, d in zip(cells["run_id"], cells["device_name"], strict=True)]
    return cells


def _devices(snaps: pd.DataFrame, summary: pd.DataFrame, run_ids: list[str],
             opened: set[tuple[str, str]] | None = None) -> pd.DataFrame:
    """One row per (run, device): the last snapshot taken (a resumed run takes a new one). A lab pool's
    cells point at its boards' snapshots (`opened`), so the pool itself is not a board that never opened."""
    columns = ["run_id", "name", "kind", "runtime", "runtime_version", "cpu", "clock_hz", "details", "captured_at"]
    snaps = snaps if len(snaps) else pd.DataFrame(columns=columns)
    latest = snaps.drop_duplicates(["run_id", "name"], keep="last").copy()
    labels = dict(zip(zip(summary["run_id"], summary["device_name"], strict=True), summary["board"], strict=True))
    # A board that never opened has no snapshot; it still gets a row, so the failures have a name to point at.
    have = set(zip(latest["run_id"], latest["name"], strict=True)) | (opened or set())
    unseen = [k for k in labels if k not in have]
    if unseen:
        latest = pd.concat([latest, pd.DataFrame([{"run_id": r, "name": n, "kind": "not opened", "details": {}}
                                                   for r, n in unseen])], ignore_index=True)
    latest["board"] = [labels.get((r, n), n) for r, n in zip(latest["run_id"], latest["name"], strict=True)]
    sources = (summary.dropna(subset=["latency_source"]).groupby("board")["latency_source"]
               .agg(lambda s: ",".join(sorted({x for v in s for x in str(v).split(",") if x}))))
    latest["latency_source"] = [sources.get(b, "") for b in latest["board"]]
    order = {r: i for i, r in enumerate(run_ids)}
    return latest.sort_values(["run_id", "name"], key=lambda s: s.map(order) if s.name == "run_id" else s,
                              kind="stable", ignore_index=True)


# --- warnings -------------------------------------------------------------------------------------

def collect_warnings(data: ReportData) -> list[ReportWarning]:
    """What a reader must know before trusting a figure, in the order it matters."""
    out: list[ReportWarning] = []
    if not data.has_results:
        out.append(ReportWarning("no-data", "No cell of the selected run(s) finished successfully: "
                                 "there is nothing to plot. Failed cells are listed below."))
    for dev in data.devices.itertuples(index=False):
        for source in ("estimated", "emulated"):
            if source in str(dev.latency_source).split(","):
                how = ("a cost model, not a clock on real hardware" if source == "estimated"
                       else "an emulator's instruction count, not real cycles")
                out.append(ReportWarning(source, f"{dev.board}: latency figures are {source} by {how}.",
                                         board=dev.board))
    ok = data.ok_summary()
    out.extend(disagreements(data))
    out.extend(_capped(ok))
    for row in ok.itertuples(index=False):
        if row.cv is not None and not pd.isna(row.cv) and row.cv > data.cv_threshold:
            out.append(ReportWarning(
                "high-cv", f"{row.board} / {row.variant_name}: coefficient of variation {row.cv:.2f} "
                f"exceeds {data.cv_threshold:.2f} (n = {row.n}); the median is less certain than it looks.",
                board=row.board, variant=row.variant_name))
    if len(data.cells):
        cells = data.cells
        # Only the flagged rows are walked: iterating 100,000 cells through pandas costs seconds.
        throttled = [any(d.get(k) for k in THROTTLE_KEYS) if isinstance(d, dict) else False
                     for d in cells["details"]]
        for cell in cells[throttled].itertuples(index=False):
            reason = cell.details.get("throttle_reason") or "the driver reported thermal throttling"
            out.append(ReportWarning("throttled", f"{cell.board} / {cell.variant_name} repeat {cell.repeat}: "
                                     f"{reason}.", board=cell.board, variant=cell.variant_name))
        out.extend(_estimated_energy(cells))
        failed = cells[cells["status"] != "ok"]
        # One warning per board and error, with its count and a hint, not one per cell.
        for group in group_failures(zip(failed["board"], failed["variant_name"], failed["error"], strict=True)):
            out.append(ReportWarning("failed", group.describe(limit=6), board=group.device,
                                     variant=group.variants[0] if len(group.variants) == 1 else None))
    log.debug("%d report warnings", len(out))
    return out


def _estimated_energy(cells: pd.DataFrame) -> list[ReportWarning]:
    """Energy from a modelled meter (or a device's own power model) is an estimate, whatever its precision."""
    boards: dict[str, str] = {}
    with_energy = cells[pd.to_numeric(cells["energy_uj"], errors="coerce").notna() & (cells["status"] == "ok")]
    for board, details in zip(with_energy["board"], with_energy["details"], strict=True):
        if board in boards or not isinstance(details, dict):
            continue
        energy = details.get("energy") if isinstance(details.get("energy"), dict) else {}
        meter = energy.get("meter") if isinstance(energy.get("meter"), dict) else {}
        if energy.get("estimated"):
            boards[board] = f"meter {meter.get('name') or meter.get('kind') or '?'} is a model, not an instrument"
        elif str(details.get("energy_method", "")).startswith("estimated"):
            boards[board] = str(details["energy_method"])
    return [ReportWarning("estimated", f"{board}: energy per inference is estimated ({why}).", board=board)
            for board, why in boards.items()]


def _capped(ok: pd.DataFrame) -> list[ReportWarning]:
    """A driver that ran fewer timed inferences than asked: once per board, with its reason."""
    out = []
    capped = ok[ok["iterations_cap"].notna()] if "iterations_cap" in ok else ok.iloc[:0]
    for board, rows in capped.groupby("board", sort=False):
        r = rows.iloc[0]
        why = r.iterations_cap_reason or "the driver capped it"
        out.append(ReportWarning(
            "capped", f"{board}: n = {int(r.n)} timed inferences of {int(r.iterations_requested)} asked "
            f"({r.variant_name}; {len(rows)} variant(s) capped): {why}.", board=board))
    return out


def core_of(cpu: Any) -> str | None:
    """The core a board's CPU string names (`cortex-m4 (QEMU, -icount)` -> `cortex-m4`)."""
    if cpu is None or (isinstance(cpu, float) and math.isnan(cpu)) or not str(cpu).strip():
        return None
    text = str(cpu).strip().lower()
    match = re.search(r"cortex-[amr]\d+\w*|esp32[\w-]*|rv(?:32|64)\w*", text)
    return match.group(0) if match else text.split(" (")[0]


@dataclass(frozen=True)
class Disagreement:
    """An estimated and an emulated board modelling the same core, compared variant by variant in cycles."""

    core: str
    estimated: str
    emulated: str
    variant: str
    estimated_cycles: float
    emulated_cycles: float
    beyond: int
    compared: int
    unit: str

    @property
    def ratio(self) -> float:
        lo, hi = sorted((self.estimated_cycles, self.emulated_cycles))
        return hi / lo if lo > 0 else math.inf


def find_disagreements(data: ReportData, limit: float = DISAGREE_RATIO) -> list[Disagreement]:
    """Every (estimated, emulated) pair of boards on one core whose figures differ by more than `limit`.

    Cycles (median latency × the board's own clock) when both clocks are known, since the two kinds of
    board rarely run at the same configured clock; microseconds otherwise. The worst variant speaks."""
    ok = data.ok_summary()
    dev = data.devices.drop_duplicates("board", keep="last").set_index("board") if len(data.devices) else None
    if dev is None or ok.empty:
        return []
    boards: dict[str, list[str]] = {"estimated": [], "emulated": []}
    for board in data.boards_with_results():
        sources = set(str(dev["latency_source"].get(board, "")).split(","))
        for kind in boards:
            if kind in sources:
                boards[kind].append(board)
    out = []
    for est in boards["estimated"]:
        for emu in boards["emulated"]:
            core = core_of(dev["cpu"].get(est))
            if core is None or core != core_of(dev["cpu"].get(emu)):
                continue
            clocks = [_float(dev["clock_hz"].get(b)) for b in (est, emu)]
            in_cycles = all(c > 0 for c in clocks)
            scale = [c / 1e6 if in_cycles else 1.0 for c in clocks]
            a = ok[ok["board"] == est].set_index("variant_sha256")
            b = ok[ok["board"] == emu].set_index("variant_sha256")
            worst: tuple[float, str, float, float] | None = None
            beyond = compared = 0
            for sha in a.index.intersection(b.index):
                x = float(a.loc[sha, "p50_us"]) * scale[0]
                y = float(b.loc[sha, "p50_us"]) * scale[1]
                if not (x > 0 and y > 0):
                    continue
                compared += 1
                ratio = max(x, y) / min(x, y)
                beyond += ratio > limit
                if worst is None or ratio > worst[0]:
                    worst = (ratio, str(a.loc[sha, "variant_name"]), x, y)
            if worst is not None and worst[0] > limit:
                out.append(Disagreement(core, est, emu, worst[1], worst[2], worst[3], beyond, compared,
                                        "cycles" if in_cycles else "µs"))
    return out


def disagreements(data: ReportData) -> list[ReportWarning]:
    out = []
    for d in find_disagreements(data):
        unit = "cycles (median latency × each board's clock)" if d.unit == "cycles" else d.unit
        out.append(ReportWarning(
            "disagree", f"{d.estimated} (estimated) and {d.emulated} (emulated) model the same core ({d.core}) but "
            f"disagree by {d.ratio:.1f}× on {d.variant}: {d.estimated_cycles:,.0f} vs {d.emulated_cycles:,.0f} "
            f"{unit}; "
            f"{d.beyond} of {d.compared} variants differ by more than {DISAGREE_RATIO:g}×. At least one of the two "
            "is far from the real core: check both against a real board before trusting either in cycles.",
            board=d.estimated, variant=d.variant))
    return out

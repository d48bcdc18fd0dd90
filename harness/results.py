"""Reading results back as pandas DataFrames: one row per cell, or one per (variant, device).

    >>> from harness import results
    >>> cells = results.load("20261123-182851-102d")          # every cell, with its latency samples
    >>> table = results.summarize(cells)                      # what `bench show` prints
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchcore import metrics
from harness.bundle import load_bundle
from harness.config import DEFAULT_STORE_URL
from harness.errors import StoreError
from harness.sparsity import REMOVED_OR_ZERO, ZERO_WEIGHTS, removed_or_zero
from harness.stats import summarize_ns
from harness.store import Store

#: Who and what a summary row is about (the variant's columns come from the bundle's join).
_KEY_COLUMNS = ["run_id", "device_name", "variant_name", "method", "engine", "target_sparsity",
                ZERO_WEIGHTS.column, REMOVED_OR_ZERO.column, "latency_source", "repeats", "failed"]


def _summary_columns() -> list[str]:
    out = list(_KEY_COLUMNS)
    for m in metrics.summarized():
        out += [m.column, *m.beside]  # beside: the iteration cap after `n`, the gzip size after the file size
    return [*out, "estimated"]


#: The summary's columns: keys, then every pooled metric of the registry (benchcore.metrics).
SUMMARY_COLUMNS = _summary_columns()


def load(run_ids: str | list[str], store_url: str = DEFAULT_STORE_URL) -> pd.DataFrame:
    """Every cell of the runs, with its variant and device snapshot; an unknown run id is an error."""
    ids = [run_ids] if isinstance(run_ids, str) else list(run_ids)
    return load_bundle(ids, store_url).cells


def summarize(cells: pd.DataFrame) -> pd.DataFrame:
    """Pool the repeats of each (run, device, variant): percentiles over all their samples, and the
    spread of the per-repeat medians ((max - min) / median) to show how stable the repeats were.

    Both sparsity figures come from `harness.sparsity`; `n` is the samples taken, and when a driver
    ran fewer timed inferences than asked, `iterations_requested` and the driver's cap say so."""
    if cells.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    params_of = _params_by_sha(cells)
    out = []
    keys = ["run_id", "device_name", "variant_name"]
    pooled = metrics.summarized()
    for (run_id, device, variant), group in cells.groupby(keys, sort=False):
        ok = group[group["status"] == "ok"]
        first = group.iloc[0]
        row = {
            "run_id": run_id, "device_name": device, "variant_name": variant,
            "method": first["method"], "engine": first["engine"], "target_sparsity": first["target_sparsity"],
            ZERO_WEIGHTS.column: first["measured_sparsity"],
            REMOVED_OR_ZERO.column: removed_or_zero(first["method"], first["measured_sparsity"], first.get("params"),
                                                    params_of.get(first.get("base_sha256"))),
            "gzip_bytes": first["gzip_bytes"], "repeats": len(ok), "failed": int(len(group) - len(ok)),
        }
        # A property of the model file, the same in every repeat: the first cell's, failed or not.
        row.update({m.column: first.get(m.column) for m in pooled if m.pool == "first"})
        if len(ok):
            samples = np.concatenate([np.asarray(s, dtype=np.float64) for s in ok["latency_ns"]])
            from_samples = summarize_ns(samples).as_dict()
            row["latency_source"] = ",".join(sorted(set(ok["latency_source"].dropna())))
            for m in pooled:
                if m.pool == "samples":
                    row[m.column] = from_samples[m.column]
                elif m.pool == "spread":
                    row[m.column] = _spread(ok[metrics.METRICS[m.spread_of or ""].column])
                elif m.pool == "max":
                    row[m.column] = _max(ok.get(m.column))
                elif m.pool == "median":
                    row[m.column] = _median(ok.get(m.column))
            row.update(_iterations(ok))
            row["estimated"] = bool(ok["estimated"].any())
        out.append(row)
    # Devices in name order, variants in the order they were first measured (the plan's order).
    return pd.DataFrame(out, columns=SUMMARY_COLUMNS).sort_values(
        ["run_id", "device_name"], kind="stable", ignore_index=True)


def _params_by_sha(cells: pd.DataFrame) -> dict[str, float]:
    """Parameter counts of the variants in the frame: the dense model's, for `removed_or_zero`."""
    if "params" not in cells or "variant_sha256" not in cells:
        return {}
    firsts = cells.drop_duplicates("variant_sha256")
    return {sha: p for sha, p in zip(firsts["variant_sha256"], firsts["params"], strict=True)
            if p is not None and not pd.isna(p)}


def _iterations(ok: pd.DataFrame) -> dict[str, object]:
    """Timed inferences asked for against those a driver agreed to run, and the driver's reason.

    Cells record `details.iterations` = {requested, performed, cap, reason}; older cells lack it."""
    requested = 0
    caps: set[int] = set()
    reasons: list[str] = []
    known = False
    for details in ok.get("details", pd.Series(dtype=object)):
        it = details.get("iterations") if isinstance(details, dict) else None
        if not isinstance(it, dict) or it.get("requested") is None:
            continue
        known = True
        requested += int(it["requested"])
        if it.get("cap") is not None and int(it.get("performed", 0)) < int(it["requested"]):
            caps.add(int(it["cap"]))
            if it.get("reason") and it["reason"] not in reasons:
                reasons.append(str(it["reason"]))
    return {"iterations_requested": requested if known else None,
            "iterations_cap": max(caps) if caps else None,
            "iterations_cap_reason": "; ".join(reasons) or None}


def _spread(per_repeat: pd.Series) -> float:
    """(max - min) / median of the repeats' figures; 0 for a single repeat."""
    values = per_repeat.astype(float)
    return float((values.max() - values.min()) / values.median()) if len(values) > 1 else 0.0


def _max(series: pd.Series | None) -> float | None:
    if series is None:
        return None
    values = pd.to_numeric(series, errors="coerce").dropna()
    return float(values.max()) if len(values) else None


def _median(series: pd.Series | None) -> float | None:
    if series is None:
        return None
    values = pd.to_numeric(series, errors="coerce").dropna()
    return float(values.median()) if len(values) else None


#: What a user writes for "the newest run in the store" wherever a run id is taken.
LATEST = "latest"


def resolve_run(ref: str | None, store_url: str = DEFAULT_STORE_URL) -> str:
    """A run id as given, or the newest run's for `latest` (and for nothing given)."""
    return latest_run(store_url) if ref in (None, "", LATEST) else ref


def latest_run(store_url: str = DEFAULT_STORE_URL) -> str:
    store = Store.open(store_url, create=False)
    try:
        run_id = store.latest_run_id()
    finally:
        store.close()
    if run_id is None:
        raise StoreError(f"store {store_url!r} holds no runs yet.", hint="Run `bench sweep` first.")
    return run_id


OP_COLUMNS = ["run_id", "device_name", "variant_name", "op", "share", "time_us", "ticks", "unit", "repeats"]


def op_summary(cells: pd.DataFrame, ops: pd.DataFrame) -> pd.DataFrame:
    """Per-op profiles pooled over the repeats of each (run, device, variant), by operator type:
    the mean over repeats of each type's summed share (and time) of one inference, largest first."""
    if cells.empty or ops is None or ops.empty:
        return pd.DataFrame(columns=OP_COLUMNS)
    keys = cells[["run_id", "cell_key", "device_name", "variant_name"]]
    frame = ops.merge(keys, on=["run_id", "cell_key"], how="inner")
    if frame.empty:
        return pd.DataFrame(columns=OP_COLUMNS)
    for col in ("share", "time_us", "ticks"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
    per_cell = (frame.groupby(["run_id", "device_name", "variant_name", "cell_key", "op", "unit"], sort=False)
                [["share", "time_us", "ticks"]].sum(min_count=1).reset_index())
    pooled = (per_cell.groupby(["run_id", "device_name", "variant_name", "op", "unit"], sort=False)
              .agg(share=("share", "mean"), time_us=("time_us", "mean"), ticks=("ticks", "mean"),
                   repeats=("cell_key", "nunique")).reset_index())
    return (pooled.sort_values(["run_id", "device_name", "variant_name", "share"],
                               ascending=[True, True, True, False], kind="stable", ignore_index=True)
            [OP_COLUMNS])


def load_ops(run_id: str, store_url: str = DEFAULT_STORE_URL) -> pd.DataFrame:
    """The pooled per-op profile of a run (empty when no device of it could profile)."""
    bundle = load_bundle([run_id], store_url)
    return op_summary(bundle.cells, bundle.ops)

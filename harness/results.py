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
from harness.stats import summarize_ns
from harness.store import Store

#: Who and what a summary row is about (the variant's columns come from the bundle's join).
_KEY_COLUMNS = ["run_id", "device_name", "variant_name", "method", "engine", "target_sparsity",
                "measured_sparsity", "latency_source", "repeats", "failed"]
#: Variant columns shown beside a metric, by the metric column they follow.
_VARIANT_AFTER = {"model_bytes": "gzip_bytes"}


def _summary_columns() -> list[str]:
    out = list(_KEY_COLUMNS)
    for m in metrics.summarized():
        out.append(m.column)
        if m.column in _VARIANT_AFTER:
            out.append(_VARIANT_AFTER[m.column])
    return [*out, "estimated"]


#: The summary's columns: keys, then every pooled metric of the registry (benchcore.metrics).
SUMMARY_COLUMNS = _summary_columns()


def load(run_ids: str | list[str], store_url: str = DEFAULT_STORE_URL) -> pd.DataFrame:
    """Every cell of the runs, with its variant and device snapshot; an unknown run id is an error."""
    ids = [run_ids] if isinstance(run_ids, str) else list(run_ids)
    return load_bundle(ids, store_url).cells


def summarize(cells: pd.DataFrame) -> pd.DataFrame:
    """Pool the repeats of each (run, device, variant) the way the metric registry says: percentiles
    over all their samples, medians of per-repeat figures, and the spread of the per-repeat medians
    ((max - min) / median) to show how stable the repeats were."""
    if cells.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    out = []
    keys = ["run_id", "device_name", "variant_name"]
    pooled = metrics.summarized()
    for (run_id, device, variant), group in cells.groupby(keys, sort=False):
        ok = group[group["status"] == "ok"]
        first = group.iloc[0]
        row = {
            "run_id": run_id, "device_name": device, "variant_name": variant,
            "method": first["method"], "engine": first["engine"], "target_sparsity": first["target_sparsity"],
            "measured_sparsity": first["measured_sparsity"], "gzip_bytes": first["gzip_bytes"],
            "model_bytes": first["model_bytes"], "repeats": len(ok), "failed": int(len(group) - len(ok)),
        }
        if len(ok):
            samples = np.concatenate([np.asarray(s, dtype=np.float64) for s in ok["latency_ns"]])
            from_samples = summarize_ns(samples).as_dict()
            row["latency_source"] = ",".join(sorted(set(ok["latency_source"].dropna())))
            for m in pooled:
                if m.pool == "samples":
                    row[m.column] = from_samples[m.column]
                elif m.pool == "spread":
                    medians = ok["p50_us"].astype(float)
                    row[m.column] = float((medians.max() - medians.min()) / medians.median()) if len(ok) > 1 else 0.0
                elif m.column != "model_bytes":  # a property of the file: the first cell's, failed or not
                    row[m.column] = _median(ok[m.column])
            row["estimated"] = bool(ok["estimated"].any())
        out.append(row)
    # Devices in name order, variants in the order they were first measured (the plan's order).
    return pd.DataFrame(out, columns=SUMMARY_COLUMNS).sort_values(
        ["run_id", "device_name"], kind="stable", ignore_index=True)


def _median(series: pd.Series) -> float | None:
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

"""Reading results back as pandas DataFrames: one row per cell, or one per (variant, device).

    >>> from harness import results
    >>> cells = results.load("20261123-182851-102d")          # every cell, with its latency samples
    >>> table = results.summarize(cells)                      # what `bench show` prints
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.bundle import load_bundle
from harness.config import DEFAULT_STORE_URL
from harness.errors import StoreError
from harness.store import Store

SUMMARY_COLUMNS = [
    "run_id", "device_name", "variant_name", "method", "engine", "target_sparsity", "measured_sparsity",
    "latency_source", "repeats", "failed", "n", "p5_us", "p50_us", "p95_us", "mean_us", "cv", "repeat_spread",
    "ram_bytes", "arena_bytes", "model_bytes", "gzip_bytes", "accuracy", "accuracy_n", "output_agreement",
    "energy_uj", "estimated",
]


def load(run_ids: str | list[str], store_url: str = DEFAULT_STORE_URL) -> pd.DataFrame:
    """Every cell of the runs, with its variant and device snapshot; an unknown run id is an error."""
    ids = [run_ids] if isinstance(run_ids, str) else list(run_ids)
    return load_bundle(ids, store_url).cells


def summarize(cells: pd.DataFrame) -> pd.DataFrame:
    """Pool the repeats of each (run, device, variant): percentiles over all their samples, and the
    spread of the per-repeat medians ((max - min) / median) to show how stable the repeats were."""
    if cells.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    out = []
    keys = ["run_id", "device_name", "variant_name"]
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
            samples = np.concatenate([np.asarray(s, dtype=np.float64) for s in ok["latency_ns"]]) / 1e3
            p5, p50, p95 = np.percentile(samples, [5, 50, 95])
            mean = float(samples.mean())
            medians = ok["p50_us"].astype(float)
            row.update(
                latency_source=",".join(sorted(set(ok["latency_source"].dropna()))),
                n=int(samples.size), p5_us=p5, p50_us=p50, p95_us=p95, mean_us=mean,
                cv=float(samples.std(ddof=1) / mean) if samples.size > 1 and mean else 0.0,
                repeat_spread=float((medians.max() - medians.min()) / medians.median()) if len(ok) > 1 else 0.0,
                ram_bytes=_median(ok["ram_bytes"]), arena_bytes=_median(ok["arena_bytes"]),
                accuracy=_median(ok["accuracy"]), accuracy_n=_median(ok["accuracy_n"]),
                output_agreement=_median(ok["output_agreement"]), energy_uj=_median(ok["energy_uj"]),
                estimated=bool(ok["estimated"].any()),
            )
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

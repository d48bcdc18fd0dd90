"""Report generation from a synthetic store of 100,000 measurement rows. Goal: <= 10 s on a 2-core machine.

The store is built once with the real Store (runs, device snapshots and variants through its methods;
the 100,000 measurement rows through its `measurements` table in batches, because one transaction per
row, as a sweep commits them, only slows the set-up down). Only `make_report` is timed.

    python benchmarks/report_100k.py [--runs 3] [--rows 100000] [--samples 50] [--keep DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.report import make_report
from harness.store import Store, measurements, utcnow

DEVICES = 4
RUNS = 2
VARIANTS = [("dense", "dense", 0.0, None)] + [
    (f"{prefix}magnitude-{int(s * 100)}", "magnitude", s, e) for prefix, e in (("", "keras"), ("ptq-", "tflite"))
    for s in (0.3, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
] + [(f"channel-{int(s * 100)}", "channel", s, "keras") for s in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)]


def build_store(path: Path, rows: int, samples: int) -> tuple[str, list[str]]:
    url = f"sqlite:///{path}"
    store = Store.open(url)
    rng = np.random.default_rng(0)
    cells_per_run = rows // RUNS
    repeats = max(1, cells_per_run // (DEVICES * len(VARIANTS)))
    run_ids = []
    dense_sha = f"{0:064x}"
    for i, (name, method, sparsity, engine) in enumerate(VARIANTS):
        structured = method == "channel"
        store.upsert_variant({
            "name": name, "sha256": f"{i:064x}", "method": method, "engine": engine,
            "base_sha256": None if i == 0 else dense_sha, "target_sparsity": sparsity,
            "measured_sparsity": 0.0 if structured else sparsity,
            "params": int(20000 * ((1 - sparsity) ** 2 if structured else 1)), "macs": 70000,
            "size_bytes": int(25000 * ((1 - sparsity) ** 2 if structured else 1)),
            "gzip_bytes": int(20000 * (1 - 0.8 * sparsity)), "arena_bytes": 6400,
            "accuracy": 0.98 - 0.3 * sparsity ** 4, "command": "synthetic",
        })
    written = 0
    for r in range(RUNS):
        run_id = f"2026112{r}-000000-{r:04x}"
        run_ids.append(run_id)
        store.create_run(run_id, config={}, n_cells=cells_per_run, bench_version="bench", git_commit=None,
                         host="synthetic", command="benchmarks/report_100k.py")
        batch = []
        for d in range(DEVICES):
            snap = store.add_device_snapshot(run_id, {
                "name": f"board-{d}", "kind": "fake", "runtime": "tflite-micro", "runtime_version": f"1.{r}",
                "cpu": "cortex-m4", "clock_hz": 80_000_000 * (d + 1), "details": {"firmware": f"fw-{r}"}})
            for v, (name, method, sparsity, _engine) in enumerate(VARIANTS):
                base_us = 1000.0 / (d + 1) * ((1 - sparsity) ** 2 if method == "channel" else 1.0)
                for rep in range(repeats):
                    if written >= rows:
                        break
                    lat = base_us * 1e3 * (1 + 0.02 * rng.standard_normal(samples))
                    p5, p50, p95 = np.percentile(lat / 1e3, [5, 50, 95])
                    batch.append({
                        "run_id": run_id, "cell_key": f"board-{d}|{name}|{rep}", "device_name": f"board-{d}",
                        "device_snapshot_id": snap, "variant_sha256": f"{v:064x}", "variant_name": name,
                        "repeat": rep, "status": "ok", "started_at": utcnow(), "finished_at": utcnow(),
                        "n": samples, "warmup": 10, "latency_ns": lat.round().tolist(), "p5_us": p5, "p50_us": p50,
                        "p95_us": p95, "mean_us": float(lat.mean() / 1e3), "std_us": float(lat.std() / 1e3),
                        "cv": float(lat.std() / lat.mean()), "arena_bytes": 6400, "model_bytes": 25000,
                        "accuracy": 0.98 - 0.3 * sparsity ** 4, "accuracy_n": 360, "energy_uj": base_us * 0.03,
                        "estimated": True, "latency_source": "estimated", "timing_method": "synthetic",
                        "details": {},
                    })
                    written += 1
        with store.engine.begin() as conn:
            for start in range(0, len(batch), 5000):
                conn.execute(measurements.insert(), batch[start:start + 5000])
    store.close()
    return url, run_ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="timed report generations")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=50, help="latency samples per row")
    parser.add_argument("--keep", type=Path, help="write the store and reports here instead of a temp dir")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        where = args.keep or Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        url, run_ids = build_store(where / "synthetic.db", args.rows, args.samples)
        print(f"built {args.rows} rows × {args.samples} samples in {time.perf_counter() - t0:.1f} s (not timed)")
        walls = []
        for i in range(args.runs):
            t0 = time.perf_counter()
            made = make_report(run_ids, url, where / f"reports-{i}", formats=("html", "md", "csv"))
            walls.append(time.perf_counter() - t0)
            print(f"generation {i + 1}: {walls[-1]:.2f} s  ({made.html})")
    spread = f"{min(walls):.2f}–{max(walls):.2f}"
    verdict = "ok" if statistics.median(walls) <= 10 else "OVER the 10 s goal"
    print(f"report from {args.rows} rows: n={len(walls)}, median {statistics.median(walls):.2f} s, "
          f"range {spread} s — {verdict}")


if __name__ == "__main__":
    main()

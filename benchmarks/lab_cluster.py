"""The lab's figures, measured on a real local Dask cluster (scheduler + workers as processes on 127.0.0.1).

1. Scaling: 32 sim boards over 4 workers. A lane alone on the lab takes t1; all 32 lanes together take tN.
   Parallel efficiency = t1 / tN (1.0: 32 lanes finish as fast as one). The sims' links are paced like
   a UART (`--baud`), so a lane waits on its link as a real board's lane does, instead of competing for
   this host's CPU (32 simulators on one 2-core machine would otherwise measure the machine, not the lab).
   Goal >= 0.8. Also printed: the issue's form, tN ÷ (t1 × lanes ÷ workers).
2. Per-cell overhead of the cluster path vs threads: the same N instant cells (`fake` device) through
   `bench sweep --cluster` and through in-process threads; (t_cluster - t_threads) / N. Goal <= 10 ms.
3. The writer's commit rate on PostgreSQL with 32 lanes: 32 fake boards over 4 workers into a real
   PostgreSQL server started here; cells / s over the sweep, and the writer alone (add_measurement loop).

Every figure is the median of --rounds runs, printed with its range and n.

    python benchmarks/lab_cluster.py [--rounds 3] [--boards 32] [--workers 4] [--baud 57600]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

# tests/ holds the lab and PostgreSQL starters this script shares with the test suite.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.config import parse_config
from harness.lab.sweep import run_lab_sweep
from harness.models.zoo import EXAMPLE_DIR
from harness.sweep import run_sweep
from tests.lab_fixtures import Lab
from tests.postgres_server import postgres_server

MODEL = str(EXAMPLE_DIR / "digits_dense.tflite")


def _boards(kind: str, names: list[str], extra: str) -> str:
    return "".join(f'[[devices]]\nname = "{n}"\nkind = "{kind}"\n{extra}' for n in names)


def _start_lab(root: Path, kind: str, boards: int, workers: int, extra: str) -> Lab:
    root.mkdir(parents=True, exist_ok=True)
    lab = Lab(root)
    lab.start_scheduler()
    names = [f"w{i}" for i in range(workers)]
    for i, name in enumerate(names):
        mine = [f"b{j:02d}" for j in range(boards) if j % workers == i]
        lab.start_worker(name, _boards(kind, mine, extra))
    lab.wait_for_workers(names)
    return lab


def _config(tmp: Path, store: str, sweep: dict, devices: list[dict] | None = None):
    doc = {"store": {"url": store}, "sweep": {"models": [MODEL], "accuracy_samples": 0, **sweep}}
    if devices:
        doc["devices"] = devices
    return parse_config(doc, "benchmark", tmp)


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _line(label: str, values: list[float], unit: str, n: str) -> str:
    return (f"{label:<46} {statistics.median(values):10.3f} {unit:<6} range {min(values):.3f}–{max(values):.3f}"
            f"  ({len(values)} rounds; {n})")


def scaling(tmp: Path, args: argparse.Namespace) -> None:
    lab = _start_lab(tmp / "lab-sim", "sim", args.boards, args.workers, f"baud = {args.baud}\n")
    try:
        cfg = _config(tmp, f"sqlite:///{tmp / 'scale.db'}", {"repeats": args.repeats, "iterations": 20, "warmup": 1})
        t1s, tns = [], []
        for _ in range(args.rounds):
            t1s.append(_timed(lambda: run_lab_sweep(cfg, address=lab.address, devices=["b00"])))
            tns.append(_timed(lambda: run_lab_sweep(cfg, address=lab.address)))
        eff = [a / b for a, b in zip(t1s, tns, strict=True)]
        issue = [b / (a * args.boards / args.workers) for a, b in zip(t1s, tns, strict=True)]
        print(_line("one lane alone, t1", t1s, "s", f"{args.repeats} cells, sim @ {args.baud} baud"))
        print(_line(f"{args.boards} lanes over {args.workers} workers, tN", tns, "s",
                    f"{args.boards * args.repeats} cells"))
        print(_line("parallel efficiency t1 / tN (goal >= 0.8)", eff, "", "1.0 = linear"))
        print(_line("issue's form tN / (t1 x lanes / workers)", issue, "", "lower is better"))
    finally:
        lab.stop()


def overhead(tmp: Path, args: argparse.Namespace) -> None:
    """Per-cell cost as a slope: sweeps of N and 3N cells, so connecting, reserving and planning (paid
    once per sweep) cancel out; the cluster's slope minus the threads' is what the lab adds per cell."""
    lab = _start_lab(tmp / "lab-fake", "fake", 1, 1, "latency_us = 50.0\n")
    board = {"name": "b00", "kind": "fake", "latency_us": 50.0}
    try:
        per_cell, fixed = [], []
        for r in range(args.rounds):
            times: dict[str, list[float]] = {"threads": [], "cluster": []}
            for n in (args.cells, 3 * args.cells):
                sweep = {"repeats": n, "iterations": 1, "warmup": 0}
                local = _config(tmp, f"sqlite:///{tmp / f'local-{r}-{n}.db'}", sweep, [board])
                remote = _config(tmp, f"sqlite:///{tmp / f'remote-{r}-{n}.db'}", sweep)
                times["threads"].append(_timed(lambda cfg=local: run_sweep(cfg)))
                times["cluster"].append(_timed(lambda cfg=remote: run_lab_sweep(cfg, address=lab.address)))
            slope = {k: (v[1] - v[0]) / (2 * args.cells) for k, v in times.items()}
            per_cell.append((slope["cluster"] - slope["threads"]) * 1e3)
            fixed.append(times["cluster"][0] - slope["cluster"] * args.cells - (times["threads"][0]
                                                                               - slope["threads"] * args.cells))
        print(_line("per-cell overhead, cluster - threads (goal <= 10)", per_cell, "ms",
                    f"slope between {args.cells} and {3 * args.cells} fake cells, 1 worker"))
        print(_line("fixed cost per lab sweep, over threads", fixed, "s", "connect, inventory, reserve, release"))
    finally:
        lab.stop()


def commit_rate(tmp: Path, args: argparse.Namespace) -> None:
    with postgres_server() as url:
        lab = _start_lab(tmp / "lab-pg", "fake", args.boards, args.workers, "latency_us = 50.0\n")
        try:
            cfg = _config(tmp, url, {"repeats": args.repeats * 4, "iterations": 1, "warmup": 0})
            rates = []
            for _ in range(args.rounds):
                t0 = time.perf_counter()
                out = run_lab_sweep(cfg, address=lab.address).outcome
                rates.append(out.cells_ok / (time.perf_counter() - t0))
            print(_line(f"PostgreSQL, {args.boards} lanes over {args.workers} workers", rates, "cells/s",
                        f"{args.boards * args.repeats * 4} fake cells per sweep, whole sweep incl. planning"))
            print(_line("PostgreSQL, the writer alone", [_writer_rate(url) for _ in range(args.rounds)], "cells/s",
                        "500 add_measurement calls, one transaction each"))
        finally:
            lab.stop()


def _writer_rate(url: str, n: int = 500) -> float:
    from benchcore.record import Measurement
    from harness.store import Store, new_run_id, utcnow

    store = Store.open(url)
    run_id = new_run_id()
    store.create_run(run_id, config={}, n_cells=n, bench_version="bench", git_commit=None, host="h", command="")
    store.upsert_variant({"sha256": "0" * 64, "name": "v", "method": "dense"})
    t0 = time.perf_counter()
    for i in range(n):
        record = Measurement(cell_key=f"c{i}", device_name="b", variant_sha256="0" * 64, variant_name="v", repeat=i,
                             status="ok", started_at=utcnow(), finished_at=utcnow(), latency_ns=(1.0,) * 100)
        store.add_measurement(record, run_id=run_id)
    rate = n / (time.perf_counter() - t0)
    store.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--boards", type=int, default=32)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=4, help="cells per board in the scaling sweep")
    parser.add_argument("--baud", type=int, default=57600)
    parser.add_argument("--cells", type=int, default=200, help="cells per sweep for the overhead figure")
    parser.add_argument("--only", choices=["scaling", "overhead", "commit"], default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-lab-") as d:
        tmp = Path(d)
        for name, fn in (("scaling", scaling), ("overhead", overhead), ("commit", commit_rate)):
            if args.only in (None, name):
                fn(tmp, args)


if __name__ == "__main__":
    main()

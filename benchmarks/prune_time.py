"""Time to make one post-training pruned variant, per (method, scope, sparsity), split into the
in-memory prune, the whole `prune_file` without the arena search, and the TFLM arena search alone
(which dominates when it is on). Default model: person_detect, the largest example (300 KB, 28
weight layers). Rounds interleave the variants so drift on a shared machine hits them alike.

    python benchmarks/prune_time.py [--model PATH] [--rounds 7]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from harness.models.arena import probe_arena
from harness.models.prune_tflite import prune_bytes, prune_file
from harness.models.tflite_file import read_model

SHARED = Path(__file__).resolve().parents[2] / "shared" / "models"
VARIANTS = [("magnitude", "layer", 0.5), ("magnitude", "layer", 0.9), ("magnitude", "global", 0.5),
            ("magnitude", "global", 0.9), ("channel", "layer", 0.5), ("channel", "layer", 0.9)]


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=SHARED / "person_detect.tflite")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    mf = read_model(args.model)
    rows: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for method, scope, s in VARIANTS:
                key = f"{method}/{scope}/{s:.2f}"
                dst = Path(tmp) / f"{method}-{scope}-{s}.tflite"
                row = rows.setdefault(key, {"prune_bytes": [], "prune_file": [], "arena": []})
                row["prune_bytes"].append(timed(lambda m=method, sc=scope, sp=s: prune_bytes(
                    mf, method=m, sparsity=sp, scope=sc)))
                row["prune_file"].append(timed(lambda m=method, sc=scope, sp=s, d=dst: prune_file(
                    args.model, d, method=m, sparsity=sp, scope=sc, arena=False)))
                row["arena"].append(timed(lambda d=dst: probe_arena(d.read_bytes())))
    print(f"model {args.model.name} ({len(mf.data)} B), {args.rounds} rounds; median ms [min–max]")
    print(f"{'variant':<26}{'n':>3}  {'prune in memory':>22}  {'prune_file, no arena':>22}  {'arena search':>22}")
    for key, row in rows.items():
        cells = [f"{statistics.median(v):7.1f} [{min(v):6.1f}–{max(v):6.1f}]" for v in row.values()]
        print(f"{key:<26}{len(row['arena']):>3}  " + "  ".join(f"{c:>22}" for c in cells))


if __name__ == "__main__":
    main()

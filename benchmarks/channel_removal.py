"""What post-training channel pruning buys once the channels are really removed: per model and
sparsity, file size, parameters, MACs, TFLM arena and TFLM latency of the original, the *removed*
variant and the *zeroed* one (the same function at the dense shape). Latency is the TFLM Python
runtime's `invoke()` on this host (a 64-bit build of the reference kernels), timed with
perf_counter_ns: median and p5–p95 over `--rounds` × `--iterations` invokes, rounds interleaved
across variants so drift on a shared machine hits them alike. The goal: size, params, MACs, arena and
latency all fall with sparsity for `removed`; only they stay put for `zeroed`.

    python benchmarks/channel_removal.py [--rounds 5] [--iterations 50]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from harness.models.inspect import inspect_bytes
from harness.models.prune_tflite import prune_bytes
from harness.models.tflite_file import read_model

ROOT = Path(__file__).resolve().parents[1]
MODELS = [ROOT.parent / "shared" / "models" / "person_detect.tflite",
          ROOT / "harness" / "models" / "data" / "digits" / "digits_dense.tflite"]
SPARSITIES = (0.25, 0.5)


def variants(path: Path) -> dict[str, bytes]:
    mf = read_model(path)
    out = {"original": mf.data}
    for s in SPARSITIES:
        for structural in ("removed", "zeroed"):
            out[f"channel {s:.0%} {structural}"] = prune_bytes(mf, method="channel", sparsity=s,
                                                               structural=structural).data
    return out


def tflm_interpreter(data: bytes) -> Any:
    from tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(data, arena_size=1 << 22)
    d = interp.get_input_details(0)
    interp.set_input(np.zeros(d["shape"], d["dtype"]), 0)
    return interp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=50)
    args = parser.parse_args()
    for path in MODELS:
        models = variants(path)
        interps = {name: tflm_interpreter(data) for name, data in models.items()}
        samples: dict[str, list[int]] = {name: [] for name in models}
        for _ in range(args.rounds):
            for name, interp in interps.items():
                interp.invoke()  # warm-up
                for _ in range(args.iterations):
                    t0 = time.perf_counter_ns()
                    interp.invoke()
                    samples[name].append(time.perf_counter_ns() - t0)
        print(f"\n{path.name}: TFLM latency over n = {args.rounds * args.iterations} invokes per variant "
              "(host, measured); arena = smallest working TFLM arena (64-bit host)")
        print(f"{'variant':<22}{'size B':>9}{'params':>9}{'MACs':>10}{'arena B':>9}{'p50 µs':>9}{'p5–p95 µs':>16}")
        for name, data in models.items():
            r = inspect_bytes(data, path, arena=True, runtimes=False)
            p5, p50, p95 = np.percentile(np.array(samples[name]) / 1e3, [5, 50, 95])
            print(f"{name:<22}{r.size_bytes:>9}{r.params:>9}{r.macs:>10}{r.arena.minimum_bytes:>9}"
                  f"{p50:>9.1f}{f'{p5:.1f}–{p95:.1f}':>16}")


if __name__ == "__main__":
    main()

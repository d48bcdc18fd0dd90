"""The bundled family, one row per variant: both sparsity figures (harness.sparsity), raw and gzip size,
MACs, TFLM arena, host accuracy (from the manifest) and host latency measured now with the `local` driver through the
real sweep (n = repeats × iterations timed inferences pooled; p5–p95 shown).

    python benchmarks/family_table.py [--repeats 3] [--iterations 500] [--kernels builtin]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from harness import results
from harness.config import parse_config
from harness.models.zoo import EXAMPLE_MANIFEST
from harness.sweep import run_sweep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=500)
    parser.add_argument("--kernels", default="default", choices=["default", "builtin", "reference"])
    args = parser.parse_args()
    manifest = {v["name"]: v for v in json.loads(EXAMPLE_MANIFEST.read_text())["variants"]}
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        doc = {
            "store": {"url": url},
            "devices": [{"name": "host", "kind": "local", "kernels": args.kernels}],
            "sweep": {"repeats": args.repeats, "iterations": args.iterations, "accuracy_samples": 0},
        }
        outcome = run_sweep(parse_config(doc, "benchmark", Path(tmp)))
        summary = results.summarize(results.load(outcome.run_id, url)).set_index("variant_name")
    head = (f"{'variant':<18} {'zero weights':>12} {'removed or zero':>15} {'raw B':>7} {'gzip B':>7} {'MACs':>7} "
            f"{'arena B':>8} {'host acc':>8} {'p50 µs':>7} {'p5–p95 µs':>12} {'n':>5}")
    print(head)
    for name, v in manifest.items():
        s = summary.loc[name]
        print(f"{name:<18} {s.zero_weights:12.1%} {s.removed_or_zero:15.1%} {v['size_bytes']:7d} "
              f"{v['gzip_bytes']:7d} {v['macs']:7d} {v['arena_bytes']:8d} {v['accuracy']:8.4f} {s.p50_us:7.2f} "
              f"{s.p5_us:5.2f}–{s.p95_us:<6.2f} {s.n:5d}")
    print(f"local driver, LiteRT kernels={args.kernels}, threads=1; accuracy from the manifest "
          f"(LiteRT reference kernels, 360 test samples)")


if __name__ == "__main__":
    main()

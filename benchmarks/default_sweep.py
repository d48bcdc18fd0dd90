"""Wall time of the README's default `bench sweep` (installation excluded), in a fresh directory
each time. Goal: <= 60 s on a 2-core machine.

    python benchmarks/default_sweep.py [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    walls = []
    for i in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "harness", "sweep"], cwd=tmp, capture_output=True, text=True)
            walls.append(time.perf_counter() - t0)
            if done.returncode != 0:
                sys.exit(f"bench sweep failed ({done.returncode}):\n{done.stderr}")
            summary = done.stdout.strip().splitlines()[-2:]
        print(f"run {i + 1}: {walls[-1]:.1f} s   {' '.join(s.strip() for s in summary)}")
    spread = f"{min(walls):.1f}–{max(walls):.1f}"
    print(f"default sweep wall time: median {statistics.median(walls):.1f} s, range {spread} s, n={len(walls)}")


if __name__ == "__main__":
    main()

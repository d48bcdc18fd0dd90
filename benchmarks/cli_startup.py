"""How long `bench --version` and `bench --help` take: the goal is <= 0.3 s each on a quiet machine.

    python benchmarks/cli_startup.py [--runs 10]

Runs each command in a fresh interpreter `--runs` times and prints the median and range of wall time
and of CPU time (user + sys of the child; CPU time is what a busy machine inflates least), with the load
average before and after, so a figure from a busy machine is recognisable as one. With
PYTHONDONTWRITEBYTECODE set, an editable install's own modules (harness, devices, benchcore) are compiled
from source on every start; the script says so, since users' installs cache their bytecode.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

GOAL_S = 0.3


def measure(argv: list[str], runs: int) -> tuple[list[float], list[float]]:
    walls, cpus = [], []
    for _ in range(runs):
        before = os.times()
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        walls.append(time.perf_counter() - start)
        after = os.times()
        cpus.append((after.children_user - before.children_user) + (after.children_system - before.children_system))
    return walls, cpus


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    bench = shutil.which("bench", path=str(Path(sys.executable).parent)) or "bench"
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        print("note: PYTHONDONTWRITEBYTECODE is set: the project's own modules are compiled on every start")
    print(f"load average before: {_load()}")
    worst = 0.0
    for flag in ("--version", "--help"):
        walls, cpus = measure([bench, flag], args.runs)
        med = statistics.median(walls)
        worst = max(worst, med)
        print(f"bench {flag}: wall median {med:.3f} s (min {min(walls):.3f}, max {max(walls):.3f}); "
              f"cpu median {statistics.median(cpus):.3f} s; n = {args.runs}; goal <= {GOAL_S} s")
    print(f"load average after: {_load()} ({os.cpu_count()} CPUs)")
    return 0 if worst <= GOAL_S else 1


if __name__ == "__main__":
    sys.exit(main())

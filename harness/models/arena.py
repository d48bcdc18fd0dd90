"""The TFLite Micro tensor arena a model needs, found by probing the real runtime.

The probe and the search are `benchcore.arena`'s (the simulated MCU uses the same ones, with its
own options; that module says why). This is `bench models inspect`'s side of it: an exponential
bracket from 1 KiB upwards, then a binary search down to `granularity` bytes (16, TFLM's buffer
alignment, by default); a probe allocates *and* invokes once with zero inputs.

TFLM segfaults on a very small arena, so no probe may run in bench's own process. A helper
subprocess (`python -m benchcore.arena`: a fresh interpreter, single-threaded) loads the runtime
once and forks one child per probe; a crash or a failed allocation in the child means "too small".
Forking keeps the cost of a search to one interpreter start (~0.2 s) plus a few milliseconds per probe.
Figures are for the host build of TFLM (64-bit pointers); a 32-bit MCU needs somewhat less.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import benchcore
from harness.errors import ModelError

log = logging.getLogger(__name__)

DEFAULT_GRANULARITY = 16
START_BYTES = 1024
LIMIT_BYTES = 256 * 1024 * 1024
TIMEOUT_S = 300.0


@dataclass(frozen=True)
class ArenaReport:
    """Result of an arena search; `minimum_bytes` is the smallest arena that allocated and ran."""

    minimum_bytes: int
    granularity_bytes: int
    tflm_total_bytes: int | None  # "Arena allocation total" printed by TFLM at the minimum arena
    probes: int
    crashes: int  # probes whose child died on a signal (TFLM segfault on a tiny arena)
    seconds: float
    method: str = "exponential bracket from 1 KiB, then binary search; each probe in a forked subprocess"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _import_path() -> str:
    """PYTHONPATH for the helper, so it runs the very benchcore this process imported, from any cwd."""
    here = str(Path(benchcore.__file__).resolve().parents[1])
    rest = os.environ.get("PYTHONPATH")
    return os.pathsep.join([here, rest]) if rest else here


def probe_arena(
    model: bytes,
    *,
    name: str = "model",
    n_inputs: int = 1,
    granularity: int = DEFAULT_GRANULARITY,
    limit: int = LIMIT_BYTES,
    timeout: float = TIMEOUT_S,
) -> ArenaReport:
    """Find the smallest TFLM arena that allocates and runs `model`; `name` only labels errors."""
    if granularity < 1 or granularity & (granularity - 1):
        raise ValueError("granularity must be a power of two")
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": _import_path()}
    args = [sys.executable, "-m", "benchcore.arena", str(granularity), str(START_BYTES), str(limit), str(n_inputs)]
    started = time.perf_counter()
    try:
        proc = subprocess.run(args, input=model, capture_output=True, timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired:
        raise ModelError(
            f"{name}: the TFLM arena search did not finish in {timeout:.0f} s.",
            hint="Inspect with --no-arena, or report the model: a probe may hang inside TFLM.",
        ) from None
    seconds = time.perf_counter() - started
    if proc.returncode != 0 or not proc.stdout.strip():
        raise ModelError(
            f"{name}: the TFLM arena probe helper failed (exit {proc.returncode}): "
            f"{proc.stderr.decode(errors='replace')[-600:]}",
            hint="Check that the pinned tflite-micro package is installed in this environment.",
        )
    result = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    if "error" in result:
        raise ModelError(
            f"{name} does not run in TFLite Micro (tried arenas up to {result['size']} bytes): "
            f"{result['error'].strip() or 'no message'}",
            hint="TFLM may lack a kernel for one of its operators; `bench models inspect --no-arena` "
            "still reports everything else.",
        )
    report = ArenaReport(
        minimum_bytes=result["minimum"],
        granularity_bytes=granularity,
        tflm_total_bytes=result["total"],
        probes=result["probes"],
        crashes=result["crashes"],
        seconds=round(seconds, 3),
    )
    log.debug("arena search for %s: %s", name, report)
    return report

"""The TFLite Micro tensor arena a model needs, found by probing the real runtime.

TFLM has no API that returns the smallest arena that works, and its own recorded total
(`print_allocations`) can be larger or smaller than that minimum. So bench searches for it: an
exponential bracket from 1 KiB upwards, then a binary search down to `granularity` bytes (16, TFLM's
buffer alignment, by default). A probe allocates *and* invokes once with zero inputs.

TFLM segfaults on a very small arena, so no probe may run in bench's own process. A helper
subprocess (a fresh interpreter, single-threaded) loads the runtime once and forks one child per
probe; a crash or a failed allocation in the child means "too small". Forking keeps the cost of a
search to one interpreter start (~0.2 s) plus a few milliseconds per probe.
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
from typing import Any

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


# Runs in the helper subprocess. It imports nothing from bench so that it works from any cwd, and
# reads the model from stdin so no temporary file is needed.
_PROBE_SERVER = r"""
import ctypes, json, os, re, resource, sys, tempfile
import numpy as np
from tflite_micro import runtime

model = sys.stdin.buffer.read()
granularity, start, limit, n_inputs = (int(a) for a in sys.argv[1:5])
errlog = tempfile.NamedTemporaryFile(prefix="bench-arena-", suffix=".log", delete=False).name

libc = ctypes.CDLL(None)

def leave(code):
    # os._exit skips C stdio flushing, and TFLM prints through C stdio.
    sys.stdout.flush()
    sys.stderr.flush()
    libc.fflush(None)
    os._exit(code)

def child(size, report):
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    fd = os.open(errlog, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 2)
    os.dup2(fd, 1)
    try:
        interp = runtime.Interpreter.from_bytes(model, arena_size=size)
        for i in range(n_inputs):
            d = interp.get_input_details(i)
            interp.set_input(np.zeros(d["shape"], d["dtype"]), i)
        interp.invoke()
        if report:
            interp.print_allocations()
    except RuntimeError as exc:
        print(f"RuntimeError: {exc}", file=sys.stderr)
        leave(1)
    except BaseException as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        leave(3)
    leave(0)

stats = {"probes": 0, "crashes": 0}

def probe(size, report=False):
    stats["probes"] += 1
    pid = os.fork()
    if pid == 0:
        child(size, report)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        stats["crashes"] += 1
        return "crash"
    return {0: "ok", 1: "small"}.get(os.WEXITSTATUS(status), "error")

def log_text():
    with open(errlog, errors="replace") as f:
        return f.read()

def finish(result):
    result.update(stats)
    os.unlink(errlog)
    print(json.dumps(result))
    sys.exit(0)

lo, hi = 0, start
while True:
    outcome = probe(hi)
    if outcome == "ok":
        break
    if outcome == "error" or hi >= limit:
        finish({"error": log_text()[-600:], "size": hi})
    lo, hi = hi, min(hi * 2, limit)
while hi - lo > granularity:
    mid = (lo + hi) // 2 // granularity * granularity
    if mid <= lo:
        break
    if probe(mid) == "ok":
        hi = mid
    else:
        lo = mid
total = None
if probe(hi, report=True) == "ok":
    m = re.search(r"Arena allocation total (\d+) bytes", log_text())
    total = int(m.group(1)) if m else None
finish({"minimum": hi, "total": total})
"""


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
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-c", _PROBE_SERVER, str(granularity), str(START_BYTES), str(limit), str(n_inputs)]
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

"""The TFLite Micro tensor arena a model needs, found by probing the real runtime: one probe for every side.

TFLM has no API that returns the smallest arena that works, and its own recorded total
(`print_allocations`, "Arena allocation total N bytes") can be larger or smaller than that minimum.
So the arena is searched for: `find_minimum` brackets upwards from a start size (doubling) and then
binary-searches down to `granularity` bytes, asking a probe at each size.

TFLM segfaults on a very small arena, so a probe never builds an interpreter in the caller's
process: `ForkProbe` forks one child per size (copy-on-write, so a probe costs milliseconds, not an
interpreter start) and reads the child's fate from its exit status; a child killed by a signal is
counted as a crash and means "too small".

Two callers, two sets of options, on purpose:

- `bench models inspect` (harness.models.arena) reports what a model needs to *run*: each probe
  allocates and invokes once with zero inputs (`invoke=True`), from 1 KiB up to 16-byte granularity
  (TFLM's buffer alignment; finer would cost probes and say nothing). It runs the search in a helper
  subprocess (`python -m benchcore.arena`) so a fork never copies bench's own threads.
- The simulated MCU (devices.sim_firmware) answers ALLOCATE the way firmware does: the interpreter is
  built and its tensors allocated, nothing is invoked (`invoke=False`), and E_ARENA_TOO_SMALL names
  the bytes required to the byte (`granularity=1`) between the board's capacity and a ceiling. It is
  already its own process, so it probes in-process.

Figures are for the host build of TFLM (64-bit pointers); a 32-bit MCU needs somewhat less.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    """What one probe of one arena size found."""

    OK = "ok"  # the interpreter was built (and, if asked, ran)
    SMALL = "small"  # TFLM refused the size (RuntimeError: the arena is too small)
    CRASH = "crash"  # the child died on a signal: TFLM segfaults on a tiny arena
    ERROR = "error"  # anything else went wrong: not a question of size


#: A probe asks: does an arena of this many bytes work?
Probe = Callable[[int], Outcome]

_TOTAL = re.compile(r"Arena allocation total (\d+) bytes")
_EXIT_OK, _EXIT_SMALL, _EXIT_ERROR = 0, 1, 3


def parse_allocation_total(text: str) -> int | None:
    """The bytes in TFLM's `print_allocations` line "Arena allocation total N bytes", if present."""
    match = _TOTAL.search(text)
    return int(match.group(1)) if match else None


def allocation_total(interpreter: Any) -> int | None:
    """TFLM's recorded arena total for a built interpreter in this process.

    TFLM prints it from C++ to fd 2 only, so that fd is captured around `print_allocations()`.
    """
    with tempfile.TemporaryFile() as f:
        saved = os.dup(2)
        try:
            os.dup2(f.fileno(), 2)
            interpreter.print_allocations()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        f.seek(0)
        return parse_allocation_total(f.read().decode("utf-8", "replace"))


def _leave(code: int) -> None:
    # os._exit skips C stdio flushing, and TFLM prints through C stdio.
    sys.stdout.flush()
    sys.stderr.flush()
    ctypes.CDLL(None).fflush(None)
    os._exit(code)


def _note(exc: BaseException) -> None:
    # Straight to fd 2 (the log): sys.stderr may be someone's capture object, not the descriptor.
    os.write(2, f"{type(exc).__name__}: {exc}\n".encode(errors="replace"))


def fork_outcome(attempt: Callable[[], None], log_path: str) -> Outcome:
    """Run `attempt` in a forked child with stdout/stderr going to `log_path` (truncated first).

    Returning means OK, a RuntimeError (how TFLM refuses an arena) SMALL, a signal CRASH, any other
    exception ERROR. The child never returns into the caller's code and writes no core file.
    """
    pid = os.fork()
    if pid == 0:  # child: leave by os._exit only, so no Python cleanup runs twice
        code = _EXIT_ERROR
        try:
            import faulthandler
            import resource

            # A crash is an expected answer here: no core file, no traceback dump on the parent's stderr.
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            faulthandler.disable()
            fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(fd, 2)
            os.dup2(fd, 1)
            attempt()
            code = _EXIT_OK
        except RuntimeError as exc:
            _note(exc)
            code = _EXIT_SMALL
        except BaseException as exc:
            _note(exc)
        finally:
            _leave(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return Outcome.CRASH
    return {_EXIT_OK: Outcome.OK, _EXIT_SMALL: Outcome.SMALL}.get(os.WEXITSTATUS(status), Outcome.ERROR)


class ForkProbe:
    """Probes arena sizes for one model, each in a forked child; counts probes and crashes.

    `invoke=True` also sets `n_inputs` zero inputs and invokes once (what running needs);
    `invoke=False` only builds the interpreter and allocates its tensors (what ALLOCATE does).
    Use as a context manager: it owns a temporary file holding the last child's output.
    """

    def __init__(self, model: bytes, *, invoke: bool, n_inputs: int = 0) -> None:
        from tflite_micro import runtime  # imported lazily: only a probing process needs TFLM

        self._runtime = runtime
        self.model = model
        self.invoke = invoke
        self.n_inputs = n_inputs
        self.probes = 0
        self.crashes = 0
        fd, self.log_path = tempfile.mkstemp(prefix="bench-arena-", suffix=".log")
        os.close(fd)

    def __enter__(self) -> ForkProbe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if os.path.exists(self.log_path):
            os.unlink(self.log_path)

    def __call__(self, size: int, *, report: bool = False) -> Outcome:
        """Try an arena of `size` bytes; `report=True` has TFLM print its allocations to the log."""
        self.probes += 1
        outcome = fork_outcome(lambda: self._attempt(size, report), self.log_path)
        if outcome is Outcome.CRASH:
            self.crashes += 1
        return outcome

    def _attempt(self, size: int, report: bool) -> None:
        import numpy as np

        interp = self._runtime.Interpreter.from_bytes(self.model, arena_size=size)
        if self.invoke:
            for i in range(self.n_inputs):
                d = interp.get_input_details(i)
                interp.set_input(np.zeros(d["shape"], d["dtype"]), i)
            interp.invoke()
        if report:
            interp.print_allocations()

    def log_text(self) -> str:
        """What the last child printed (TFLM's messages, or the exception that ended it)."""
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def total_at(self, size: int) -> int | None:
        """TFLM's "Arena allocation total" with an arena of `size` bytes (one more probe)."""
        return parse_allocation_total(self.log_text()) if self(size, report=True) is Outcome.OK else None


@dataclass(frozen=True)
class Search:
    """Result of `find_minimum`: `minimum` is None when even the largest size tried failed."""

    minimum: int | None
    probes: int
    last_size: int  # the size probed last before the search ended (the failing one when minimum is None)
    last_outcome: Outcome


def find_minimum(probe: Probe, *, lo: int, hi: int, granularity: int = 1, start: int | None = None) -> Search:
    """The smallest size in (lo, hi] that the probe accepts, assuming bigger never hurts.

    From `start` (default: `hi` itself) the size doubles, capped at `hi`, until one works; SMALL and
    CRASH mean "larger", and an ERROR (not a question of size) or a failure at `hi` ends the search
    with no minimum. Then a binary search narrows the bracket to `granularity` bytes (a power of
    two), probing multiples of it; the minimum is the smallest size that worked.
    """
    if granularity < 1 or granularity & (granularity - 1):
        raise ValueError("granularity must be a power of two")
    probes = 0
    size = min(start, hi) if start is not None else hi
    while True:
        outcome = probe(size)
        probes += 1
        if outcome is Outcome.OK:
            break
        if outcome is Outcome.ERROR or size >= hi:
            return Search(None, probes, size, outcome)
        lo, size = size, min(size * 2, hi)
    while size - lo > granularity:
        mid = (lo + size) // 2 // granularity * granularity
        if mid <= lo:
            break
        outcome = probe(mid)
        probes += 1
        if outcome is Outcome.OK:
            size = mid
        else:
            lo = mid
    return Search(size, probes, size, Outcome.OK)


def search_report(model: bytes, *, granularity: int, start: int, limit: int, n_inputs: int) -> dict[str, Any]:
    """The run-time arena search `bench models inspect` reports, as the helper prints it (JSON).

    {"minimum", "total", "probes", "crashes"} on success; {"error", "size", "probes", "crashes"} when
    the model does not run at any size up to `limit` (error: the end of the last child's output).
    """
    with ForkProbe(model, invoke=True, n_inputs=n_inputs) as probe:
        found = find_minimum(probe, lo=0, hi=limit, granularity=granularity, start=start)
        if found.minimum is None:
            result: dict[str, Any] = {"error": probe.log_text()[-600:], "size": found.last_size}
        else:
            result = {"minimum": found.minimum, "total": probe.total_at(found.minimum)}
        result.update(probes=probe.probes, crashes=probe.crashes)
        return result


def main(argv: list[str] | None = None) -> int:
    """`python -m benchcore.arena GRANULARITY START LIMIT N_INPUTS` with the model on stdin.

    Run by harness.models.arena in a fresh, single-threaded interpreter; the last stdout line is JSON.
    """
    granularity, start, limit, n_inputs = (int(a) for a in (sys.argv[1:] if argv is None else argv))
    model = sys.stdin.buffer.read()
    print(json.dumps(search_report(model, granularity=granularity, start=start, limit=limit, n_inputs=n_inputs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

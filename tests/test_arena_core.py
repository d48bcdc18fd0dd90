"""benchcore.arena: the one arena search (inspect's and the sim's) and its fork-per-probe check."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from benchcore.arena import ForkProbe, Outcome, find_minimum, fork_outcome, parse_allocation_total

DIGITS = Path(__file__).resolve().parents[1] / "harness" / "models" / "data" / "digits" / "digits_dense.tflite"


class Threshold:
    """A fake probe: sizes from `needed` up work; below it the answer is `below`. Records the sizes."""

    def __init__(self, needed: int, below: Outcome = Outcome.SMALL) -> None:
        self.needed = needed
        self.below = below
        self.sizes: list[int] = []

    def __call__(self, size: int) -> Outcome:
        self.sizes.append(size)
        return Outcome.OK if size >= self.needed else self.below


def test_to_the_byte_from_the_upper_bound() -> None:
    # The sim's way: probe the ceiling, then halve (0, 1024] to one byte: 1 + 10 probes.
    probe = Threshold(1000)
    found = find_minimum(probe, lo=0, hi=1024)
    assert (found.minimum, found.probes, len(probe.sizes)) == (1000, 11, 11)
    assert probe.sizes[0] == 1024 and found.last_outcome is Outcome.OK


def test_bracket_from_a_start_then_granularity() -> None:
    # Inspect's way: 1024 fails, 2048 works, then (1024, 2048] narrows to 16 bytes in 6 probes.
    probe = Threshold(1937)
    found = find_minimum(probe, lo=0, hi=256 * 1024 * 1024, granularity=16, start=1024)
    assert found.minimum == 1952 and found.probes == 8
    assert probe.sizes[:2] == [1024, 2048] and all(s % 16 == 0 for s in probe.sizes)


@pytest.mark.parametrize("needed", [1, 2, 17, 4095, 4096, 4097, 65535])
def test_the_minimum_is_exact_wherever_the_threshold_lies(needed: int) -> None:
    assert find_minimum(Threshold(needed), lo=0, hi=65536).minimum == needed
    assert find_minimum(Threshold(needed), lo=0, hi=65536, granularity=8, start=64).minimum == -(-needed // 8) * 8


def test_a_crash_counts_as_too_small() -> None:
    crashing, refusing = Threshold(3000, below=Outcome.CRASH), Threshold(3000)
    a = find_minimum(crashing, lo=0, hi=1 << 20, granularity=16, start=1024)
    b = find_minimum(refusing, lo=0, hi=1 << 20, granularity=16, start=1024)
    assert a.minimum == b.minimum == 3008 and crashing.sizes == refusing.sizes


def test_an_error_or_a_failing_ceiling_gives_no_minimum() -> None:
    broken = find_minimum(lambda size: Outcome.ERROR, lo=0, hi=1 << 20, start=1024)
    assert (broken.minimum, broken.probes, broken.last_size, broken.last_outcome) == (None, 1, 1024, Outcome.ERROR)
    too_big = find_minimum(Threshold(5000), lo=0, hi=4096, start=1024)
    assert (too_big.minimum, too_big.last_size, too_big.probes) == (None, 4096, 3)  # 1024, 2048, 4096


def test_granularity_must_be_a_power_of_two() -> None:
    with pytest.raises(ValueError, match="power of two"):
        find_minimum(Threshold(1), lo=0, hi=64, granularity=12)


def _segfault() -> None:
    os.kill(os.getpid(), signal.SIGSEGV)


def _refuse() -> None:
    raise RuntimeError("Arena size is too small for all buffers")


def _break() -> None:
    raise KeyError("no such input")


def test_fork_outcome_reads_the_childs_fate(tmp_path: Path) -> None:
    log = str(tmp_path / "child.log")
    assert fork_outcome(lambda: os.write(1, b"fine\n"), log) is Outcome.OK  # as TFLM's C++ prints
    assert Path(log).read_text() == "fine\n"
    assert fork_outcome(_refuse, log) is Outcome.SMALL
    assert "RuntimeError: Arena size is too small" in Path(log).read_text()
    assert fork_outcome(_break, log) is Outcome.ERROR
    assert "KeyError" in Path(log).read_text()
    assert fork_outcome(_segfault, log) is Outcome.CRASH  # and this process lives on


def test_allocation_total_is_read_from_tflms_line() -> None:
    text = "[RecordingMicroAllocator] Arena allocation total 7584 bytes\n... head 1 bytes\n"
    assert parse_allocation_total(text) == 7584 and parse_allocation_total("nothing printed") is None


def test_fork_probe_on_real_tflm_counts_crashes_and_finds_the_allocation_minimum() -> None:
    pytest.importorskip("tflite_micro")
    with ForkProbe(DIGITS.read_bytes(), invoke=False) as probe:
        assert probe(16) is Outcome.CRASH and probe.crashes == 1  # TFLM segfaults on a 16-byte arena
        found = find_minimum(probe, lo=1024, hi=64 * 1024)  # above 512 B TFLM refuses cleanly
        assert found.minimum is not None and probe.crashes == 1
        assert probe(found.minimum) is Outcome.OK and probe(found.minimum - 1) is Outcome.SMALL
        assert probe.total_at(found.minimum) == found.minimum  # this model's total is its minimum
        assert probe.probes == 1 + found.probes + 3
        log_path = probe.log_path
    assert not os.path.exists(log_path)

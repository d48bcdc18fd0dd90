"""The metric registry answers what compare and the store used to restate: columns, fallbacks, noise floors."""

from __future__ import annotations

from benchcore import metrics
from benchcore.metrics import METRICS


def test_ram_reads_the_arena_and_falls_back_to_peak_ram_growth() -> None:
    ram = METRICS["ram"]
    assert ram.value_column({"arena_bytes": 2048, "ram_bytes": 9}) == "arena_bytes"
    assert ram.value_column({"arena_bytes": float("nan"), "ram_bytes": 9}) == "ram_bytes"
    assert ram.value({"arena_bytes": None, "ram_bytes": 9}) == 9
    assert ram.value_column({}) is None and ram.value({}) is None


def test_only_host_measured_figures_carry_a_noise_floor() -> None:
    assert metrics.noise_key("ram_bytes") == "ram_noise_bytes"
    assert metrics.noise_key("arena_bytes") is None  # the runtime's own figure is exact
    assert metrics.noise_keys() == ["ram_noise_bytes"]
    assert metrics.may_be_noisy(METRICS["ram"]) and not metrics.may_be_noisy(METRICS["flash"])


def test_every_stored_column_is_named_once() -> None:
    columns = [m.column for m in metrics.stored()]
    assert len(columns) == len(set(columns))

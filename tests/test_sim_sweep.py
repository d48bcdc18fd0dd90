"""The issue's end-to-end promise for the simulated MCU: the whole serial path under faults, through
the real sweep, with no cell silently missing and every sim figure flagged estimated."""

from __future__ import annotations

from pathlib import Path

import pytest

from devices.mcu.messages import HIST_BINS
from harness import results
from harness.config import BenchConfig, EnergyConfig, StoreConfig, SweepConfig, parse_config, with_devices
from harness.models.variant import load_manifest
from harness.models.zoo import EXAMPLE_MANIFEST
from harness.sweep import run_sweep


def sweep_on_sim(tmp_path: Path, faults: dict, methods: tuple[str, ...] = (), accuracy_samples: int = 20,
                 **settings: object) -> tuple:
    doc = {
        "store": {"url": f"sqlite:///{tmp_path / 'bench.db'}"},
        "devices": [{"name": "m4", "kind": "sim", "faults": faults, **settings}],
        "sweep": {"repeats": 1, "iterations": 20, "warmup": 2, "accuracy_samples": accuracy_samples,
                  "methods": list(methods)},
    }
    config = parse_config(doc, "test", tmp_path)
    outcome = run_sweep(config)
    return outcome, results.load(outcome.run_id, config.store.url)


def test_the_bundled_family_on_sim_is_stored_and_flagged_estimated(tmp_path: Path) -> None:
    outcome, cells = sweep_on_sim(tmp_path, {})
    family = {v.name for v in load_manifest(EXAMPLE_MANIFEST)}
    assert outcome.status == "complete" and outcome.cells_ok == len(family)
    assert set(cells["variant_name"]) == family
    assert cells["estimated"].all() and set(cells["latency_source"]) == {"estimated"}
    assert (cells["arena_bytes"] > 0).all() and (cells["output_agreement"] == 1.0).all()


def test_the_firmware_histogram_arrives_typed_and_is_stored_with_the_cell(tmp_path: Path) -> None:
    outcome, cells = sweep_on_sim(tmp_path, {}, accuracy_samples=0)
    assert outcome.cells_ok == len(cells) > 0
    for _, cell in cells.iterrows():
        hist = cell["details"]["histogram"]
        assert hist["width"] > 0 and len(hist["counts"]) == HIST_BINS
        assert sum(hist["counts"]) == len(cell["latency_ns"]) == 20  # every timed inference binned once


def test_with_no_config_the_sim_brings_its_meter_and_every_variant_gets_estimated_energy(tmp_path: Path) -> None:
    config = with_devices(BenchConfig(base_dir=tmp_path), ["sim"])
    config = config.model_copy(update={
        "store": StoreConfig(url=f"sqlite:///{tmp_path / 'bench.db'}"),
        "sweep": SweepConfig(repeats=1, iterations=10, accuracy_samples=0),
        "energy": EnergyConfig(windows=2, min_window_s=0.05),
    })
    outcome = run_sweep(config)
    cells = results.load(outcome.run_id, config.store.url).set_index("variant_name")
    assert outcome.cells_ok == len(cells) == len(load_manifest(EXAMPLE_MANIFEST))
    assert (cells["energy_uj"] > 0).all() and cells["estimated"].all()
    assert all(d["energy"]["estimated"] and d["energy"]["method"] == "marker" for d in cells["details"])
    # structured pruning cuts MACs, so the estimated energy drops; unstructured leaves it alone
    assert cells.loc["channel-50w", "energy_uj"] < 0.5 * cells.loc["dense", "energy_uj"]
    assert abs(cells.loc["magnitude-90", "energy_uj"] / cells.loc["dense", "energy_uj"] - 1) < 0.01


def test_a_sweep_through_corruption_and_a_reset_leaves_no_cell_missing(tmp_path: Path) -> None:
    # 1 % of bytes corrupted: a 200-byte answer arrives intact ~13 % of the time, so a noisy link
    # needs a larger retransmission budget than the default 4 (still bounded).
    # The dense model and its two channel-pruned variants keep the slow, noisy sweep short.
    outcome, cells = sweep_on_sim(tmp_path, {"corrupt_rate": 0.01, "reset_during_invoke": 1}, ("channel",),
                                  accuracy_samples=2, retries=40, timeout_s=0.2)
    planned = 3
    assert outcome.status == "complete" and len(cells) == planned == outcome.cells_total
    ok, failed = cells[cells["status"] == "ok"], cells[cells["status"] == "failed"]
    assert len(ok) + len(failed) == planned
    assert failed["error"].map(bool).all()  # a failed cell says why
    assert len(ok) >= planned - 1  # the single reset is recovered by re-deployment, not lost


def test_the_per_op_profile_lands_in_its_table_and_shows_how_pruning_moves_the_operators(tmp_path: Path) -> None:
    from harness.bundle import load_bundle
    from harness.report.data import build_report_data
    from harness.report.tables import op_tables
    from tests.conftest import run_bench

    outcome, cells = sweep_on_sim(tmp_path, {}, ("channel",), accuracy_samples=0)
    url = f"sqlite:///{tmp_path / 'bench.db'}"
    bundle = load_bundle([outcome.run_id], url)
    assert set(bundle.ops["cell_key"]) == set(cells["cell_key"])  # every cell profiled, none in details
    assert not any("op_profile" in d for d in cells["details"])
    for _, one in bundle.ops.groupby("cell_key"):
        assert one["share"].sum() == pytest.approx(1.0) and (one["ticks"] > 0).all()
        assert list(one["op_index"]) == sorted(one["op_index"])
    ops = results.op_summary(bundle.cells, bundle.ops).set_index(["variant_name", "op"])
    # half the channels: the convolution's time per inference drops, which the table shows side by side
    assert ops.loc[("channel-50w", "CONV_2D"), "time_us"] < 0.7 * ops.loc[("dense", "CONV_2D"), "time_us"]
    table = op_tables(build_report_data(bundle))["m4"]
    assert table.columns[:2] == ["operator", "dense"] and "channel-50w" in table.columns
    assert table.rows[0][0] == "CONV_2D"
    shown = run_bench("show", outcome.run_id, "--ops", "--store", url, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "CONV_2D" in shown.stdout and "channel-50w" in shown.stdout

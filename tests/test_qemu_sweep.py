"""`bench sweep` of the bundled digits family on the `qemu` device, once per firmware backend: the
default (TFLM + CMSIS-NN when its tree is here) and `tflm` (TFLM's reference kernels). Every variant
stores its emulated latency (the same in a second run), its arena bytes, backend and TFLM commit,
outputs identical to the TFLM runtime's on every test input for `tflm` (within 2 LSB for CMSIS-NN),
and the report shows the backends side by side with the per-operator table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from devices import firmware, qemu
from harness.models.zoo import EXAMPLE_DIR
from harness.report import make_report
from tests.conftest import run_bench, write_config

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(qemu.unavailable_reason() is not None, reason=f"qemu: {qemu.unavailable_reason()}")]

CONFIG = """
[store]
url = "sqlite:///bench.db"

[[devices]]
name = "qemu"
kind = "qemu"

[[devices]]
name = "qemu-tflm"
kind = "qemu"
backend = "tflm"

[sweep]
models = ["{manifest}"]
repeats = 1
accuracy_samples = {samples}
"""


def sweep(workdir: Path, samples: str) -> dict[str, dict]:
    workdir.mkdir()
    write_config(workdir / "bench.toml", CONFIG.format(manifest=EXAMPLE_DIR / "manifest.json", samples=samples))
    r = run_bench("sweep", "-c", "bench.toml", cwd=workdir, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    engine = sa.create_engine(f"sqlite:///{workdir / 'bench.db'}")
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT device_name, variant_name, status, latency_source, latency_ns, "
                                    "arena_bytes, output_agreement, output_max_lsb, accuracy_n, details "
                                    "FROM measurements")).mappings()
        out = {f"{row['device_name']}/{row['variant_name']}": dict(row) for row in rows}
        ops = conn.execute(sa.text("SELECT m.device_name, m.variant_name, count(*) AS n FROM op_profiles p JOIN "
                                   "measurements m ON m.run_id = p.run_id AND m.cell_key = p.cell_key "
                                   "GROUP BY m.device_name, m.variant_name")).mappings()
        for row in ops:
            out[f"{row['device_name']}/{row['variant_name']}"]["op_count"] = row["n"]
    engine.dispose()
    return out


def test_family_sweep_on_qemu(tmp_path: Path) -> None:
    first = sweep(tmp_path / "first", '"all"')
    assert len(first) == 18
    default = firmware.default_backend()
    for key, row in first.items():
        details = json.loads(row["details"]) if isinstance(row["details"], str) else row["details"]
        backend = "tflm" if key.startswith("qemu-tflm/") else default
        assert row["status"] == "ok", key
        assert row["latency_source"] == "emulated"
        assert row["arena_bytes"] and row["arena_bytes"] > 0
        assert row["accuracy_n"] == 360
        assert details["backend"] == backend and row.get("op_count"), key  # a per-op profile in its table
        assert details["arena_min_bytes"] > 0
        if backend == "tflm-cmsis-nn":
            assert row["output_max_lsb"] <= 2, key  # CMSIS-NN rounds differently in places: shown, bounded
        else:
            assert details["tflm_commit"] == (firmware.tflm_commit() if backend == "tflm" else None)
            assert row["output_agreement"] == 1.0 and row["output_max_lsb"] == 0, key  # bit-identical to TFLM
    summary = next((tmp_path / "first" / "reports").glob("*/summary.md")).read_text()
    assert "### Firmware backends side by side" in summary
    assert "### Where the time goes, operator by operator" in summary
    # Same timing input (the first test sample), so the same instructions: only the run differs.
    second = sweep(tmp_path / "second", "1")
    for key, row in second.items():
        assert row["latency_ns"] == first[key]["latency_ns"], key  # icount time is deterministic
        assert row["arena_bytes"] == first[key]["arena_bytes"]


CAPPED = """
[store]
url = "sqlite:///bench.db"

[[devices]]
name = "qemu"
kind = "qemu"

[sweep]
models = ["{manifest}"]
sparsities = [0.99]  # no variant has it: the dense model alone
repeats = 2
iterations = 7
accuracy_samples = 0
"""


def test_a_capped_n_says_how_many_were_asked_and_why(tmp_path: Path) -> None:
    """qemu runs at most 5 timed inferences per repeat: n = 10 for 2 × 7 asked, and every view says so."""
    write_config(tmp_path / "bench.toml", CAPPED.format(manifest=EXAMPLE_DIR / "manifest.json"))
    r = run_bench("sweep", "-c", "bench.toml", "--no-report", cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    run_id = r.stdout.split("run ")[-1].split()[0]
    shown = run_bench("show", run_id, "-c", "bench.toml", "--json", cwd=tmp_path)
    row = json.loads(shown.stdout)[0]
    assert (row["n"], row["iterations_requested"], row["iterations_cap"]) == (10, 14, 5)
    assert "max_iterations = 5" in row["iterations_cap_reason"]
    table = run_bench("show", run_id, "-c", "bench.toml", cwd=tmp_path).stdout
    assert "10*" in table and "n = 10 of 14 asked" in table
    files = make_report([run_id], "sqlite:///" + str(tmp_path / "bench.db"), tmp_path / "r", ("html", "md"))
    md = files.markdown.read_text()
    assert "| 10 of 14 asked |" in md and "n capped: qemu runs at most max_iterations = 5" in md
    assert "capped | qemu" in md  # and a warning names it

"""`bench sweep` of the bundled digits family on the `qemu` device: every variant stores its emulated
latency (the same in a second run), its arena bytes and outputs identical to the TFLM runtime's on
every test input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from devices import qemu
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
        rows = conn.execute(sa.text("SELECT variant_name, status, latency_source, latency_ns, arena_bytes, "
                                    "output_agreement, output_max_lsb, accuracy_n FROM measurements")).mappings()
        out = {row["variant_name"]: dict(row) for row in rows}
    engine.dispose()
    return out


def test_family_sweep_on_qemu(tmp_path: Path) -> None:
    first = sweep(tmp_path / "first", '"all"')
    assert len(first) == 9
    for name, row in first.items():
        assert row["status"] == "ok", name
        assert row["latency_source"] == "emulated"
        assert row["arena_bytes"] and row["arena_bytes"] > 0
        assert row["accuracy_n"] == 360
        assert row["output_agreement"] == 1.0 and row["output_max_lsb"] == 0, name  # bit-identical to TFLM
    # Same timing input (the first test sample), so the same instructions: only the run differs.
    second = sweep(tmp_path / "second", "1")
    for name, row in second.items():
        assert row["latency_ns"] == first[name]["latency_ns"], name  # icount time is deterministic
        assert row["arena_bytes"] == first[name]["arena_bytes"]


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

"""A model one runtime rejects: the sweep's end and the report say so once, with a count and a hint."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.failures import group_failures
from harness.models.prune_tflite import prune_family
from harness.report.data import load_report_data
from tests.conftest import run_bench, write_config

PERSON = Path(__file__).resolve().parents[2] / "shared" / "models" / "person_detect.tflite"

pytestmark = pytest.mark.skipif(not PERSON.exists(), reason=f"no example model {PERSON}")

LITERT_ERROR = "quantized_dimension must be in range [0, 1)"


def test_person_detect_on_local_fails_once_per_error_not_once_per_cell(tmp_path: Path) -> None:
    prune_family(PERSON, tmp_path / "family", ["channel"], [0.5], arena=False)  # original + one variant
    config = write_config(tmp_path / "bench.toml", f"""
[store]
url = "sqlite:///{tmp_path / 'bench.db'}"

[[devices]]
name = "host"
kind = "local"

[sweep]
models = ["{tmp_path / 'family' / 'manifest.json'}"]
repeats = 3
iterations = 5
warmup = 1
accuracy_samples = 0
""")
    done = run_bench("sweep", "-c", str(config), "--no-report", cwd=tmp_path)
    assert done.returncode == 1, done.stderr  # some cells failed
    out = done.stdout + done.stderr
    assert "host: 6 cells failed with the same error" in out
    # The first failure's log line and the summary: not once per cell.
    assert out.count("LiteRT rejected the model") <= 2 and out.count("with the same error") == 1
    assert "hint: LiteRT does not accept this model" in out and "bench models inspect" in out
    run_id = next(line.split()[1] for line in done.stdout.splitlines() if line.startswith("run ") and "failed" in line)
    warnings = [w for w in load_report_data([run_id], f"sqlite:///{tmp_path / 'bench.db'}").warnings
                if w.kind == "failed"]
    assert len(warnings) == 1 and "6 cells failed with the same error" in warnings[0].message
    assert LITERT_ERROR in warnings[0].message and "TFLite Micro device" in warnings[0].message


def test_different_errors_stay_apart_and_a_single_failure_gets_no_generic_hint() -> None:
    groups = group_failures([
        ("a", "v1", "device 'a', deploy v1: boom"),
        ("a", "v2", "device 'a', deploy v2: boom"),  # the same error: only the variant's name differs
        ("a", "v1", "device 'a', run: timeout after 5 s"),
        ("b", "v1", "device 'b', deploy v1: boom"),
    ])
    assert [(g.device, g.cells, g.variants) for g in groups] == [("a", 2, ("v1", "v2")), ("a", 1, ("v1",)),
                                                                 ("b", 1, ("v1",))]
    assert "--retry-failed" in groups[0].describe() and groups[1].hint is None

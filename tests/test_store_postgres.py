"""The same store code on a real PostgreSQL server, started by the test in a temporary directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import results
from harness.config import parse_config
from harness.models.zoo import EXAMPLE_DIR
from harness.store import SCHEMA_VERSION, Store
from harness.sweep import run_sweep
from tests.postgres_server import missing_reason, postgres_server


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    if missing_reason():
        pytest.fail(missing_reason())
    pytest.importorskip("psycopg", reason="psycopg missing: scripts/install --test installs it")
    with postgres_server() as url:
        yield url


def test_a_sweep_stores_and_resumes_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    doc = {
        "store": {"url": postgres_url},
        "devices": [{"name": "board", "kind": "fake", "latency_us": 120.0}],
        "sweep": {"models": [str(EXAMPLE_DIR / "digits_dense.tflite")], "repeats": 2, "iterations": 10},
    }
    config = parse_config(doc, "test", tmp_path)
    outcome = run_sweep(config)
    assert (outcome.cells_ok, outcome.status) == (2, "complete")
    cells = results.load(outcome.run_id, postgres_url)
    assert len(cells) == 2 and all(len(s) == 10 for s in cells["latency_ns"])
    assert results.summarize(cells)["p50_us"].iloc[0] == pytest.approx(120.0, rel=1e-3)
    again = run_sweep(config, resume=outcome.run_id)
    assert again.cells_skipped == 2 and again.cells_ok == 0

    store = Store.open(postgres_url, create=False)
    try:
        assert [r["id"] for r in store.list_runs()] == [outcome.run_id]
        with store.engine.connect() as conn:
            version = conn.exec_driver_sql("SELECT value FROM bench_meta WHERE key = 'schema_version'").scalar()
        assert version == str(SCHEMA_VERSION)
    finally:
        store.close()

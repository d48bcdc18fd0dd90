"""The store's schema version and migration path."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from harness import store as store_module
from harness.errors import StoreError
from harness.store import Store, meta_table


def _version(url: str) -> str:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        value = conn.execute(sa.select(meta_table.c.value).where(meta_table.c.key == "schema_version")).scalar_one()
    engine.dispose()
    return value


def test_a_new_store_records_the_schema_version(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bench.db'}"
    Store.open(url).close()
    assert _version(url) == str(store_module.SCHEMA_VERSION)


def test_an_older_store_is_migrated_step_by_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'bench.db'}"
    Store.open(url).close()
    applied = []

    def add_notes_column(conn: sa.Connection) -> None:
        conn.exec_driver_sql("ALTER TABLE runs ADD COLUMN notes TEXT")
        applied.append(1)

    monkeypatch.setattr(store_module, "SCHEMA_VERSION", store_module.SCHEMA_VERSION + 1)
    monkeypatch.setitem(store_module.MIGRATIONS, store_module.SCHEMA_VERSION - 1, add_notes_column)
    Store.open(url).close()
    assert applied == [1] and _version(url) == str(store_module.SCHEMA_VERSION)
    Store.open(url).close()  # already at the new version: nothing runs twice
    assert applied == [1]


def test_a_store_from_a_newer_bench_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bench.db'}"
    Store.open(url).close()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(meta_table.update().values(value="99"))
    engine.dispose()
    with pytest.raises(StoreError, match="schema version 99, newer than this bench"):
        Store.open(url)


def test_reading_a_missing_store_does_not_create_one(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no store"):
        Store.open(f"sqlite:///{tmp_path / 'none.db'}", create=False)
    assert not (tmp_path / "none.db").exists()


def test_a_url_that_is_not_a_database_url(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="not a database URL"):
        Store.open("bench.db")


#: A database written by bench's schema v1 (sweep of the digits model on `sim` and `fake`; the fake's
#: cells carry thermal state the way the ssh driver writes it, one of them throttled mid-window).
V1_DUMP = Path(__file__).parent / "data" / "store_v1.sql"


def _v1_store(tmp_path: Path) -> str:
    import sqlite3

    db = tmp_path / "v1.db"
    con = sqlite3.connect(db)
    con.executescript(V1_DUMP.read_text())
    con.close()
    return f"sqlite:///{db}"


def test_a_v1_database_opens_and_migrates_to_v2(tmp_path: Path) -> None:
    from harness import results
    from harness.bundle import load_bundle
    from harness.report.data import build_report_data

    url = _v1_store(tmp_path)
    assert _version(url) == "1"
    store = Store.open(url, create=False)
    run_id = store.latest_run_id()
    profiles = store.op_profiles(run_id)
    store.close()
    assert _version(url) == "2"
    # v1 kept each serial-protocol cell's per-op profile in its details; v2 has them as rows
    sim_rows = [r for r in profiles if r["device_name"] == "sim-m4"]
    assert len(sim_rows) == 16 and {r["op"] for r in sim_rows} >= {"CONV_2D", "FULLY_CONNECTED"}
    assert {r["repeat"] for r in sim_rows} == {0, 1}
    for repeat in (0, 1):
        shares = [r["share"] for r in sim_rows if r["repeat"] == repeat]
        assert sum(shares) == pytest.approx(1.0)
    bundle = load_bundle([run_id], url)
    assert not any("op_profile" in d for d in bundle.cells["details"])
    # what v1 measured reads back as before
    summary = results.summarize(bundle.cells).set_index("device_name")
    assert summary.loc["board-a", "p50_us"] == pytest.approx(250.0, rel=1e-3)
    assert summary.loc["sim-m4", "repeats"] == 2
    # the throttled cell is now flagged, so the report's warning fires for it (and only for it)
    throttled = [w for w in build_report_data(bundle).warnings if w.kind == "throttled"]
    assert len(throttled) == 1 and "repeat 1" in throttled[0].message and "0x50005" in throttled[0].message
    Store.open(url, create=False).close()  # migrated once: opening again changes nothing
    assert _version(url) == "2"


def _store_missing_a_metric_column(url: str, tmp_path: Path, column: str) -> str:
    """A store with one sweep whose `measurements` lacks `column`, as if written before that metric existed."""
    from harness.config import parse_config
    from harness.models.zoo import EXAMPLE_DIR
    from harness.sweep import run_sweep

    doc = {"store": {"url": url}, "devices": [{"name": "board", "kind": "fake", "latency_us": 150.0}],
           "sweep": {"models": [str(EXAMPLE_DIR / "digits_dense.tflite")], "repeats": 2, "iterations": 10}}
    run_id = run_sweep(parse_config(doc, "test", tmp_path)).run_id
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"ALTER TABLE measurements DROP COLUMN {column}")
    engine.dispose()
    return run_id


def _measurement_columns(url: str) -> list[str]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        columns = [c["name"] for c in sa.inspect(conn).get_columns("measurements")]
    engine.dispose()
    return columns


def _check_a_missing_metric_column_is_added_on_open(url: str, tmp_path: Path) -> None:
    from harness import results

    run_id = _store_missing_a_metric_column(url, tmp_path, "energy_uj")
    assert "energy_uj" not in _measurement_columns(url)
    Store.open(url, create=False).close()  # reading opens it too: `bench show` must not trip on it
    assert "energy_uj" in _measurement_columns(url) and _version(url) == str(store_module.SCHEMA_VERSION)
    cells = results.load(run_id, url)  # the old cells, whole, with no figure for the added column
    assert len(cells) == 2 and cells["energy_uj"].isna().all()
    assert results.summarize(cells)["p50_us"].iloc[0] == pytest.approx(150.0, rel=1e-3)
    Store.open(url).close()  # present now: nothing to add, nothing fails
    assert _measurement_columns(url).count("energy_uj") == 1


def test_a_metric_column_the_store_lacks_is_added_on_open(tmp_path: Path) -> None:
    _check_a_missing_metric_column_is_added_on_open(f"sqlite:///{tmp_path / 'bench.db'}", tmp_path)


def test_a_metric_column_the_store_lacks_is_added_on_open_on_postgresql(tmp_path: Path) -> None:
    from tests.postgres_server import missing_reason, postgres_server

    if missing_reason():
        pytest.skip(missing_reason())
    pytest.importorskip("psycopg", reason="psycopg missing: scripts/install --test installs it")
    with postgres_server() as url:
        _check_a_missing_metric_column_is_added_on_open(url, tmp_path)

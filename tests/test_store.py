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

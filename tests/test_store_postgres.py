"""The same store code on a real PostgreSQL server, started by the test in a temporary directory."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import results
from harness.config import parse_config
from harness.models.zoo import EXAMPLE_DIR
from harness.store import SCHEMA_VERSION, Store
from harness.sweep import run_sweep

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    if not (PG_BIN / "initdb").exists():
        pytest.fail("PostgreSQL 15 server binaries missing: scripts/install --test installs Debian's postgresql")
    pytest.importorskip("psycopg", reason="psycopg missing: scripts/install --test installs it")
    # Not under pytest's basetemp: that is 0700 root's, and the server runs as another user.
    base = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    # initdb refuses to run as root: run the server as Debian's postgres user when we are root.
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        shutil.chown(base, "postgres")
        shutil.chown(sock, "postgres")
    port = _free_port()
    subprocess.run([*as_user, str(PG_BIN / "initdb"), "-D", str(data), "-U", "bench", "--auth=trust", "-E", "UTF8"],
                   check=True, capture_output=True)
    subprocess.run([*as_user, str(PG_BIN / "pg_ctl"), "-D", str(data), "-w", "-l", str(base / "log"), "-o",
                    f"-k {sock} -p {port} -c listen_addresses=''", "start"], check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://bench@/postgres?host={sock}&port={port}"
    finally:
        subprocess.run([*as_user, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       check=False, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


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

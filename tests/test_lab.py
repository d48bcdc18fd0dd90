"""The lab, for real: a Dask scheduler and three workers as processes on 127.0.0.1 holding simulated
(and, when QEMU is here, emulated) boards, a real PostgreSQL server as the store, `bench sweep
--cluster` as a user runs it, and a worker SIGKILLed mid-sweep."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from devices import qemu
from harness.models.zoo import EXAMPLE_DIR
from tests.conftest import run_bench
from tests.lab_fixtures import Lab
from tests.test_store_postgres import postgres_url  # noqa: F401  (the fixture: a real server per module)

pytest.importorskip("distributed", reason="Dask distributed missing: scripts/install --test installs it")
pytestmark = pytest.mark.slow

QEMU_HERE = qemu.unavailable_reason() is None


def _sim(name: str, pool: str | None = None, seed: int = 0) -> str:
    # Generous timeouts: on a loaded 2-core machine a simulator can take many seconds to start or answer.
    return (f'[[devices]]\nname = "{name}"\nkind = "sim"\nseed = {seed}\ntimeout_s = 15.0\nstartup_timeout_s = 120.0\n'
            + (f'pool = "{pool}"\n' if pool else ""))


WORKERS = {
    "w1": _sim("sim-a") + _sim("m4-1", "m4", seed=1),
    # The emulated board rides along where QEMU is installed (it is in CI: scripts/install --test).
    "w2": _sim("m4-2", "m4", seed=2) + ('[[devices]]\nname = "qemu-a"\nkind = "qemu"\n' if QEMU_HERE else ""),
    "w3": _sim("sim-b") + _sim("m4-3", "m4", seed=3),
}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(tmp_path_factory.mktemp("lab"))
    try:
        lab.start_scheduler()
        for name, boards in WORKERS.items():
            lab.start_worker(name, boards)
        lab.wait_for_workers(list(WORKERS))
        yield lab
    finally:
        lab.stop()


def _client_config(tmp: Path, store_url: str, address: str, repeats: int = 2, cluster: str = "") -> Path:
    path = tmp / "bench.toml"
    path.write_text(f'[store]\nurl = "{store_url}"\n\n[cluster]\naddress = "{address}"\n{cluster}\n'
                    f'[sweep]\nmodels = ["{EXAMPLE_DIR / "manifest.json"}"]\nrepeats = {repeats}\n'
                    'iterations = 20\nwarmup = 2\naccuracy_samples = 20\n')
    return path


def _cells(store_url: str, run_id: str | None = None) -> list[dict]:
    engine = sa.create_engine(store_url)
    try:
        with engine.connect() as conn:
            query = ("SELECT m.run_id, m.cell_key, m.device_name, m.status, m.error, s.name AS board "
                     "FROM measurements m LEFT JOIN device_snapshots s ON s.id = m.device_snapshot_id")
            rows = [dict(r) for r in conn.execute(sa.text(query)).mappings()]
    finally:
        engine.dispose()
    return [r for r in rows if run_id is None or r["run_id"] == run_id]


def test_a_sweep_across_the_lab_survives_a_killed_worker_and_resumes(lab: Lab, postgres_url: str,  # noqa: F811
                                                                      tmp_path: Path) -> None:
    config = _client_config(tmp_path, postgres_url, lab.address)
    killed: list[str] = []

    def kill_w3_mid_sweep() -> None:
        """SIGKILL w3 as soon as its plain board has measured a cell (so it dies with work queued)."""
        engine = sa.create_engine(postgres_url)
        deadline = time.monotonic() + 300
        try:
            while time.monotonic() < deadline and not killed:
                try:
                    with engine.connect() as conn:
                        done = conn.execute(sa.text("SELECT count(*) FROM measurements "
                                                    "WHERE device_name = 'sim-b' AND status = 'ok'"))
                        if done.scalar():
                            lab.kill("w3")
                            killed.append("w3")
                except sa.exc.SQLAlchemyError:  # the sweep has not made its tables yet
                    pass
                time.sleep(0.05)
        finally:
            engine.dispose()

    killer = threading.Thread(target=kill_w3_mid_sweep, daemon=True)
    killer.start()
    units = ["sim-a", "m4", "sim-b"]
    lanes = [arg for u in units for arg in ("--device", u)]
    first = run_bench("sweep", "-c", str(config), *lanes, "--no-report", cwd=tmp_path, timeout=300)
    killer.join(timeout=10)
    assert killed == ["w3"], first.stdout[-2000:] + first.stderr[-3000:]
    # sim-b's queued cells failed with the reason, so the sweep reports failed cells (exit 1), not an error.
    assert first.returncode == 1, first.stdout[-3000:] + first.stderr[-3000:]
    run_id = first.stdout.split("\nrun ", 1)[1].split()[0]

    n_cells = 9 * 2 * len(units)
    cells = _cells(postgres_url, run_id)
    assert len(cells) == n_cells and len({c["cell_key"] for c in cells}) == n_cells  # none lost, none twice
    by_unit = {u: [c for c in cells if c["device_name"] == u] for u in units}
    sim_b_failed = [c for c in by_unit["sim-b"] if c["status"] == "failed"]
    assert sim_b_failed and len(sim_b_failed) < 18, [c["error"] for c in sim_b_failed]
    assert all("worker w3" in c["error"] and "left the lab" in c["error"] for c in sim_b_failed)
    # The pool lost a board, not its cells: they moved to the pool's boards on the living workers.
    assert all(c["status"] == "ok" for c in by_unit["m4"]), [c["error"] for c in by_unit["m4"]]
    assert {c["board"] for c in by_unit["m4"]} >= {"m4-1", "m4-2"}
    assert all(c["status"] == "ok" for u in units if u != "sim-b" for c in by_unit[u])

    # w3 comes back; the run resumes on the lab and measures only what failed.
    lab.start_worker("w3")
    lab.wait_for_workers(["w3"])
    second = run_bench("sweep", "-c", str(config), "--resume", run_id, "--retry-failed", cwd=tmp_path, timeout=300)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    cells = _cells(postgres_url, run_id)
    assert len(cells) == n_cells and all(c["status"] == "ok" for c in cells)
    assert f"{n_cells - len(sim_b_failed)} already done" in second.stdout

    # The report puts the pool's board-to-board spread next to its run-to-run spread.
    report = (tmp_path / "reports" / run_id / "summary.md").read_text()
    assert "Board-to-board spread" in report and "m4" in report


def test_a_board_held_by_one_sweep_is_refused_to_another_naming_the_holder(lab: Lab, tmp_path: Path) -> None:
    from distributed import Client

    from harness.lab.reserve import reserve_boards

    config = _client_config(tmp_path, f"sqlite:///{tmp_path / 'b.db'}", lab.address, repeats=1)
    with Client(lab.address, timeout=60) as client, reserve_boards(client, ["sim-a"], 0, "bench sweep (holder)"):
        refused = run_bench("sweep", "-c", str(config), "--device", "sim-a", "--no-report", cwd=tmp_path)
        waited = run_bench("sweep", "-c", str(config), "--device", "sim-a", "--wait", "1", "--no-report",
                           cwd=tmp_path)
    for r in (refused, waited):
        assert r.returncode == 2, r.stdout[-2000:] + r.stderr[-2000:]
        assert "board 'sim-a' is held by another sweep" in r.stderr and "bench sweep (holder)" in r.stderr
    assert "--wait SECONDS" in refused.stderr and "Waited 1 s" in waited.stderr
    assert not (tmp_path / "b.db").exists() or not _cells(f"sqlite:///{tmp_path / 'b.db'}")


def test_lab_boards_lists_each_board_with_its_worker_and_pool(lab: Lab, tmp_path: Path) -> None:
    r = run_bench("lab", "boards", "--cluster", lab.address, "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = {row["board"]: row for row in json.loads(r.stdout)}
    alive = {name: proc.poll() is None for name, proc in lab.workers.items()}
    assert {"sim-a", "m4-1", "m4-2", "sim-b", "m4-3"} <= set(rows), (rows, alive, lab.log("w2")[-3000:])
    assert rows["m4-1"]["pool"] == "m4" and rows["m4-1"]["worker"] == "w1"
    assert rows["sim-a"]["pool"] is None and rows["m4-2"]["worker"] == "w2"


@pytest.mark.skipif(not QEMU_HERE, reason=f"qemu: {qemu.unavailable_reason()}")
def test_an_emulated_board_measures_on_its_worker(lab: Lab, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'q.db'}"
    config = _client_config(tmp_path, store, lab.address, repeats=1)
    r = run_bench("sweep", "-c", str(config), "--device", "qemu-a", "--model", str(EXAMPLE_DIR / "digits_dense.tflite"),
                  "--no-report", cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    (cell,) = _cells(store)
    assert cell["status"] == "ok" and cell["board"] == "qemu-a"
    engine = sa.create_engine(store)
    with engine.connect() as conn:
        source = conn.execute(sa.text("SELECT latency_source FROM measurements")).scalar()
    engine.dispose()
    assert source == "emulated"


def test_a_lost_scheduler_ends_the_run_resumably(tmp_path: Path) -> None:
    from harness.config import load_config
    from harness.lab.sweep import run_lab_sweep

    lab = Lab(tmp_path / "lab")
    (tmp_path / "lab").mkdir()
    store = f"sqlite:///{tmp_path / 'lost.db'}"
    try:
        lab.start_scheduler()
        lab.start_worker("solo", _sim("solo-sim"))
        lab.wait_for_workers(["solo"])
        config = load_config(_client_config(tmp_path, store, lab.address, repeats=1))

        class KillSchedulerAfterFirstCell:
            def lane_started(self, device: str, cells: int) -> None: ...
            def cell_started(self, device: str, cell_key: str) -> None: ...
            def lane_finished(self, device: str) -> None: ...

            def cell_finished(self, device: str, row: dict) -> None:
                if lab.scheduler is not None and lab.scheduler.poll() is None:
                    lab.kill("scheduler")

        first = run_lab_sweep(config, observer=KillSchedulerAfterFirstCell(), connect_timeout_s=5)
        assert first.lost and "lost the lab's scheduler" in first.lost
        assert first.outcome.status == "interrupted" and 1 <= first.outcome.cells_ok < 9
        done = first.outcome.cells_ok

        # A new scheduler (and the worker joining it) and the run resumes where it stopped.
        lab.stop()
        lab = Lab(tmp_path / "lab", configs=lab.configs)
        lab.start_scheduler()
        lab.start_worker("solo")
        lab.wait_for_workers(["solo"])
        again = run_lab_sweep(config, address=lab.address, resume=first.outcome.run_id)
        assert again.lost is None and again.outcome.status == "complete"
        assert (again.outcome.cells_skipped, again.outcome.cells_ok) == (done, 9 - done)
        assert len({c["cell_key"] for c in _cells(store)}) == len(_cells(store)) == 9
    finally:
        lab.stop()


def test_beyond_plain_tcp_the_lab_speaks_mutual_tls(tmp_path: Path) -> None:
    from harness.config import load_config
    from harness.errors import ConfigError
    from harness.lab.certs import make_certs
    from harness.lab.sweep import connect

    r = run_bench("lab", "certs", str(tmp_path / "certs"), "127.0.0.1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    certs = tmp_path / "certs"
    tls = (f'[cluster]\ntls_ca_file = "{certs / "ca.pem"}"\ntls_cert_file = "{certs / "127.0.0.1.pem"}"\n'
           f'tls_key_file = "{certs / "127.0.0.1-key.pem"}"\n')
    (tmp_path / "lab").mkdir()
    lab = Lab(tmp_path / "lab", tls=tls)
    try:
        address = lab.start_scheduler()
        assert address.startswith("tls://")
        lab.start_worker("tls-w", _sim("tls-sim"))
        from distributed import Security

        lab.wait_for_workers(["tls-w"], client_security=Security(
            tls_ca_file=str(certs / "ca.pem"), tls_client_cert=str(certs / "127.0.0.1.pem"),
            tls_client_key=str(certs / "127.0.0.1-key.pem"), require_encryption=True))
        store = f"sqlite:///{tmp_path / 'tls.db'}"
        config = _client_config(tmp_path, store, address, repeats=1, cluster=tls.replace("[cluster]\n", ""))
        ok = run_bench("sweep", "-c", str(config), "--model", str(EXAMPLE_DIR / "digits_dense.tflite"),
                       "--no-report", cwd=tmp_path, timeout=300)
        assert ok.returncode == 0, ok.stdout[-2000:] + ok.stderr[-3000:]
        assert [c["status"] for c in _cells(store)] == ["ok"]

        # No certificate: refused before connecting. A certificate from another CA: the scheduler refuses it.
        bare = tmp_path / "bare.toml"
        bare.write_text(f'[cluster]\naddress = "{address}"\n')
        r = run_bench("lab", "boards", "-c", str(bare), cwd=tmp_path, timeout=120)
        assert r.returncode == 2 and "names no certificates" in r.stderr, r.stderr
        make_certs(tmp_path / "other", ["127.0.0.1"])
        foreign = tls.replace(str(certs), str(tmp_path / "other")).replace("[cluster]\n", "")
        other = load_config(_client_config(tmp_path / "other", store, address, cluster=foreign))
        with pytest.raises(ConfigError, match="cannot reach the lab's scheduler"):
            connect(other, None, timeout_s=5)
    finally:
        lab.stop()

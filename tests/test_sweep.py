"""The sweep engine's promises: every cell committed as it finishes, failures recorded, resumable."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from harness import results
from harness.config import load_config
from harness.models.zoo import EXAMPLE_DIR
from harness.store import Store
from harness.sweep import run_sweep
from tests.conftest import run_bench, write_config

#: One plain model keeps the plan small: 1 variant × 2 devices × repeats.
DENSE = EXAMPLE_DIR / "digits_dense.tflite"

FAKE_SWEEP = """
[store]
url = "sqlite:///bench.db"

[[devices]]
name = "board-a"
kind = "fake"
latency_us = 250.0
seconds_per_run = {seconds}
{extra_a}

[[devices]]
name = "board-b"
kind = "fake"
latency_us = 400.0
seconds_per_run = {seconds}

[sweep]
models = ["{model}"]
repeats = {repeats}
iterations = 20
warmup = 1
accuracy_samples = 10
"""


def fake_config(workdir: Path, *, seconds: float = 0.0, repeats: int = 2, extra_a: str = "",
                hold: tuple[Path, int] | None = None) -> Path:
    """`hold`: (file, runs) — each board parks every run after `runs` while the file exists."""
    text = FAKE_SWEEP.format(seconds=seconds, repeats=repeats, extra_a=extra_a, model=DENSE)
    if hold is not None:
        parked = f'hold_file = "{hold[0]}"\nhold_after_runs = {hold[1]}\n'
        text = text.replace("seconds_per_run = ", parked + "seconds_per_run = ")
    return write_config(workdir / "bench.toml", text)


def cells_in_db(db: Path, run_id: str | None = None) -> list[tuple]:
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        query = "SELECT run_id, cell_key, status, started_at FROM measurements"
        rows = conn.execute(sa.text(query)).fetchall()
    engine.dispose()
    return [tuple(r) for r in rows if run_id is None or r[0] == run_id]


def test_every_cell_is_stored_with_its_figures(workdir: Path) -> None:
    config = load_config(fake_config(workdir, repeats=3))
    outcome = run_sweep(config)
    assert (outcome.cells_total, outcome.cells_ok, outcome.cells_failed, outcome.status) == (6, 6, 0, "complete")
    cells = results.load(outcome.run_id, config.store.url)
    assert len(cells) == 6 and set(cells["status"]) == {"ok"}
    assert all(len(s) == 20 for s in cells["latency_ns"])
    assert set(cells["n"]) == {20}
    assert cells["estimated"].all()  # the fake's figures are synthetic and say so
    summary = results.summarize(cells)
    assert list(summary["device_name"]) == ["board-a", "board-b"]
    assert summary.set_index("device_name").loc["board-a", "p50_us"] == pytest.approx(250.0, rel=1e-3)


def test_a_failing_cell_is_recorded_and_the_sweep_goes_on(workdir: Path) -> None:
    config = load_config(fake_config(workdir, extra_a='fail_models = ["digits_dense"]'))
    outcome = run_sweep(config)
    assert outcome.cells_failed == 2 and outcome.cells_ok == 2 and outcome.status == "complete"
    cells = results.load(outcome.run_id, config.store.url)
    failed = cells[cells["status"] == "failed"]
    assert set(failed["device_name"]) == {"board-a"}
    assert all("injected failure" in e and "board-a" in e for e in failed["error"])


def test_fail_fast_stops_after_the_first_failure(workdir: Path) -> None:
    config = load_config(fake_config(workdir, repeats=4, extra_a='fail_models = ["digits_dense"]'))
    outcome = run_sweep(config, fail_fast=True)
    assert outcome.status == "stopped"
    assert outcome.cells_ok + outcome.cells_failed < outcome.cells_total


def test_a_device_that_does_not_open_fails_each_of_its_cells_by_name(workdir: Path) -> None:
    config = load_config(fake_config(workdir, extra_a='open_error = "no such board on /dev/ttyUSB9"'))
    outcome = run_sweep(config)
    cells = results.load(outcome.run_id, config.store.url)
    a = cells[cells["device_name"] == "board-a"]
    assert len(a) == 2 and set(a["status"]) == {"failed"}
    assert all("/dev/ttyUSB9" in e for e in a["error"])
    assert set(cells[cells["device_name"] == "board-b"]["status"]) == {"ok"}


def test_resume_skips_committed_cells_and_retries_failed_ones_on_request(workdir: Path) -> None:
    config = load_config(fake_config(workdir, extra_a='fail_models = ["digits_dense"]'))
    first = run_sweep(config)
    before = cells_in_db(workdir / "bench.db")
    again = run_sweep(config, resume=first.run_id)
    assert again.run_id == first.run_id and again.cells_skipped == 4 and again.cells_ok == 0
    assert cells_in_db(workdir / "bench.db") == before
    fixed = load_config(fake_config(workdir))
    retried = run_sweep(fixed, resume=first.run_id, retry_failed=True)
    # a resumed run measures the config it was started with, so the injected failure is still there
    assert retried.cells_skipped == 2 and retried.cells_failed == 2


def _wait_for_cells(db: Path, n: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else "sweep ended early"
        if db.exists():
            try:
                if len(cells_in_db(db)) >= n:
                    return
            except sa.exc.OperationalError:
                pass  # tables not created yet
        time.sleep(0.05)
    raise AssertionError(f"fewer than {n} cells after {timeout} s")


def _start_sweep(workdir: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "harness", "sweep"], cwd=workdir,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_killed_sweep_resumes_without_repeating_committed_cells(workdir: Path) -> None:
    # 10 cells, 5 per board; each board parks its third run while the hold file exists, so the sweep is
    # killed with exactly 4 cells committed, however busy the machine.
    hold = workdir / "hold"
    hold.touch()
    fake_config(workdir, repeats=5, hold=(hold, 2))
    proc = _start_sweep(workdir)
    _wait_for_cells(workdir / "bench.db", 4, proc)
    proc.kill()
    proc.wait(timeout=30)
    hold.unlink()
    before = cells_in_db(workdir / "bench.db")
    assert len(before) == 4
    run_id = before[0][0]
    store = Store.open("sqlite:///bench.db", create=False)
    assert store.get_run(run_id)["status"] == "running"  # killed: nobody could mark it
    store.close()

    done = run_bench("sweep", "--resume", run_id, cwd=workdir)
    assert done.returncode == 0, done.stderr
    after = cells_in_db(workdir / "bench.db")
    assert len(after) == 10
    assert len({key for _, key, _, _ in after}) == 10
    assert set(before) <= set(after)  # committed cells untouched, not measured again
    assert f"{len(before)} already done" in done.stdout


def test_ctrl_c_finishes_the_current_cell_and_marks_the_run_interrupted(workdir: Path) -> None:
    # Each board parks its second run while the hold file exists: Ctrl-C arrives with those cells in
    # progress; released, they finish and no further cell starts.
    hold = workdir / "hold"
    hold.touch()
    fake_config(workdir, repeats=5, hold=(hold, 1))
    proc = _start_sweep(workdir)
    _wait_for_cells(workdir / "bench.db", 2, proc)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.2)  # not a verdict: lets the signal land while the runs are parked, as a user's would
    hold.unlink()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in out and "bench sweep --resume" in out
    cells = cells_in_db(workdir / "bench.db")
    assert 2 <= len(cells) < 10 and {row[2] for row in cells} == {"ok"}
    store = Store.open("sqlite:///bench.db", create=False)
    assert store.get_run(cells[0][0])["status"] == "interrupted"
    store.close()

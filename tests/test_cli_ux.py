"""The command line as a new user meets it: usage errors, shell completion, `latest` for any run id,
output for scripts, tables in an 80-column terminal, and the probe's exit code."""

from __future__ import annotations

import io
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_bench, write_config

FAKE_CONFIG = """
[store]
url = "sqlite:///bench.db"
[[devices]]
name = "board"
kind = "fake"
latency_us = 120.0
[sweep]
repeats = 1
iterations = 20
warmup = 0
accuracy_samples = 0
"""


# --- 1. usage errors are one line and exit 2; completion is on ------------------------------------

@pytest.mark.parametrize("args,needle", [
    (["sweep", "--bogus"], "No such option: --bogus"),
    (["sweep", "--repeats", "0"], "'--repeats'"),
    (["nosuch"], "No such command 'nosuch'"),
    (["compare"], "Missing argument"),
    (["show", "a", "b"], "unexpected extra argument"),
])
def test_usage_errors_are_one_line_with_exit_2(workdir: Path, args: list[str], needle: str) -> None:
    done = run_bench(*args, cwd=workdir)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: bench") and needle in lines[0], done.stderr
    assert "--help" in lines[0] and "Traceback" not in done.stderr


def test_no_command_shows_the_help_and_no_error(workdir: Path) -> None:
    done = run_bench(cwd=workdir)
    assert done.returncode == 2 and "Usage: bench" in done.stdout and "sweep" in done.stdout
    assert "error" not in done.stderr and "Traceback" not in done.stderr


def test_shell_completion_installs_and_completes(workdir: Path) -> None:
    env = {**os.environ, "HOME": str(workdir), "SHELL": "/bin/bash"}
    bench = shlex.join([sys.executable, "-m", "harness"])
    # Inside bash, as a user would type it, so the shell is detected the way it is at home.
    done = subprocess.run(["bash", "-c", f"{bench} --install-completion"], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, (done.stdout, done.stderr)
    script = workdir / ".bash_completions" / "bench.sh"
    assert "_BENCH_COMPLETE" in script.read_text() and str(script) in (workdir / ".bashrc").read_text()

    shown = run_bench("--show-completion", "bash", cwd=workdir)
    assert shown.returncode == 0 and "_BENCH_COMPLETE=complete_bash" in shown.stdout
    # What the installed script asks the program when TAB is pressed after `bench sw`.
    completed = subprocess.run([sys.executable, "-m", "harness"], cwd=workdir, capture_output=True, text=True,
                               env={**env, "_BENCH_COMPLETE": "complete_bash", "COMP_WORDS": "bench sw",
                                    "COMP_CWORD": "1"}, timeout=120, check=False)
    assert completed.stdout.split() == ["sweep"], completed


# --- 2. `latest` wherever a run id is taken ---------------------------------------------------------

def test_latest_is_a_run_id_everywhere(workdir: Path) -> None:
    write_config(workdir / "bench.toml", FAKE_CONFIG)
    assert run_bench("sweep", "--no-report", cwd=workdir).returncode == 0
    run_id = json.loads(run_bench("runs", "--json", cwd=workdir).stdout)[0]["id"]

    exported = run_bench("export", "latest", "--out", "b.json.gz", cwd=workdir)
    assert exported.returncode == 0, exported.stderr
    assert f"exported run {run_id}" in exported.stdout

    shown = run_bench("show", "latest", "--json", cwd=workdir)
    assert shown.returncode == 0 and {r["run_id"] for r in json.loads(shown.stdout)} == {run_id}

    reported = run_bench("report", "latest", "--format", "md", cwd=workdir)
    assert reported.returncode == 0, reported.stderr
    assert (workdir / "reports" / run_id / "summary.md").is_file()

    compared = run_bench("compare", "b.json.gz", "latest", cwd=workdir)
    assert compared.returncode == 0, compared.stdout + compared.stderr

    resumed = run_bench("sweep", "--resume", "latest", "--no-report", cwd=workdir)
    assert resumed.returncode == 0, resumed.stderr
    assert f"run {run_id} complete" in resumed.stdout and "already done" in resumed.stdout


def test_latest_in_an_empty_store_says_so(workdir: Path) -> None:
    write_config(workdir / "bench.toml", FAKE_CONFIG)
    assert run_bench("sweep", "--no-report", cwd=workdir).returncode == 0
    done = run_bench("export", "latest", "--store", "sqlite:///other.db", cwd=workdir)
    assert done.returncode == 2 and "error:" in done.stderr and "Traceback" not in done.stderr


# --- 8. tables that fit, output for scripts, --threads and --min-seconds ------------------------------

WIDE_CONFIG = FAKE_CONFIG.replace("latency_us = 120.0", "latency_us = 1234567.891\njitter_us = 1000.0")


def _bench_at(columns: int, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`bench` with its output going to a pipe of a terminal this many columns wide."""
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": str(columns)}, timeout=300, check=False)


def test_tables_at_80_columns_fold_or_drop_columns_but_never_cut_a_figure(workdir: Path) -> None:
    write_config(workdir / "bench.toml", WIDE_CONFIG)
    assert run_bench("sweep", "--no-report", cwd=workdir).returncode == 0
    rows = json.loads(run_bench("show", "--json", cwd=workdir).stdout)
    shown = _bench_at(80, "show", cwd=workdir)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80 and "…" not in shown.stdout
    for r in rows:  # every row's name and median are there, whole
        assert any(r["variant_name"] in line and f"{r['p50_us']:.1f}" in line for line in lines), r
    assert "not shown at 80 columns:" in shown.stdout  # and what was left out is named

    wide = _bench_at(200, "show", cwd=workdir)
    assert "not shown" not in wide.stdout and "≡ TFLM" in wide.stdout

    compared = _bench_at(80, "compare", "latest", "latest", "--all", cwd=workdir)
    assert compared.returncode == 0 and "…" not in compared.stdout
    assert max(len(line) for line in compared.stdout.splitlines()) <= 80
    assert f"{rows[0]['p50_us']:.2f} µs" in compared.stdout

    listed = _bench_at(60, "runs", cwd=workdir)
    assert "…" not in listed.stdout and max(len(line) for line in listed.stdout.splitlines()) <= 60


def test_a_forced_80_column_console_shows_every_figure_it_shows_whole() -> None:
    from rich.console import Console

    from harness.table import Col, fitted_table

    cols = [Col("name", "left", figure=False, keep=-1), *(Col(f"figure {i} KiB", keep=i) for i in range(8))]
    rows = [[f"variant-with-a-long-name-{r}", *(f"{(r + 1) * 123456.789 * (i + 1):,.1f}" for i in range(8))]
            for r in range(3)]
    table = fitted_table(cols, rows, width=80, caption="c", hint="see --json")
    console = Console(width=80, record=True, file=io.StringIO())
    console.print(table)
    text = console.export_text()
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80
    kept = [i for i, c in enumerate(cols) if c.header in {col.header for col in table.columns}]
    dropped = [c.header for i, c in enumerate(cols) if i not in kept]
    assert 0 in kept and 1 < len(kept) < len(cols)
    for row in rows:
        for i in kept[1:]:
            assert row[i] in text  # a shown figure is whole, on one line
    assert table.caption.endswith(f"not shown at 80 columns: {', '.join(dropped)} (see --json)")
    assert dropped[0] == "figure 0 KiB"  # the least important goes first


def test_sweep_and_compare_speak_json_for_scripts(workdir: Path) -> None:
    write_config(workdir / "bench.toml", FAKE_CONFIG)
    swept = run_bench("sweep", "--json", cwd=workdir)
    assert swept.returncode == 0, swept.stderr
    out = json.loads(swept.stdout)  # nothing but the JSON on stdout
    assert out["status"] == "complete" and out["exit_code"] == 0
    assert out["cells"]["ok"] == out["cells"]["total"] > 0 and out["cells"]["failed"] == 0
    assert Path(workdir, out["report"]).is_file()
    assert out["run_id"] == json.loads(run_bench("runs", "--json", cwd=workdir).stdout)[0]["id"]

    compared = run_bench("compare", out["run_id"], "latest", "--json", cwd=workdir)
    assert compared.returncode == 0, compared.stderr
    verdict = json.loads(compared.stdout)
    assert verdict["exit_code"] == 0 and verdict["regressions"] == 0
    assert verdict["cells"] == out["cells"]["total"] and len(verdict["results"]) == verdict["checks"]
    assert {r["metric"] for r in verdict["results"]} == {"latency", "ram", "flash", "energy", "accuracy"}

    slow = FAKE_CONFIG.replace("latency_us = 120.0", "latency_us = 200.0")
    write_config(workdir / "bench.toml", slow)
    assert run_bench("sweep", "--no-report", cwd=workdir).returncode == 0
    regressed = run_bench("compare", out["run_id"], "latest", "--json", cwd=workdir)
    verdict = json.loads(regressed.stdout)
    assert regressed.returncode == 1 and verdict["exit_code"] == 1
    assert {r["metric"] for r in verdict["results"] if r["verdict"] == "regression"} == {"latency"}


def test_threads_and_min_seconds_reach_the_devices(workdir: Path) -> None:
    done = run_bench("sweep", "--device", "local", "--sparsity", "0.5", "--method", "magnitude", "--repeats", "1",
                     "--iterations", "3", "--warmup", "0", "--threads", "2", "--min-seconds", "0.05",
                     "--no-report", "--json", cwd=workdir)
    assert done.returncode == 0, done.stderr
    rows = json.loads(run_bench("show", "--json", cwd=workdir).stdout)
    assert rows and all(r["n"] > 3 for r in rows)  # kept timing past 3 iterations for 0.05 s
    from harness.store import Store

    store = Store.open("sqlite:///bench.db", create=False)
    try:
        config = store.get_run(json.loads(done.stdout)["run_id"])["config"]
    finally:
        store.close()
    config = json.loads(config) if isinstance(config, str) else config
    assert config["devices"][0]["settings"]["threads"] == 2 and config["sweep"]["min_seconds"] == 0.05

    refused = run_bench("sweep", "--device", "fake", "--threads", "2", cwd=workdir)
    assert refused.returncode == 2 and "--threads" in refused.stderr and "local" in refused.stderr


# --- 7. a probe that cannot reach a device fails ------------------------------------------------------

def test_probe_exits_1_when_a_device_is_unreachable(workdir: Path) -> None:
    write_config(workdir / "bench.toml", FAKE_CONFIG + '\n[[devices]]\nname = "gone"\nkind = "fake"\n'
                                                         'open_error = "no USB device"\n')
    for extra in ([], ["--json"]):
        probed = run_bench("devices", "--probe", *extra, cwd=workdir)
        assert probed.returncode == 1, (probed.stdout, probed.stderr)
        assert "no USB device" in probed.stdout
    assert run_bench("devices", cwd=workdir).returncode == 0  # listing alone opens nothing
    write_config(workdir / "bench.toml", FAKE_CONFIG)
    assert run_bench("devices", "--probe", cwd=workdir).returncode == 0

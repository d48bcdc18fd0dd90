"""The command line as a new user meets it: usage errors, shell completion, `latest` for any run id,
output for scripts, tables in an 80-column terminal, and the probe's exit code."""

from __future__ import annotations

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
iterations = 5
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

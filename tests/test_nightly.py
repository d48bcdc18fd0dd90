"""docs/nightly.yml, run as GitHub Actions would run it, night after night, against fake and simulated devices.

The steps and their `if:` conditions are read from the file itself, so the recipe and this test cannot drift.
Every `run:` step runs as written, in bash with the runner's flags (-eo pipefail). The steps that are GitHub
actions are played by what they do here: checkout is a fresh workspace holding the repository's committed
reports (as a clean checkout does), the artifact actions copy directories between nights, and the JUnit
publisher reads the XML. The Install step is the environment these tests already run in.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import yaml  # the test extra installs it (pyproject.toml)

REPO = Path(__file__).resolve().parents[1]
WORKFLOW = REPO / "docs" / "nightly.yml"

LAB_CONFIG = """
[store]
url = "sqlite:///bench.db"

[[devices]]
name = "board"
kind = "fake"
latency_us = {latency}
jitter_us = 2.0

[[devices]]
name = "mcu"
kind = "sim"

[sweep]
models = ["example:digits"]
sparsities = [0.5]
methods = ["magnitude"]
repeats = 1
warmup = 0
iterations = 20
accuracy_samples = 0
"""


@dataclass
class Night:
    workspace: Path
    summary: str
    outcomes: dict[str, str] = field(default_factory=dict)  # step name -> success | failure | skipped
    succeeded: bool = True  # the job's status: no failed step other than continue-on-error ones


def _steps() -> tuple[list[dict], dict]:
    doc = yaml.safe_load(WORKFLOW.read_text())
    (job,) = doc["jobs"].values()
    return job["steps"], job.get("env", {})


def _condition(expr: str | None, ok: bool, workspace: Path) -> bool:
    """The few GitHub expression forms the workflow uses; anything else fails the test (extend it here)."""
    expr = (expr or "success()").strip()
    if expr.startswith("${{") and expr.endswith("}}"):
        expr = expr[3:-2].strip()

    def hash_files(match: re.Match[str]) -> str:
        found = sorted(workspace.glob(match[1]))
        return repr("h" if any(p.is_file() for p in found) else "")

    py = re.sub(r"hashFiles\('([^']*)'\)", hash_files, expr)
    py = py.replace("always()", "True").replace("success()", repr(ok)).replace("failure()", repr(not ok))
    py = py.replace("&&", " and ").replace("||", " or ")
    assert re.fullmatch(r"(\s|True|False|and|or|not|\(|\)|!=|==|'[^']*')*", py), f"unsupported if: {expr!r}"
    return bool(eval(py, {"__builtins__": {}}))  # checked above: only literals and operators are left


def _bench_wrapper(workspace: Path) -> None:
    """`.venv/bin/bench` in the workspace: this test environment's bench, as `scripts/install` would leave it."""
    bin_dir = workspace / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    wrapper = bin_dir / "bench"
    wrapper.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -m harness \"$@\"\n")
    wrapper.chmod(0o755)


def run_night(root: Path, n: int, artifacts: Path, latency_us: float) -> Night:
    steps, job_env = _steps()
    workspace = root / f"night-{n}"
    summary_file = root / f"summary-{n}.md"
    summary_file.touch()
    env = {**os.environ, **{k: str(v) for k, v in job_env.items()}, "GITHUB_STEP_SUMMARY": str(summary_file),
           "GITHUB_WORKSPACE": str(workspace)}
    env.pop("COLUMNS", None)
    night = Night(workspace, "")
    ok = True
    for step in steps:
        name = step.get("name") or step.get("uses")
        if not _condition(step.get("if"), ok, workspace):
            night.outcomes[name] = "skipped"
            continue
        if "uses" in step:
            success = _action(step, workspace, artifacts, latency_us)
        elif step["run"].strip() == "scripts/install":
            success = True  # this environment is the installed one
        else:
            done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
                                  cwd=workspace, env=env, capture_output=True, text=True, timeout=600, check=False)
            success = done.returncode == 0
            if not success:
                print(f"night {n}, step {name!r} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        if not success and not step.get("continue-on-error"):
            ok = False
        night.outcomes[name] = "success" if success else "failure"
    night.summary, night.succeeded = summary_file.read_text(), ok
    return night


def _action(step: dict, workspace: Path, artifacts: Path, latency_us: float) -> bool:
    uses, with_ = step["uses"].split("@")[0], step.get("with", {})
    if uses == "actions/checkout":
        # A clean checkout: the committed files (the example report among them), no store, no out/.
        shutil.copytree(REPO / "reports" / "example", workspace / "reports" / "example")
        _bench_wrapper(workspace)
        lab = workspace / "lab"
        lab.mkdir()
        (lab / "bench.toml").write_text(LAB_CONFIG.format(latency=latency_us))
        return True
    if uses == "dawidd6/action-download-artifact":
        stored = artifacts / with_["name"]
        if not stored.is_dir():
            return False  # "no artifact found": the step fails, continue-on-error keeps the job going
        shutil.copytree(stored, workspace / with_["path"], dirs_exist_ok=True)
        return True
    if uses == "actions/upload-artifact":
        source = workspace / with_["path"]
        if not source.exists():
            return False
        target = artifacts / with_["name"]
        shutil.rmtree(target, ignore_errors=True)
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            target.mkdir(parents=True)
            shutil.copy2(source, target / source.name)
        return True
    if uses == "mikepenz/action-junit-report":
        return ET.parse(workspace / with_["report_paths"]).getroot().tag == "testsuite"
    raise AssertionError(f"the test does not know the action {uses!r}: teach _action what it does")


def _exported_run(artifacts: Path) -> str:
    doc = json.loads(gzip.decompress((artifacts / "bench-baseline" / "baseline.json.gz").read_bytes()))
    return doc["runs"][0]["id"]


def _run_id(night: Night) -> str:
    done = subprocess.run([sys.executable, "-m", "harness", "runs", "--json", "--config", "lab/bench.toml"],
                          cwd=night.workspace, capture_output=True, text=True, timeout=120, check=True)
    return json.loads(done.stdout)[0]["id"]


def test_the_nightly_workflow_keeps_a_baseline_and_compares_against_it(tmp_path: Path) -> None:
    artifacts = tmp_path / "artifacts"
    example_run = re.search(r"\d{8}-\d{6}-[0-9a-f]{4}", (REPO / "reports/example/summary.md").read_text())

    first = run_night(tmp_path, 1, artifacts, latency_us=100.0)
    assert first.succeeded, first.outcomes
    assert first.outcomes["Compare against the baseline"] == "skipped"  # the very first night has none
    assert "No baseline yet" in first.summary
    run1 = _run_id(first)
    assert run1 in first.summary  # tonight's report summary...
    assert example_run is None or example_run[0] not in first.summary  # ...and not the committed example's
    assert _exported_run(artifacts) == run1  # promoted
    assert (artifacts / "bench-report" / "report.html").is_file()

    second = run_night(tmp_path, 2, artifacts, latency_us=100.0)
    assert second.succeeded, second.outcomes
    assert second.outcomes["Compare against the baseline"] == "success"
    assert second.outcomes["Publish JUnit results"] == "success"
    run2 = _run_id(second)
    assert "## bench compare: no regression" in second.summary and run1 in second.summary
    assert _exported_run(artifacts) == run2  # the new baseline

    third = run_night(tmp_path, 3, artifacts, latency_us=150.0)  # the board got 50 % slower
    assert not third.succeeded and third.outcomes["Compare against the baseline"] == "failure"
    assert "REGRESSION" in third.summary
    assert third.outcomes["Promote tonight's run to baseline (only when nothing regressed)"] == "skipped"
    assert _exported_run(artifacts) == run2  # the last good baseline stays
    assert third.outcomes["Keep the report"] == "success"  # the evidence is kept all the same

"""Nightly regression checks: a run against itself passes, a 20 % slowdown fails naming the cells, a baseline
kept as an exported file works like a run in the store, and every bad input is a clear usage error."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from devices import registry
from harness.bundle import RunBundle, load_bundle
from harness.compare import CompareError, compare, parse_threshold, parse_thresholds
from harness.errors import ConfigError
from harness.significance import mann_whitney_u
from tests.conftest import run_bench
from tests.report_store import ReportStore, build_report_store


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> ReportStore:
    return build_report_store(tmp_path_factory.mktemp("compare-store"))


def test_a_run_against_itself_passes(store: ReportStore, tmp_path: Path) -> None:
    done = run_bench("compare", store.base, store.base, "--store", store.url, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no regression" in done.stdout and "Mann–Whitney" in done.stdout


def test_a_20_percent_slowdown_fails_naming_the_cells(store: ReportStore, tmp_path: Path) -> None:
    junit, md = tmp_path / "out" / "compare.xml", tmp_path / "compare.md"
    done = run_bench("compare", store.base, store.slow, "--store", store.url, "--threshold", "latency=+5%",
                     "--junit", str(junit), "--markdown", str(md), cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "board-a / dense" in done.stdout and "regression" in done.stdout
    assert "board-b" not in done.stdout.split("test:")[0]  # board-b did not move: not listed
    suite = ET.parse(junit).getroot()
    failures = suite.findall("testcase/failure")
    assert int(suite.get("failures")) == len(failures) == 6  # board-a's six variants, latency
    assert {c.get("classname").split(".")[0] for c in suite.iter("testcase") if c.find("failure") is not None} \
        == {"board-a"}
    text = md.read_text()
    assert text.startswith("## bench compare: REGRESSION") and "| board-a / dense" in text


def test_the_slow_run_against_the_fast_one_is_an_improvement(store: ReportStore) -> None:
    result = compare(load_bundle([store.slow], store.url), load_bundle([store.base], store.url))
    assert result.exit_code == 0
    assert {(r.cell.device, r.metric) for r in result.improvements} == {("board-a", "latency")}


def test_an_exported_baseline_works_like_the_run(store: ReportStore, tmp_path: Path) -> None:
    out = tmp_path / "baseline.json.gz"
    done = run_bench("export", store.base, "--out", str(out), "--store", store.url, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == str(out)
    assert run_bench("compare", str(out), store.base, "--store", store.url, cwd=tmp_path).returncode == 0
    assert run_bench("compare", str(out), store.slow, "--store", store.url, cwd=tmp_path).returncode == 1


def test_a_change_past_the_threshold_but_within_the_noise_is_not_a_regression() -> None:
    rng = np.random.default_rng(0)
    noisy_base = rng.normal(100, 40, 8)
    noisy_current = noisy_base * 1.08  # +8 % on the median, from 8 very noisy samples each
    result = compare(_bundle(noisy_base, "a"), _bundle(noisy_current, "b"), parse_thresholds(["latency=+5%"]))
    latency = next(r for r in result.results if r.metric == "latency")
    assert latency.change == pytest.approx(8.0, abs=0.5)
    assert latency.verdict == "not significant" and latency.p_value > 0.01 and result.exit_code == 0


def test_rank_test_agrees_with_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(3)
    for x, y in [(rng.normal(0, 1, 30), rng.normal(0.6, 1, 45)),
                 (rng.integers(0, 4, 60).astype(float), rng.integers(1, 5, 25).astype(float))]:
        ours = mann_whitney_u(x, y)
        theirs = stats.mannwhitneyu(x, y, method="asymptotic", use_continuity=True, alternative="two-sided")
        assert ours.u == pytest.approx(theirs.statistic) and ours.p == pytest.approx(theirs.pvalue, rel=1e-9)
    assert mann_whitney_u(np.ones(5), np.ones(9)).p == 1.0


@pytest.mark.parametrize("text,expected", [
    ("latency=+5%", (5.0, "%")), ("ram=+0", (0.0, "")), ("accuracy=-0.5pp", (0.5, "pp")),
    ("flash=1024", (1024.0, "")), ("energy=off", (None, "")), ("LATENCY = 10 %", (10.0, "%")),
])
def test_thresholds_parse(text: str, expected: tuple) -> None:
    t = parse_threshold(text)
    assert (t.limit, t.unit) == expected


@pytest.mark.parametrize("text,message", [
    ("speed=+5%", "unknown metric 'speed'"), ("latency=fast", "malformed"), ("latency+5%", "malformed"),
    ("latency=-5%", "is an increase"), ("accuracy=+1pp", "is a decrease"), ("accuracy=0.5", "takes"),
    ("ram=+5pp", "takes"),
])
def test_bad_thresholds_are_usage_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_threshold(text)


def test_bad_threshold_on_the_command_line_exits_2(store: ReportStore, tmp_path: Path) -> None:
    done = run_bench("compare", store.base, store.base, "--store", store.url, "-t", "speed=+5%", cwd=tmp_path)
    assert done.returncode == 2 and "unknown metric 'speed'" in done.stderr


@pytest.mark.parametrize("content,message", [(b"", "is empty"), (b"\x00\x01garbage", "not a readable bench export"),
                                             (b'{"format": "other"}', "not a bench export"), (None, "does not exist")])
def test_empty_or_unreadable_baseline_files_exit_2(store: ReportStore, tmp_path: Path, content: bytes | None,
                                                    message: str) -> None:
    path = tmp_path / "baseline.json"
    if content is not None:
        path.write_bytes(content)
    done = run_bench("compare", str(path), store.base, "--store", store.url, cwd=tmp_path)
    assert done.returncode == 2 and message in done.stderr, done.stderr


def test_unknown_run_and_no_cells_in_common_exit_2(store: ReportStore, tmp_path: Path) -> None:
    done = run_bench("compare", "no-such-run", store.base, "--store", store.url, cwd=tmp_path)
    assert done.returncode == 2 and "no-such-run" in done.stderr
    done = run_bench("compare", store.base, store.other, "--store", store.url, cwd=tmp_path)
    assert done.returncode == 2 and "no cell in common" in done.stderr
    with pytest.raises(CompareError):
        compare(load_bundle([store.base], store.url), load_bundle([store.other], store.url))


def test_cells_that_fail_now_are_regressions(store: ReportStore) -> None:
    result = compare(load_bundle([store.base], store.url), load_bundle([store.broken], store.url))
    assert result.exit_code == 1
    assert {r.verdict for r in result.regressions} == {"failed"} and len(result.regressions) == 6


@pytest.mark.parametrize("ram_change,noise,arena,verdict", [
    (60 * 1024, 256 * 1024, None, "not significant"),  # host RSS noise on `local`: a rerun is no regression
    (1024 * 1024, 256 * 1024, None, "regression"),      # past the declared floor: a regression
    (60 * 1024, None, None, "regression"),              # no floor declared: every byte counts
    (0, 256 * 1024, None, "ok"),
])
def test_ram_changes_within_the_declared_noise_floor_are_not_regressions(ram_change: int, noise: int | None,
                                                                         arena: int | None, verdict: str) -> None:
    samples = np.full(20, 100.0)
    details = {"ram_noise_bytes": noise} if noise else {}
    base = _bundle(samples, "a", ram_bytes=3_700_000, details=details)
    cur = _bundle(samples, "b", ram_bytes=3_700_000 + ram_change, details=details)
    result = compare(base, cur)  # the defaults: ram=+0
    ram = next(r for r in result.results if r.metric == "ram")
    assert ram.verdict == verdict and ram.change == ram_change
    assert result.exit_code == (1 if verdict == "regression" else 0)
    if verdict == "not significant":
        assert "noise" in ram.note and "noise floor" in ram.test


def test_an_exact_arena_figure_ignores_a_host_noise_floor() -> None:
    samples = np.full(20, 100.0)
    base = _bundle(samples, "a", ram_bytes=3_700_000, arena_bytes=2000, details={"ram_noise_bytes": 262144})
    cur = _bundle(samples, "b", ram_bytes=3_700_000, arena_bytes=2008, details={"ram_noise_bytes": 262144})
    ram = next(r for r in compare(base, cur).results if r.metric == "ram")
    assert ram.verdict == "regression" and ram.change == 8


def _bundle(samples_us: np.ndarray, run_id: str, ram_bytes: int = 10, arena_bytes: int | None = None,
            details: dict | None = None) -> RunBundle:
    """A one-cell bundle, for the statistics alone."""
    ns = np.asarray(samples_us, dtype=np.float64) * 1e3
    cell = {"run_id": run_id, "device_name": "board", "variant_name": "dense", "variant_sha256": "ab" * 32,
            "status": "ok", "method": "dense", "engine": None, "target_sparsity": 0.0, "measured_sparsity": 0.0,
            "gzip_bytes": 100, "model_bytes": 200, "latency_ns": ns, "latency_source": "measured",
            "p50_us": float(np.median(samples_us)), "ram_bytes": ram_bytes, "arena_bytes": arena_bytes,
            "accuracy": 0.9, "accuracy_n": 100, "output_agreement": None, "energy_uj": None, "estimated": False,
            "details": details or {}}
    return RunBundle(runs=[{"id": run_id}], cells=pd.DataFrame([cell]), devices=pd.DataFrame(),
                     variants=pd.DataFrame(), source="test")


def test_a_rerun_of_the_same_code_on_the_default_devices_is_not_a_regression(tmp_path: Path) -> None:
    """Two default sweeps (every built-in device that works here), compared with the default thresholds.

    Host-measured RAM moves by tens of KiB between identical runs; its declared noise floor keeps that
    from being a regression. Latency timed on this host's own clock may move with the machine's load,
    which no test may judge (a verdict on wall-clock speed), so a latency verdict on such a device is
    left out of the assertion; every other check must pass."""
    quick = ["--sparsity", "0.5", "--method", "magnitude", "--iterations", "20", "--warmup", "2", "--repeats", "1",
             "--no-report", "--json"]
    runs = []
    for _ in range(2):
        done = run_bench("sweep", *quick, cwd=tmp_path, timeout=900)
        assert done.returncode == 0, done.stderr
        runs.append(json.loads(done.stdout)["run_id"])
    compared = run_bench("compare", *runs, "--json", cwd=tmp_path)
    verdict = json.loads(compared.stdout)
    devices = {r["cell"]["device"] for r in verdict["results"]}
    assert "local" in devices and "sim" in devices
    host_timed = {k for k in registry.kinds() if registry.driver(k).times_on_host}
    judged = [r for r in verdict["results"] if not (r["metric"] == "latency" and r["cell"]["device"] in host_timed)]
    assert not [r for r in judged if r["verdict"] in ("regression", "failed")], compared.stdout
    ram = [r for r in verdict["results"] if r["metric"] == "ram" and r["cell"]["device"] == "local"]
    assert ram and all(r["verdict"] in ("ok", "not significant") for r in ram)
    if not [r for r in verdict["results"] if r["verdict"] == "regression"]:
        assert compared.returncode == 0

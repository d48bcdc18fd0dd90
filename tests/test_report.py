"""The user's story for reports: sweep, open the report, trust what it says — and every bad input."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from harness.errors import ConfigError, StoreError
from harness.report import make_report, parse_formats
from harness.report.data import load_report_data
from harness.report.figures import pareto_front
from tests.conftest import run_bench, write_config
from tests.report_store import ReportStore, build_report_store


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> ReportStore:
    return build_report_store(tmp_path_factory.mktemp("report-store"))


def test_two_runs_side_by_side_provenance_first_and_self_contained(store: ReportStore, tmp_path: Path) -> None:
    files = make_report([store.base, store.slow], store.url, tmp_path / "r")
    html = files.html.read_text()
    # Provenance before any figure, with every model's sha256 and each board labelled by its run.
    assert html.index('id="provenance"') < html.index('id="warnings"') < html.index('id="figures"')
    data = load_report_data([store.base], store.url)
    for sha in data.variants["sha256"]:
        assert sha in html
    assert f"board-a @ {store.base}" in html or "board-a @ 20" in html
    # Self-contained: every image inline, nothing fetched from anywhere.
    assert not re.search(r'(src|href)="(?!data:|#)', html)
    assert "http://" not in html and "https://" not in html
    for key in ("latency", "speedup", "memory", "size"):  # fake boards measure no accuracy or energy
        assert f'<figure id="fig-{key}"><h3>' in html
    # Figures are inline SVG (crisp, zoomable), with no script and no image fetched.
    assert html.count('<svg class="fig" role="img"') == 4 and "<img" not in html
    assert "<script" not in html.lower() and "xmlns" not in html
    # Markdown for a CI summary, and the tidy data.
    md = files.markdown.read_text()
    assert "### Original vs pruned" in md and "| dense | dense |" in md and len(md) < 100_000
    summary = pd.read_csv(tmp_path / "r" / "summary.csv")
    assert len(summary) == 2 * 2 * 6  # runs × boards × variants
    cells = pd.read_csv(tmp_path / "r" / "cells.csv")
    assert len(cells) == 2 * 2 * 6 * 2 and "latency_ns" not in cells


def test_structured_and_unstructured_are_separate_series_against_one_dense_reference(store: ReportStore) -> None:
    data = load_report_data([store.base], store.url)
    ok = data.ok_summary().set_index(["board", "variant_name"])
    assert ok.loc[("board-a", "channel-50w"), "structure"] == "structured"
    assert ok.loc[("board-a", "magnitude-75"), "structure"] == "unstructured"
    assert ok.loc[("board-a", "ptq-magnitude-75"), "series"] == "magnitude (post-training)"
    # Channel pruning removes weights: its sparsity counts them, though its measured zero share is ~0.
    assert ok.loc[("board-a", "channel-50w"), "removed_or_zero"] > 0.5
    assert ok.loc[("board-b", "dense"), "speedup"] == pytest.approx(1.0)
    assert set(ok["ref_variant"]) == {"dense"}


def test_warnings_name_estimates_noise_throttling_and_failures(store: ReportStore, tmp_path: Path) -> None:
    engine = sa.create_engine(store.url)
    with engine.begin() as conn:  # a driver that saw throttling says so in the cell's details
        conn.execute(sa.text("UPDATE measurements SET details = :d WHERE run_id = :r AND cell_key LIKE :k"),
                     {"d": '{"throttled": true, "throttle_reason": "SoC at 85 °C"}', "r": store.slow,
                      "k": "board-b|dense|%"})
    engine.dispose()
    data = load_report_data([store.slow, store.broken], store.url, cv_threshold=0.01)
    kinds = {w.kind for w in data.warnings}
    assert {"estimated", "high-cv", "throttled", "failed"} <= kinds
    assert any("SoC at 85 °C" in w.message for w in data.warnings)
    assert any("no USB device" in w.message for w in data.warnings if w.kind == "failed")


def test_a_run_with_no_successful_cell_still_renders_and_says_so(store: ReportStore, tmp_path: Path) -> None:
    done = run_bench("report", store.broken, "--store", store.url, "--out", str(tmp_path / "r"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1].endswith("report.html")
    html = (tmp_path / "r" / "report.html").read_text()
    assert "No cell of these runs finished successfully" in html and "no USB device" in html
    assert "No cell of these runs finished successfully" in (tmp_path / "r" / "summary.md").read_text()


def test_unknown_run_and_unknown_format_are_usage_errors(store: ReportStore, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no-such-run"):
        make_report(["no-such-run"], store.url, tmp_path)
    with pytest.raises(ConfigError, match="pdf"):
        parse_formats(["html,pdf"])
    done = run_bench("report", "no-such-run", "--store", store.url, cwd=tmp_path)
    assert done.returncode == 2 and "no-such-run" in done.stderr
    assert not (tmp_path / "reports").exists()


def test_sweep_ends_by_writing_the_report_and_printing_its_path(workdir: Path) -> None:
    write_config(workdir / "bench.toml", "[[devices]]\nname='f'\nkind='fake'\n[sweep]\nrepeats=1\niterations=5\n"
                 "accuracy_samples=0\nmethods=['channel']\n")
    done = run_bench("sweep", cwd=workdir)
    assert done.returncode == 0, done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("reports/") and last.endswith("/report.html")
    assert (workdir / last).is_file() and (workdir / last).with_name("summary.md").is_file()


def test_pareto_front_keeps_only_undominated_variants() -> None:
    rows = pd.DataFrame({"variant_name": list("abcd"), "p50_us": [10.0, 5.0, 7.0, 4.0],
                         "accuracy": [0.99, 0.97, 0.96, 0.90]})
    assert list(pareto_front(rows)["variant_name"]) == ["d", "b", "a"]

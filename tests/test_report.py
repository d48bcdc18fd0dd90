"""The user's story for reports: sweep, open the report, trust what it says — and every bad input."""

from __future__ import annotations

import json
import re
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.errors import ConfigError, StoreError
from harness.report import make_report, parse_formats
from harness.report.data import find_disagreements, load_report_data
from harness.report.figures import DODGE, dodge_offsets, pareto_front
from harness.report.headline import headlines
from tests.conftest import run_bench, write_config
from tests.report_store import McuRun, ReportStore, build_report_store, sweep_fake_boards


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
    data = load_report_data([store.slow, store.broken], store.url, cv_threshold=0.01)
    kinds = {w.kind for w in data.warnings}
    assert {"estimated", "high-cv", "failed"} <= kinds and "throttled" not in kinds
    assert any("no USB device" in w.message for w in data.warnings if w.kind == "failed")


def test_a_board_that_throttled_in_its_timed_window_is_warned_about_in_the_report(tmp_path: Path) -> None:
    """The thermal state travels as a driver reports it (nested before/after, vcgencmd's flags), through the
    cell's typed record and the store, to the report's warning: nothing is written into the database by hand."""
    url = f"sqlite:///{tmp_path / 'bench.db'}"
    hot = ('thermal_before = { temp_c = 79.0, throttled = "0x0" }\n'
           'thermal_after = { temp_c = 85.5, throttled = "0x50000" }')
    cool = 'thermal_before = { temp_c = 51.0, throttled = "0x0" }\nthermal_after = { temp_c = 52.0, throttled = "0x0" }'
    run = sweep_fake_boards(tmp_path, url, "thermal", [("pi-hot", 100.0, hot), ("pi-cool", 100.0, cool)])
    warned = [w for w in load_report_data([run], url).warnings if w.kind == "throttled"]
    assert warned and all(w.message.startswith("pi-hot / ") for w in warned)
    assert all("0x0 → 0x50000" in w.message and "79.0 → 85.5 °C" in w.message for w in warned)


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
    done = run_bench("report", store.base, "--store", store.url, "--accuracy-floor", "-1", cwd=tmp_path)
    assert done.returncode == 2 and "accuracy floor -1 pp" in done.stderr
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


class _Tables(HTMLParser):
    """The tables of an HTML page as lists of rows of cell text, as a reader sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _html_tables(html: str) -> list[list[list[str]]]:
    parser = _Tables()
    parser.feed(html)
    return parser.tables


def test_each_variant_shows_the_same_two_named_sparsity_figures_everywhere(store: ReportStore,
                                                                            tmp_path: Path) -> None:
    """Zero weights (of the variant's own) and removed or zero (of the dense model's): one pair of values
    per variant, under the same two names in bench show, the CSV, the board tables and the models table."""
    files = make_report([store.base], store.url, tmp_path / "r")
    summary = pd.read_csv(tmp_path / "r" / "summary.csv")
    a = summary[summary["device_name"] == "board-a"].set_index("variant_name")
    channel, dense = a.loc["channel-50w"], a.loc["dense"]
    assert channel["zero_weights"] < 0.05 and channel["removed_or_zero"] > 0.7  # channels gone, few zeros left
    assert dense["zero_weights"] == pytest.approx(dense["removed_or_zero"])  # the dense model removes nothing
    assert a.loc["magnitude-75", "zero_weights"] == pytest.approx(a.loc["magnitude-75", "removed_or_zero"])
    want = {name: [f"{r.zero_weights * 100:.1f}%", f"{r.removed_or_zero * 100:.1f}%"] for name, r in a.iterrows()}

    tables = _html_tables(files.html.read_text())
    seen = 0
    for table in tables:
        head = table[0]
        if "zero weights" not in head:
            continue
        z, r = head.index("zero weights"), head.index("removed or zero")
        assert r == z + 1 and "sparsity" not in head
        for row in table[1:]:
            if row[0] in want:
                assert [row[z], row[r]] == want[row[0]], (head, row)
                seen += 1
    assert seen >= 2 * len(want)  # board-a's and board-b's tables, and the models table
    assert "zero weights = share of the variant's own weights that are zero" in unescape(files.html.read_text())
    md = files.markdown.read_text()
    assert "| variant | method | zero weights | removed or zero |" in md

    shown = run_bench("show", store.base, "--store", store.url, "--json", cwd=tmp_path)
    rows = [r for r in json.loads(shown.stdout) if r["device_name"] == "board-a"]
    for r in rows:
        assert [f"{r['zero_weights'] * 100:.1f}%", f"{r['removed_or_zero'] * 100:.1f}%"] == want[r["variant_name"]]
    text = run_bench("show", store.base, "--store", store.url, cwd=tmp_path).stdout
    assert "zero weights" in text and "removed or zero" in text
    line = next(ln for ln in text.splitlines() if "board-a" in ln and "channel-50w" in ln)
    assert all(v in line for v in want["channel-50w"]), line


def test_series_on_the_same_points_are_drawn_apart_and_distinct_ones_are_left_alone() -> None:
    same = np.array([[50.0, 10.0], [75.0, 10.0]])
    assert dodge_offsets([same, same + np.array([0.4, 0.0])], 90.0, 5.0) == [0.0, pytest.approx(DODGE * 90.0)]
    three = dodge_offsets([same, same, same], 90.0, 5.0)
    assert len(set(three)) == 3 and three[0] == 0.0
    assert dodge_offsets([same, same + np.array([0.0, 3.0])], 90.0, 5.0) == [0.0, 0.0]


@pytest.mark.slow
def test_mcu_report_has_a_headline_per_board_flags_sim_against_qemu_and_shows_load_time_and_lsb(
        mcu_run: McuRun, tmp_path: Path) -> None:
    data = load_report_data([mcu_run.run_id], mcu_run.url)
    heads = {h.board: h for h in headlines(data)}
    assert set(heads) == {"sim", "qemu"}
    for board in ("sim", "qemu"):  # channel pruning wins on a board whose cost grows with MACs
        assert heads[board].floor.startswith("top-1 ≥ ") and "− 1 pp" in heads[board].floor
        assert heads[board].best["fastest"].startswith("channel-50w: ")
        assert heads[board].best["smallest"].startswith("channel-50w: ")
    assert heads["sim"].best["least energy"].startswith("channel-50w: ")
    assert heads["qemu"].best["least energy"] == "not measured"
    # The post-training variant lost 25 pp: below the floor, it wins nothing even when the floor is 20 pp.
    assert not any("ptq-" in v for h in headlines(data, floor_pp=20) for v in h.best.values())

    # An estimate (sim) and an emulation (qemu) of one core, several times apart in cycles: flagged.
    (d,) = find_disagreements(data)
    assert (d.estimated, d.emulated, d.core, d.unit) == ("sim", "qemu", "cortex-m4", "cycles") and d.ratio > 2
    (w,) = [w for w in data.warnings if w.kind == "disagree"]
    assert "sim (estimated) and qemu (emulated)" in w.message and "cortex-m4" in w.message

    files = make_report([mcu_run.run_id], mcu_run.url, tmp_path / "r", ("md", "csv"))
    md = files.markdown.read_text()
    assert "### Headline, per board" in md and "| load ms |" in md and "| max Δ LSB |" in md
    assert "| disagree | sim |" in md
    summary = pd.read_csv(tmp_path / "r" / "summary.csv")
    assert summary["load_time_ms"].gt(0).all() and summary["output_max_lsb"].eq(0).all()  # bit-exact to TFLM


def test_boards_without_accuracy_or_a_shared_core_get_no_floor_and_no_disagreement(store: ReportStore) -> None:
    data = load_report_data([store.base], store.url)
    assert not [w for w in data.warnings if w.kind == "disagree"]
    for h in headlines(data):
        assert h.floor.startswith("none: no accuracy measured") and h.best["least energy"] == "not measured"

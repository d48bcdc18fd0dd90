"""The HTML report in a real browser: headless Chromium opens it from disk with the network unused, every
figure renders, the console stays clean, no legend or label is cut off and no series hides another.
A screenshot of each page is kept under tests/artifacts/."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.report import make_report
from tests.browser import Browser, find_chromium
from tests.report_store import McuRun, build_report_store

pytest.importorskip("websocket", reason="websocket-client (the test extra) drives Chromium")
CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (scripts/install --test)")

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "tests" / "artifacts"
EXAMPLE = REPO / "reports" / "example" / "report.html"

#: Every inline figure as the page laid it out, with what a reader could miss in it: text outside the
#: figure's box (cut off), the legend's box, Pareto labels outside their panel, and the centre of every
#: marker of every series, per panel. Ids are `<figure key>--ax<N>-…` (harness.report.figures).
_FIGURES = """(() => {
  const inside = (r, box) => r.left >= box.left - 0.5 && r.right <= box.right + 0.5 &&
                             r.top >= box.top - 0.5 && r.bottom <= box.bottom + 0.5;
  return Array.from(document.querySelectorAll('svg.fig')).map(svg => {
    const box = svg.getBoundingClientRect();
    const key = svg.closest('figure').id.replace(/^fig-/, '');
    const legend = svg.querySelector('[id="' + key + '--legend"]');
    const texts = Array.from(svg.querySelectorAll('text')).filter(t => t.textContent.trim());
    const labels = Array.from(svg.querySelectorAll('[id*="-pareto-label-"]')).map(l => {
      const ax = l.id.split('--')[1].split('-')[0];
      const frame = svg.querySelector('[id="' + key + '--' + ax + '-frame"]');
      return {text: l.textContent, inFrame: inside(l.getBoundingClientRect(), frame.getBoundingClientRect())};
    });
    const series = {};
    for (const g of svg.querySelectorAll('[id*="-series-"]')) {
      const [ax, name] = g.id.split('--')[1].split('-series-');
      (series[ax] = series[ax] || {})[name] = Array.from(g.querySelectorAll('use')).map(u => {
        const r = u.getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; });
    }
    return {key, width: box.width, height: box.height, texts: texts.length,
            clipped: texts.filter(t => !inside(t.getBoundingClientRect(), box)).map(t => t.textContent),
            legend: legend !== null, legendInside: legend !== null && inside(legend.getBoundingClientRect(), box),
            labels, series, dense: svg.querySelectorAll('[id$="-dense"]').length};
  });
})()"""


def _check_page(browser: Browser, page: Path, screenshot: Path) -> list[dict]:
    browser.open(page.resolve().as_uri())
    figures = browser.evaluate(_FIGURES)
    browser.screenshot(screenshot)
    assert browser.errors() == []
    outside = [u for u in browser.requested_urls() if not u.startswith(("file:", "data:"))]
    assert outside == [], f"the report fetched {outside}"
    assert browser.evaluate("document.images.length + document.scripts.length") == 0
    assert browser.evaluate("document.title").startswith("bench report")
    assert screenshot.stat().st_size > 10_000
    for f in figures:
        assert f["width"] > 200 and f["height"] > 100 and f["texts"] > 5, f
        assert f["clipped"] == [], f"{f['key']}: text cut off at the figure's edge: {f['clipped']}"
        assert f["legend"] and f["legendInside"], f"{f['key']}: legend missing or cut off"
        assert all(label["inFrame"] for label in f["labels"]), f"{f['key']}: {f['labels']}"
    return figures


def _hidden_series(figure: dict, tolerance_px: float = 1.5) -> list[str]:
    """Series of a panel every marker of which sits on a marker of another series (so it cannot be seen)."""
    hidden = []
    for ax, series in figure["series"].items():
        for name, points in series.items():
            for other, theirs in series.items():
                if other == name or not points:
                    continue
                covered = [any(abs(x - u) <= tolerance_px and abs(y - v) <= tolerance_px for u, v in theirs)
                           for x, y in points]
                if all(covered):
                    hidden.append(f"{figure['key']} {ax}: {name} under {other}")
    return hidden


def test_report_opens_in_chromium_with_every_figure_and_no_console_error(tmp_path: Path) -> None:
    store = build_report_store(tmp_path)
    files = make_report([store.base, store.slow], store.url, tmp_path / "report")
    with Browser(CHROMIUM) as browser:
        figures = _check_page(browser, files.html, ARTIFACTS / "report.png")
        assert [f["key"] for f in figures] == ["latency", "speedup", "memory", "size"]
        headings = browser.evaluate("Array.from(document.querySelectorAll('h2')).map(h => h.textContent)")
        assert headings[:2] == ["Provenance", "Warnings"]
        if EXAMPLE.exists():  # the committed example a visitor opens first
            example = _check_page(browser, EXAMPLE, ARTIFACTS / "example-report.png")
            assert _hidden_series_all(example) == []


def _hidden_series_all(figures: list[dict]) -> list[str]:
    return [h for f in figures for h in _hidden_series(f)]


@pytest.mark.slow
def test_every_figure_of_an_mcu_report_shows_every_series_and_every_label(mcu_run: McuRun,
                                                                          tmp_path: Path) -> None:
    """sim + qemu with accuracy and the simulator's meter: all seven figures, the energy one with a single
    panel (its legend once ran off the figure), fine-tuned and post-training magnitude costing the same."""
    files = make_report([mcu_run.run_id], mcu_run.url, tmp_path / "report", ("html",))
    with Browser(CHROMIUM) as browser:
        figures = _check_page(browser, files.html, ARTIFACTS / "mcu-report.png")
    keys = [f["key"] for f in figures]
    assert keys == ["latency", "speedup", "memory", "size", "energy", "accuracy", "pareto"]
    assert _hidden_series_all(figures) == []
    for f in figures:
        assert f["dense"] >= 1, f"{f['key']}: the dense model is not marked"
        panels = f["series"].values()
        assert all({"magnitude-fine-tuned", "magnitude-post-training"} <= set(p) for p in panels), f["key"]
    pareto = next(f for f in figures if f["key"] == "pareto")
    assert pareto["labels"], "the Pareto front names its variants"

"""The HTML report in a real browser: headless Chromium opens it from disk with the network unused, every
figure decodes, the console stays clean. A screenshot of each page is kept under tests/artifacts/."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.report import make_report
from tests.browser import Browser, find_chromium
from tests.report_store import build_report_store

pytest.importorskip("websocket", reason="websocket-client (the test extra) drives Chromium")
CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (scripts/install --test)")

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "tests" / "artifacts"
EXAMPLE = REPO / "reports" / "example" / "report.html"

#: Every image decoded, and its size as the page laid it out.
_IMAGES = """Array.from(document.images).map(i => ({src: i.src.slice(0, 22), complete: i.complete,
    width: i.naturalWidth, height: i.naturalHeight}))"""


def _check_page(browser: Browser, page: Path, screenshot: Path) -> list[dict]:
    browser.open(page.resolve().as_uri())
    images = browser.evaluate(_IMAGES)
    browser.screenshot(screenshot)
    assert browser.errors() == []
    outside = [u for u in browser.requested_urls() if not u.startswith(("file:", "data:"))]
    assert outside == [], f"the report fetched {outside}"
    assert images and all(i["complete"] and i["width"] > 0 and i["height"] > 0 for i in images), images
    assert all(i["src"].startswith("data:image/png;base64") for i in images)
    assert browser.evaluate("document.title").startswith("bench report")
    assert screenshot.stat().st_size > 10_000
    return images


def test_report_opens_in_chromium_with_every_figure_and_no_console_error(tmp_path: Path) -> None:
    store = build_report_store(tmp_path)
    files = make_report([store.base, store.slow], store.url, tmp_path / "report")
    with Browser(CHROMIUM) as browser:
        images = _check_page(browser, files.html, ARTIFACTS / "report.png")
        assert len(images) == 4
        headings = browser.evaluate("Array.from(document.querySelectorAll('h2')).map(h => h.textContent)")
        assert headings[:2] == ["Provenance", "Warnings"]
        if EXAMPLE.exists():  # the committed example a visitor opens first
            _check_page(browser, EXAMPLE, ARTIFACTS / "example-report.png")

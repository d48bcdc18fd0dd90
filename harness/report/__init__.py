"""Reports of one or several runs: a self-contained HTML page, a Markdown summary, the tidy data as CSV.

    >>> from harness.report import make_report
    >>> files = make_report(["20261123-183820-de5a"], "sqlite:///bench.db")   # -> reports/<run>/
    >>> files.html
    PosixPath('reports/20261123-183820-de5a/report.html')

The package is split by job: `data` (read and derive, warnings), `figures` (matplotlib → SVG), `tables`,
`provenance` and `headline` (display rows), `html`, `markdown` and `tidy` (writers). Only this module
writes files.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from harness import __version__
from harness.bundle import RunBundle, load_bundle
from harness.config import DEFAULT_STORE_URL
from harness.errors import ConfigError
from harness.report.data import DEFAULT_CV_THRESHOLD, ReportData, build_report_data
from harness.report.headline import DEFAULT_ACCURACY_FLOOR_PP
from harness.report.html import render_html
from harness.report.markdown import render_markdown
from harness.report.tidy import write_tidy

log = logging.getLogger(__name__)

FORMATS = ("html", "md", "csv")
DEFAULT_FORMATS = FORMATS
REPORTS_DIR = Path("reports")


@dataclass(frozen=True)
class ReportFiles:
    out_dir: Path
    html: Path | None = None
    markdown: Path | None = None
    data: list[Path] = field(default_factory=list)
    has_results: bool = True
    warnings: int = 0


def parse_formats(spec: Iterable[str]) -> tuple[str, ...]:
    """`html,md` or repeated values; an unknown format is a usage error naming the known ones."""
    wanted: list[str] = []
    for item in spec:
        for f in item.split(","):
            f = f.strip().lower()
            f = {"markdown": "md", "htm": "html"}.get(f, f)
            if not f:
                continue
            if f not in FORMATS:
                raise ConfigError(f"unknown report format {f!r}.", hint=f"Known formats: {', '.join(FORMATS)}.")
            if f not in wanted:
                wanted.append(f)
    if not wanted:
        raise ConfigError("no report format given.", hint=f"Known formats: {', '.join(FORMATS)}.")
    return tuple(wanted)


def default_out_dir(run_ids: Sequence[str], base: Path = REPORTS_DIR) -> Path:
    name = "+".join(run_ids) if len(run_ids) <= 3 else f"{run_ids[0]}+{len(run_ids) - 1}-more"
    return base / name


def make_report(run_ids: str | Sequence[str], store_url: str = DEFAULT_STORE_URL, out_dir: Path | None = None,
                formats: Iterable[str] = DEFAULT_FORMATS, *, cv_threshold: float = DEFAULT_CV_THRESHOLD,
                accuracy_floor_pp: float = DEFAULT_ACCURACY_FLOOR_PP, regenerate: str | None = None) -> ReportFiles:
    """Write the report of runs in the store (StoreError for an unknown run; an empty run still renders)."""
    ids = [run_ids] if isinstance(run_ids, str) else list(run_ids)
    bundle = load_bundle(ids, store_url)
    command = regenerate or f"bench report {' '.join(ids)} --store {store_url}"
    return make_report_from_bundle(bundle, out_dir, formats, cv_threshold=cv_threshold,
                                   accuracy_floor_pp=accuracy_floor_pp, regenerate=command)


def make_report_from_bundle(bundle: RunBundle, out_dir: Path | None = None,
                            formats: Iterable[str] = DEFAULT_FORMATS, *,
                            cv_threshold: float = DEFAULT_CV_THRESHOLD,
                            accuracy_floor_pp: float = DEFAULT_ACCURACY_FLOOR_PP,
                            regenerate: str = "") -> ReportFiles:
    """The same report from an already loaded bundle (for example an exported baseline file)."""
    wanted = parse_formats(formats)
    if not 0 <= accuracy_floor_pp <= 100:
        raise ConfigError(f"accuracy floor {accuracy_floor_pp:g} pp is outside [0, 100].",
                          hint="Give the tolerance below the dense model's top-1 in percentage points, e.g. 1.")
    t0 = time.perf_counter()
    data = build_report_data(bundle, cv_threshold=cv_threshold)
    data.accuracy_floor_pp = accuracy_floor_pp
    out = out_dir if out_dir is not None else default_out_dir(data.run_ids)
    out.mkdir(parents=True, exist_ok=True)
    title = _title(data)
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC") + f" by bench {__version__}"
    regenerate = regenerate or f"bench report {' '.join(data.run_ids)}"
    html_path = md_path = None
    tidy: list[Path] = []
    if "html" in wanted:
        # matplotlib loads only when figures are drawn: every `bench` command imports this package.
        from harness.report.figures import make_figures

        figures = make_figures(data)
        html_path = out / "report.html"
        html_path.write_text(render_html(data, figures, title=title, generated=generated, regenerate=regenerate),
                             encoding="utf-8")
    if "md" in wanted:
        md_path = out / "summary.md"
        md_path.write_text(render_markdown(data, title=title, generated=generated, regenerate=regenerate,
                                           html_name="report.html" if html_path else None), encoding="utf-8")
    if "csv" in wanted:
        tidy = write_tidy(data, out)
    log.info("report of %s written to %s in %.2f s", ", ".join(data.run_ids), out, time.perf_counter() - t0)
    return ReportFiles(out_dir=out, html=html_path, markdown=md_path, data=tidy, has_results=data.has_results,
                       warnings=len(data.warnings))


def _title(data: ReportData) -> str:
    runs = ", ".join(data.run_ids)
    return f"bench report — run{'s' if len(data.run_ids) > 1 else ''} {runs}"


__all__ = ["DEFAULT_FORMATS", "FORMATS", "ReportData", "ReportFiles", "default_out_dir", "make_report",
           "make_report_from_bundle", "parse_formats"]

"""`bench report`, `bench compare` and `bench export`: argument adapters over harness.report,
harness.compare and harness.bundle. Library errors (harness.errors types) reach the main CLI, which
prints them and exits with their code; `compare` itself exits 1 on a regression.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from benchcore.metrics import default_thresholds
from harness.defaults import DEFAULT_ALPHA, DEFAULT_CV_THRESHOLD

# Each command imports what it uses when it runs, so `bench --help` stays light.
DEFAULT_THRESHOLDS = default_thresholds()

console = Console(width=None if sys.stdout.isatty() else 200)

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="bench.toml (default: ./bench.toml if present)")]
StoreOpt = Annotated[str | None, typer.Option("--store", help="results store URL (default: from the config)")]


def _store_url(config_path: Path | None, store: str | None) -> str:
    from harness.config import resolve_config

    return store or resolve_config(config_path).store.url


def report_command(
    runs: Annotated[list[str] | None, typer.Argument(help="run ids, shown side by side (default: the latest)")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="directory (default: reports/<run>/)")] = None,
    formats: Annotated[list[str] | None, typer.Option("--format", "-f", help="html,md,csv (default: all)")] = None,
    cv_threshold: Annotated[float, typer.Option(help="warn above this coefficient of variation")] =
        DEFAULT_CV_THRESHOLD,
    config_path: ConfigOpt = None,
    store: StoreOpt = None,
) -> None:
    """Write a run's report: self-contained HTML with figures, a Markdown summary, the tidy data as CSV."""
    from harness import results
    from harness.report import default_out_dir, make_report, parse_formats

    url = _store_url(config_path, store)
    wanted = parse_formats(formats or ["html,md,csv"])
    ids = list(runs) if runs else [results.latest_run(url)]
    files = make_report(ids, url, out if out is not None else default_out_dir(ids), wanted,
                        cv_threshold=cv_threshold)
    if not files.has_results:
        console.print("[yellow]no cell of these runs finished successfully: the report says so and lists the "
                      "failures.")
    for path in [*files.data, files.markdown]:
        if path is not None:
            console.print(f"wrote {escape(str(path))}", highlight=False)
    if files.html is not None:  # last line: the page to open (scripts take it with `tail -1`)
        console.print(str(files.html), highlight=False, soft_wrap=True)


def compare_command(
    baseline: Annotated[str, typer.Argument(help="run id, `latest`, or a file from `bench export`")],
    current: Annotated[str, typer.Argument(help="run id, `latest` (default), or an exported file")] = "latest",
    threshold: Annotated[list[str] | None, typer.Option(
        "--threshold", "-t", help=f"METRIC=[+|-]VALUE[%|pp] or METRIC=off (repeatable); defaults: "
                                  f"{' '.join(DEFAULT_THRESHOLDS)}")] = None,
    alpha: Annotated[float, typer.Option(help="significance level of the latency test")] = DEFAULT_ALPHA,
    junit: Annotated[Path | None, typer.Option("--junit", help="write JUnit XML here")] = None,
    markdown: Annotated[Path | None, typer.Option("--markdown", help="write the Markdown summary here")] = None,
    show_all: Annotated[bool, typer.Option("--all", help="list checks within their threshold too")] = False,
    config_path: ConfigOpt = None,
    store: StoreOpt = None,
) -> None:
    """Compare CURRENT against BASELINE cell by cell; exit 1 on a significant regression past a threshold."""
    from harness.compare import compare, parse_thresholds, resolve_bundle
    from harness.compare_output import COLUMNS, headline, rows, tests_text, to_markdown, write_junit

    url = _store_url(config_path, store)
    thresholds = parse_thresholds(threshold or [])
    result = compare(resolve_bundle(baseline, url), resolve_bundle(current, url), thresholds, alpha)
    table = Table(title=f"{result.current} against {result.baseline}", title_justify="left", header_style="bold")
    for col in COLUMNS:
        table.add_column(col, justify="right" if col in ("baseline", "current", "change", "p") else "left")
    colour = {"regression": "red", "failed": "red", "improvement": "green"}
    for row in rows(result, everything=show_all):
        style = next((c for v, c in colour.items() if row[-1].startswith(v)), None)
        table.add_row(*map(escape, row), style=style)
    if table.row_count:
        console.print(table)
    else:
        console.print(f"{escape(result.current)} against {escape(result.baseline)}: every check is within its "
                      "threshold (--all lists them).", highlight=False)
    for text in tests_text(result):
        console.print(f"test: {escape(text)}", highlight=False)
    for label, keys in (("only in the baseline", result.only_baseline), ("only in the current", result.only_current)):
        if keys:
            console.print(f"{label} (not compared): {escape(', '.join(map(str, keys)))}", highlight=False)
    if markdown is not None:
        markdown.parent.mkdir(parents=True, exist_ok=True)
        markdown.write_text(to_markdown(result), encoding="utf-8")
        console.print(f"wrote {escape(str(markdown))}", highlight=False)
    if junit is not None:
        console.print(f"wrote {escape(str(write_junit(result, junit)))}", highlight=False)
    console.print(("[bold red]" if result.regressions else "[bold green]") + escape(headline(result)))
    raise typer.Exit(result.exit_code)


def export_command(
    run: Annotated[str | None, typer.Argument(help="run id (default: the latest)")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="file to write (.json, or .json.gz compressed)")] =
        Path("baseline.json"),
    config_path: ConfigOpt = None,
    store: StoreOpt = None,
) -> None:
    """Export a run with every latency sample, to keep as a baseline (for example a CI artifact)."""
    from harness import results
    from harness.bundle import load_bundle, write_bundle

    url = _store_url(config_path, store)
    bundle = load_bundle([run or results.latest_run(url)], url)
    path = write_bundle(bundle, out)
    console.print(f"exported run {bundle.run_ids[0]} ({len(bundle.cells)} cells) to", highlight=False)
    console.print(str(path), highlight=False, soft_wrap=True)

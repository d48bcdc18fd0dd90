"""`bench report`, `bench compare` and `bench export`: argument adapters over harness.report,
harness.compare and harness.bundle. Library errors (harness.errors types) reach the main CLI, which
prints them and exits with their code; `compare` itself exits 1 on a regression.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from benchcore.metrics import default_thresholds
from harness.defaults import DEFAULT_ACCURACY_FLOOR_PP, DEFAULT_ALPHA, DEFAULT_CV_THRESHOLD

if TYPE_CHECKING:
    from harness.table import Col

# Each command imports what it uses when it runs (the tables too), so `bench --help` stays light.
DEFAULT_THRESHOLDS = default_thresholds()
#: compare's table columns (harness.compare_output.COLUMNS, restated here so --help loads no pandas).
COMPARE_COLUMNS = ["cell", "metric", "baseline", "current", "change", "threshold", "p", "verdict"]

console = Console(width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 200)

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="bench.toml (default: ./bench.toml if present)")]
StoreOpt = Annotated[str | None, typer.Option("--store", help="results store URL (default: from the config)")]


def _store_url(config_path: Path | None, store: str | None) -> str:
    from harness.config import resolve_config

    return store or resolve_config(config_path).store.url


def report_command(
    runs: Annotated[list[str] | None, typer.Argument(
        help="run ids or `latest`, shown side by side (default: the latest)")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="directory (default: reports/<run>/)")] = None,
    formats: Annotated[list[str] | None, typer.Option("--format", "-f", help="html,md,csv (default: all)")] = None,
    cv_threshold: Annotated[float, typer.Option(help="warn above this coefficient of variation")] =
        DEFAULT_CV_THRESHOLD,
    accuracy_floor: Annotated[float, typer.Option(
        help="headline: best variants within this many pp of the dense model's top-1")] = DEFAULT_ACCURACY_FLOOR_PP,
    config_path: ConfigOpt = None,
    store: StoreOpt = None,
) -> None:
    """Write a run's report: self-contained HTML with figures, a Markdown summary, the tidy data as CSV."""
    from harness import results
    from harness.report import default_out_dir, make_report, parse_formats

    url = _store_url(config_path, store)
    wanted = parse_formats(formats or ["html,md,csv"])
    ids = [results.resolve_run(r, url) for r in runs or [results.LATEST]]
    files = make_report(ids, url, out if out is not None else default_out_dir(ids), wanted,
                        cv_threshold=cv_threshold, accuracy_floor_pp=accuracy_floor)
    if not files.has_results:
        console.print("[yellow]no cell of these runs finished successfully: the report says so and lists the "
                      "failures.")
    for path in [*files.data, files.markdown]:
        if path is not None:
            console.print(f"wrote {escape(str(path))}", highlight=False)
    if files.html is not None:  # last line: the page to open (scripts take it with `tail -1`)
        console.print(str(files.html), highlight=False, soft_wrap=True)


def _table_columns() -> list[Col]:
    """How the compare table gives way in a narrow terminal (harness/table.py): figures are never cut."""
    from harness.table import Col

    return [Col(name, "right" if name in ("baseline", "current", "change", "p") else "left",
                figure=name not in ("cell", "verdict"), keep=keep)
            for name, keep in zip(COMPARE_COLUMNS, (-1, -1, 40, -1, -1, 20, 30, -1), strict=True)]


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
    as_json: Annotated[bool, typer.Option("--json", help="print every check as JSON instead of the table")] = False,
    config_path: ConfigOpt = None,
    store: StoreOpt = None,
) -> None:
    """Compare CURRENT against BASELINE cell by cell; exit 1 on a significant regression past a threshold."""
    from harness.compare import compare, parse_thresholds, resolve_bundle
    from harness.compare_output import headline, rows, tests_text, to_json, to_markdown, write_junit

    url = _store_url(config_path, store)
    thresholds = parse_thresholds(threshold or [])
    result = compare(resolve_bundle(baseline, url), resolve_bundle(current, url), thresholds, alpha)
    if as_json:
        if markdown is not None:
            markdown.parent.mkdir(parents=True, exist_ok=True)
            markdown.write_text(to_markdown(result), encoding="utf-8")
        if junit is not None:
            write_junit(result, junit)
        console.print_json(json.dumps(to_json(result)))
        raise typer.Exit(result.exit_code)
    colour = {"regression": "red", "failed": "red", "improvement": "green"}
    shown = rows(result, everything=show_all)
    if shown:
        from harness.table import fitted_table

        console.print(fitted_table(_table_columns(), [list(map(escape, r)) for r in shown],
                                   title=f"{result.current} against {result.baseline}", width=console.width,
                                   hint="a wider terminal or --json has them",
                                   styles=[next((c for v, c in colour.items() if r[-1].startswith(v)), None)
                                           for r in shown]))
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
    run: Annotated[str | None, typer.Argument(help="run id or `latest` (the default)")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="file to write (.json, or .json.gz compressed)")] =
        Path("baseline.json"),
    config_path: ConfigOpt = None,
    store: StoreOpt = None,
) -> None:
    """Export a run with every latency sample, to keep as a baseline (for example a CI artifact)."""
    from harness import results
    from harness.bundle import load_bundle, write_bundle

    url = _store_url(config_path, store)
    bundle = load_bundle([results.resolve_run(run, url)], url)
    path = write_bundle(bundle, out)
    console.print(f"exported run {bundle.run_ids[0]} ({len(bundle.cells)} cells) to", highlight=False)
    console.print(str(path), highlight=False, soft_wrap=True)

"""The `bench` command line: it adapts arguments and calls library functions, nothing more.

Exit codes: 0 every cell ok; 1 some cells failed; 2 usage or config error; 130 interrupted.
"""

from __future__ import annotations

import json
import logging
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape

from harness import __version__
from harness.defaults import DEFAULT_CONFIG_NAME
from harness.errors import EXIT_CELLS_FAILED, EXIT_INTERRUPTED, EXIT_OK, BenchError, ConfigError, exit_code_for

if TYPE_CHECKING:
    from harness.config import BenchConfig

# Commands import what they use when they run (pandas, SQLAlchemy, the drivers): `bench --help`
# and `bench --version` load only typer and rich.

app = typer.Typer(
    help="bench: measure what pruning buys on real hardware — latency, RAM, flash, energy, accuracy.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Tables are wide; outside a terminal (CI logs, pipes) rich would squeeze them into 80 columns.
console = Console(width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True)

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="bench.toml (default: ./bench.toml if present)")]
StoreOpt = Annotated[str | None, typer.Option("--store", help="results store URL (default: from the config)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def _version(value: bool) -> None:
    if value:
        console.print(f"bench {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="more log output (-vv for debug)")] = 0,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="show the version")
    ] = False,
) -> None:
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(level=level, format="%(name)s: %(message)s", datefmt="[%X]",
                        handlers=[RichHandler(console=err_console, show_path=False)])


def _store_url(config_path: Path | None, store: str | None) -> str:
    from harness.config import resolve_config

    return store or resolve_config(config_path).store.url


@app.command()
def sweep(
    config_path: ConfigOpt = None,
    model: Annotated[
        list[str] | None, typer.Option("--model", "-m", help=".tflite or variant manifest (repeatable)")
    ] = None,
    device: Annotated[list[str] | None, typer.Option("--device", "-d", help="device name or kind (repeatable)")] = None,
    sparsity: Annotated[list[float] | None, typer.Option("--sparsity", help="keep these target sparsities")] = None,
    method: Annotated[list[str] | None, typer.Option("--method", help="keep these pruning methods")] = None,
    repeats: Annotated[int | None, typer.Option(min=1, help="cells per (variant, device)")] = None,
    iterations: Annotated[int | None, typer.Option(min=1, help="timed inferences per cell")] = None,
    warmup: Annotated[int | None, typer.Option(min=0, help="untimed inferences per cell")] = None,
    store: StoreOpt = None,
    resume: Annotated[str | None, typer.Option(help="finish run RUN, skipping its committed cells")] = None,
    retry_failed: Annotated[bool, typer.Option(help="with --resume: measure failed cells again")] = False,
    fail_fast: Annotated[bool, typer.Option(help="stop at the first failed cell")] = False,
    report: Annotated[bool, typer.Option(help="write the HTML/Markdown/CSV report under reports/<run>/")] = True,
    cluster: Annotated[str | None, typer.Option(help="run on the lab's Dask scheduler ADDR (see 'Lab')")] = None,
    wait: Annotated[float | None, typer.Option(min=0, help="lab: wait up to SECONDS for boards another sweep "
                                                           "holds (default: refuse)")] = None,
) -> None:
    """Measure every model variant on every device and store each cell as it finishes."""
    from harness import results
    from harness.config import resolve_config
    from harness.progress import RichProgress
    from harness.sweep import run_sweep
    from harness.table import results_table

    base = resolve_config(config_path)
    on_lab = bool(cluster or base.cluster.address)
    # On the lab, --device picks among the lab's boards and pools, not this host's bench.toml.
    config = _apply_overrides(base, model, None if on_lab else device, sparsity, method, repeats,
                              iterations, warmup, store)
    command = shlex.join(["bench", *sys.argv[1:]])
    with RichProgress(err_console) as progress:
        if on_lab:
            from harness.cli_lab import lab_sweep

            outcome = lab_sweep(config, cluster, device, wait, resume, retry_failed, fail_fast, progress, command)
        else:
            outcome = run_sweep(config, resume=resume, retry_failed=retry_failed, fail_fast=fail_fast,
                                observer=progress, command=command)
    summary = results.summarize(results.load(outcome.run_id, outcome.store_url))
    console.print(results_table(summary, f"run {outcome.run_id}"))
    console.print(
        f"run [bold]{outcome.run_id}[/] {outcome.status}: {outcome.cells_ok} ok, {outcome.cells_failed} failed, "
        f"{outcome.cells_skipped} already done, of {outcome.cells_total} cells; stored in {outcome.store_url}"
    )
    if outcome.interrupted:
        console.print(f"resume with: bench sweep --resume {outcome.run_id}")
    if report:
        _write_report(outcome.run_id, outcome.store_url)
    raise typer.Exit(EXIT_INTERRUPTED if outcome.interrupted else EXIT_CELLS_FAILED if outcome.cells_failed
                     else EXIT_OK)


def _write_report(run_id: str, store_url: str) -> None:
    """The report's HTML path is the sweep's last line; a report that fails never changes the sweep's exit code."""
    try:
        from harness.report import make_report

        files = make_report([run_id], store_url)
    except (BenchError, OSError) as exc:
        err_console.print(f"[yellow]report not written: {escape(str(exc))}")
        return
    console.print(str(files.html), highlight=False, soft_wrap=True)


def _apply_overrides(config: BenchConfig, models: list[str] | None, devices: list[str] | None,
                     sparsities: list[float] | None, methods: list[str] | None, repeats: int | None,
                     iterations: int | None, warmup: int | None, store: str | None) -> BenchConfig:
    """Flags win over the file; they are validated by the same models as the file's keys."""
    from harness.config import BenchConfig, with_devices

    sweep_update: dict[str, Any] = {}
    if models:
        sweep_update["models"] = [str(Path(m).resolve()) if not m.startswith("example:") else m for m in models]
    for key, value in (("sparsities", sparsities), ("methods", methods), ("repeats", repeats),
                       ("iterations", iterations), ("warmup", warmup)):
        if value:
            sweep_update[key] = value
    data = config.model_dump()
    data["sweep"].update(sweep_update)
    if store:
        data["store"]["url"] = store
    try:
        config = BenchConfig(**data, base_dir=config.base_dir)
    except Exception as exc:  # pydantic's ValidationError, reported like a bad key in a file
        raise ConfigError(f"command-line options are invalid: {exc}") from None
    return with_devices(config, devices) if devices else config


@app.command()
def runs(config_path: ConfigOpt = None, store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """List the runs in the store."""
    from harness.store import Store

    s = Store.open(_store_url(config_path, store), create=False)
    try:
        rows = s.list_runs()
    finally:
        s.close()
    if as_json:
        console.print_json(json.dumps(rows, default=str))
        return
    from rich.table import Table

    table = Table(header_style="bold")
    for col in ("run", "started (UTC)", "status", "cells ok/failed/planned", "bench", "commit"):
        table.add_column(col)
    for r in rows:
        ok = r["cells_done"] - r["cells_failed"]
        table.add_row(r["id"], r["created_at"][:19].replace("T", " "), r["status"],
                      f"{ok}/{r['cells_failed']}/{r['n_cells']}", r["bench_version"], (r["git_commit"] or "–")[:12])
    console.print(table)


@app.command()
def show(
    run: Annotated[str | None, typer.Argument(help="run id (default: the latest)")] = None,
    config_path: ConfigOpt = None,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
    ops: Annotated[bool, typer.Option("--ops", help="show the per-op profile instead: where the time goes")] = False,
) -> None:
    """Show a run's results table, rebuilt from the store."""
    from harness import results
    from harness.table import results_table

    url = _store_url(config_path, store)
    run = run or results.latest_run(url)
    if ops:
        _show_ops(run, url, as_json)
        return
    summary = results.summarize(results.load(run, url))
    if as_json:
        console.print_json(summary.to_json(orient="records"))
        return
    console.print(results_table(summary, f"run {run}"))


def _show_ops(run: str, url: str, as_json: bool) -> None:
    from rich.table import Table

    from harness import results

    frame = results.load_ops(run, url)
    if as_json:
        console.print_json(frame.to_json(orient="records"))
        return
    if frame.empty:
        console.print(f"run {run} has no per-op profile: none of its devices could profile "
                      "(qemu, sim and serial firmware can, with op_profile = true).")
        return
    table = Table(title=f"run {run}: time per operator type, one inference", title_justify="left",
                  header_style="bold")
    for name, justify in [("device", "left"), ("variant", "left"), ("operator", "left"), ("share", "right"),
                          ("µs/inf", "right"), ("per inference", "right"), ("repeats", "right")]:
        table.add_column(name, justify=justify)
    for r in frame.itertuples(index=False):
        time_us = "–" if r.time_us != r.time_us else f"{r.time_us:.1f}"
        table.add_row(r.device_name, r.variant_name, r.op, f"{r.share * 100:.1f}%", time_us,
                      f"{r.ticks:,.0f} {r.unit}", str(r.repeats))
    console.print(table)


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="where to write it")] = Path(DEFAULT_CONFIG_NAME),
    force: Annotated[bool, typer.Option(help="overwrite an existing file")] = False,
) -> None:
    """Write a commented example bench.toml."""
    if path.exists() and not force:
        raise ConfigError(f"{str(path)!r} already exists; nothing written.", hint="Use --force to overwrite it.")
    from harness.example_config import EXAMPLE_CONFIG

    path.write_text(EXAMPLE_CONFIG)
    console.print(f"wrote {path}")


def _mount_optional_commands() -> None:
    """Each command family lives in its own module; the main CLI only mounts them."""
    from harness import cli_devices, cli_firmware, cli_lab, cli_models, cli_report

    app.command("report")(cli_report.report_command)
    app.command("compare")(cli_report.compare_command)
    app.command("export")(cli_report.export_command)
    app.add_typer(cli_devices.devices_app, name="devices")
    app.add_typer(cli_firmware.firmware_app, name="firmware")
    app.add_typer(cli_models.models_app, name="models")
    app.add_typer(cli_lab.lab_app, name="lab")
    app.command("prune")(cli_models.prune_command)


_mount_optional_commands()


def main() -> None:
    try:
        # Without standalone mode click returns typer.Exit's code instead of exiting with it.
        code = app(standalone_mode=False)
    except BenchError as exc:
        err_console.print("[bold red]error:[/] " + escape(exc.message + (f"\n{exc.hint}" if exc.hint else "")),
                          highlight=False)
        sys.exit(exit_code_for(exc))
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("aborted")
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:  # click's usage errors arrive here in non-standalone mode
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
    sys.exit(code if isinstance(code, int) else EXIT_OK)

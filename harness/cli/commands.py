"""The `bench` typer app: it adapts arguments and calls library functions, nothing more.

harness/cli.py is the entry point; it answers `bench --version` itself and imports this module for
everything else. Exit codes: 0 every cell ok; 1 some cells failed; 2 usage or config error; 130 interrupted.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from harness import __version__
from harness.cli import PROG_NAME
from harness.defaults import DEFAULT_CONFIG_NAME
from harness.errors import (
    EXIT_CELLS_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    BenchError,
    ConfigError,
    exit_code_for,
)

if TYPE_CHECKING:
    from harness.config import BenchConfig

# Commands import what they use when they run (pandas, SQLAlchemy, the drivers): `bench --help`
# loads only typer, rich and the command modules, and `bench --version` not even those (harness/cli.py).

app = typer.Typer(
    help="bench: measure what pruning buys on real hardware — latency, RAM, flash, energy, accuracy.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
# Tables are wide; outside a terminal (CI logs, pipes) rich would squeeze them into 80 columns, so there
# they get 200 unless COLUMNS says otherwise. In a terminal, tables fit its width (harness/table.py).
console = Console(width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 200)
err_console = Console(stderr=True)

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="bench.toml (default: ./bench.toml if present)")]
StoreOpt = Annotated[str | None, typer.Option("--store", help="results store URL (default: from the config)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def _version(value: bool) -> None:
    if value:  # `bench --version` alone never gets here (harness/cli.py); `bench -v --version` does
        console.print(f"{PROG_NAME} {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _main(
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="more log output (-vv for debug)")] = 0,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="show the version")
    ] = False,
) -> None:
    import logging

    from rich.logging import RichHandler

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
    min_seconds: Annotated[float | None, typer.Option(
        min=0.0, help="...and keep timing each cell until this many seconds were spent")] = None,
    warmup: Annotated[int | None, typer.Option(min=0, help="untimed inferences per cell")] = None,
    threads: Annotated[int | None, typer.Option(
        min=1, help="inference threads, on every device whose kind takes `threads` (local, ssh)")] = None,
    store: StoreOpt = None,
    resume: Annotated[str | None, typer.Option(help="finish run RUN (or `latest`), skip its done cells")] = None,
    retry_failed: Annotated[bool, typer.Option(help="with --resume: measure failed cells again")] = False,
    fail_fast: Annotated[bool, typer.Option(help="stop at the first failed cell")] = False,
    report: Annotated[bool, typer.Option(help="write the HTML/Markdown/CSV report under reports/<run>/")] = True,
    mlperf_rules: Annotated[bool, typer.Option("--mlperf-rules", help="mlperf devices: 5 windows of >= 10 s "
                                               "each, as MLCommons Tiny submissions require")] = False,
    cluster: Annotated[str | None, typer.Option(help="run on the lab's Dask scheduler ADDR (see 'Lab')")] = None,
    wait: Annotated[float | None, typer.Option(min=0, help="lab: wait up to SECONDS for boards another sweep "
                                                           "holds (default: refuse)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the run id, status and cell counts as JSON "
                                                         "instead of the table")] = False,
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
                              iterations, warmup, store, min_seconds=min_seconds)
    if threads is not None:
        config = _with_device_setting(config, "threads", threads, flag="--threads")
    if mlperf_rules:
        from harness.config import with_mlperf_rules

        config = with_mlperf_rules(config)
    command = shlex.join(["bench", *sys.argv[1:]])
    if resume is not None:
        resume = results.resolve_run(resume, config.store.url)
    with RichProgress(err_console) as progress:
        if on_lab:
            from harness.cli.lab import lab_sweep

            outcome = lab_sweep(config, cluster, device, wait, resume, retry_failed, fail_fast, progress, command)
        else:
            outcome = run_sweep(config, resume=resume, retry_failed=retry_failed, fail_fast=fail_fast,
                                observer=progress, command=command)
    code = (EXIT_INTERRUPTED if outcome.interrupted else EXIT_CELLS_FAILED if outcome.cells_failed else EXIT_OK)
    if as_json:
        html = _write_report(outcome.run_id, outcome.store_url, announce=False) if report else None
        console.print_json(json.dumps({
            "run_id": outcome.run_id, "status": outcome.status, "store": outcome.store_url,
            "cells": {"total": outcome.cells_total, "ok": outcome.cells_ok, "failed": outcome.cells_failed,
                      "already_done": outcome.cells_skipped},
            "report": str(html) if html is not None else None, "exit_code": code,
        }))
        raise typer.Exit(code)
    summary = results.summarize(results.load(outcome.run_id, outcome.store_url))
    console.print(results_table(summary, f"run {outcome.run_id}", width=console.width))
    console.print(
        f"run [bold]{outcome.run_id}[/] {outcome.status}: {outcome.cells_ok} ok, {outcome.cells_failed} failed, "
        f"{outcome.cells_skipped} already done, of {outcome.cells_total} cells; stored in {outcome.store_url}"
    )
    if outcome.interrupted:
        console.print(f"resume with: bench sweep --resume {outcome.run_id}")
    if report:
        _write_report(outcome.run_id, outcome.store_url)
    raise typer.Exit(code)


def _write_report(run_id: str, store_url: str, announce: bool = True) -> Path | None:
    """The report's HTML path is the sweep's last line; a report that fails never changes the sweep's exit code."""
    try:
        from harness.report import make_report

        files = make_report([run_id], store_url)
    except (BenchError, OSError) as exc:
        err_console.print(f"[yellow]report not written: {escape(str(exc))}")
        return None
    if announce:
        console.print(str(files.html), highlight=False, soft_wrap=True)
    return files.html


def _apply_overrides(config: BenchConfig, models: list[str] | None, devices: list[str] | None,
                     sparsities: list[float] | None, methods: list[str] | None, repeats: int | None,
                     iterations: int | None, warmup: int | None, store: str | None, *,
                     min_seconds: float | None = None) -> BenchConfig:
    """Flags win over the file; they are validated by the same models as the file's keys."""
    from harness.config import BenchConfig, with_devices

    sweep_update: dict[str, Any] = {}
    if models:
        sweep_update["models"] = [str(Path(m).resolve()) if not m.startswith("example:") else m for m in models]
    for key, value in (("sparsities", sparsities), ("methods", methods), ("repeats", repeats),
                       ("iterations", iterations), ("warmup", warmup), ("min_seconds", min_seconds)):
        if value is not None and value != []:
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


def _with_device_setting(config: BenchConfig, key: str, value: Any, flag: str) -> BenchConfig:
    """Set one driver setting on every device whose kind's settings have it (from the drivers' models,
    not a list of kinds); a flag no selected device takes is a usage error, not silently ignored."""
    from devices import registry
    from harness.config import validate_device

    takers = [d for d in config.devices if key in registry.driver(d.kind).settings.model_fields]
    if not takers:
        kinds = ", ".join(sorted({d.kind for d in config.devices})) or "none"
        raise ConfigError(f"{flag}: none of the selected devices (kinds: {kinds}) takes `{key}`.",
                          hint=f"Kinds that do: {', '.join(_kinds_with_setting(key))}; pick one with --device.")
    devices = []
    for dev in config.devices:
        if dev in takers:
            dev = dev.model_copy(update={"settings": {**dev.settings, key: value}})
            validate_device(dev, f"{flag} on device {dev.name!r}", "command line")
        devices.append(dev)
    return config.model_copy(update={"devices": devices})


def _kinds_with_setting(key: str) -> list[str]:
    from devices import registry

    return [k for k in registry.kinds() if key in registry.driver(k).settings.model_fields]


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
    from harness.table import Col, fitted_table

    cols = [Col("run", "left", keep=-1), Col("started (UTC)", "left", keep=30), Col("status", "left", keep=-1),
            Col("cells ok/failed/planned", keep=-1), Col("bench", "left", keep=20), Col("commit", "left", keep=10)]
    table_rows = [[r["id"], r["created_at"][:19].replace("T", " "), r["status"],
                   f"{r['cells_done'] - r['cells_failed']}/{r['cells_failed']}/{r['n_cells']}", r["bench_version"],
                   (r["git_commit"] or "–")[:12]] for r in rows]
    console.print(fitted_table(cols, [list(map(escape, r)) for r in table_rows], width=console.width,
                               hint="--json has them"))


@app.command()
def show(
    run: Annotated[str | None, typer.Argument(help="run id or `latest` (the default)")] = None,
    config_path: ConfigOpt = None,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
    ops: Annotated[bool, typer.Option("--ops", help="show the per-op profile instead: where the time goes")] = False,
) -> None:
    """Show a run's results table, rebuilt from the store."""
    from harness import results
    from harness.table import results_table

    url = _store_url(config_path, store)
    run = results.resolve_run(run, url)
    if ops:
        _show_ops(run, url, as_json)
        return
    summary = results.summarize(results.load(run, url))
    if as_json:
        console.print_json(summary.to_json(orient="records"))
        return
    console.print(results_table(summary, f"run {run}", width=console.width))


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
    from harness.cli import devices as cli_devices
    from harness.cli import firmware as cli_firmware
    from harness.cli import lab as cli_lab
    from harness.cli import models as cli_models
    from harness.cli import report as cli_report

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
        code = app(standalone_mode=False, prog_name=PROG_NAME)
    except BenchError as exc:
        err_console.print("[bold red]error:[/] " + escape(exc.message + (f"\n{exc.hint}" if exc.hint else "")),
                          highlight=False, soft_wrap=True)
        sys.exit(exit_code_for(exc))
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:  # a prompt answered with end of input
        err_console.print("aborted")
        sys.exit(EXIT_INTERRUPTED)
    except KeyboardInterrupt:
        err_console.print("aborted")
        sys.exit(EXIT_INTERRUPTED)
    except typer.TyperException as exc:  # the vendored click's usage errors (bad flag, value, command)
        if exc.format_message().strip():  # empty: no command given, and the help was shown instead
            err_console.print("[bold red]error:[/] " + escape(usage_error_line(exc)), highlight=False,
                              soft_wrap=True)
        sys.exit(EXIT_USAGE if getattr(exc, "exit_code", 1) == EXIT_USAGE else exc.exit_code)
    sys.exit(code if isinstance(code, int) else EXIT_OK)


def usage_error_line(exc: typer.TyperException) -> str:
    """One line: the command, what is wrong, and where the help is (click would print the usage block)."""
    ctx = getattr(exc, "ctx", None)
    command = ctx.command_path if ctx is not None else PROG_NAME
    return f"{command}: {exc.format_message().rstrip('.')}. See `{command} --help`."

"""`bench lab scheduler|worker|boards|certs`: argument adapters over harness/lab, mounted by harness/cli.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from harness.errors import ConfigError

if TYPE_CHECKING:  # config and sweep load pydantic, pandas and the drivers: imported when a command runs
    from harness.config import BenchConfig
    from harness.sweep import SweepObserver, SweepOutcome

lab_app = typer.Typer(help="The lab: a Dask scheduler, workers holding each host's boards, sweeps across them.",
                      no_args_is_help=True)
console = Console(width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True)

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="bench.toml (default: ./bench.toml if present)")]


def _need_lab_extra() -> None:
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise ConfigError("the lab needs Dask distributed, which is not installed.",
                          hint="pip install 'hilbench[lab]' (scripts/install --test installs it).") from None


def lab_sweep(config: BenchConfig, cluster: str | None, devices: list[str] | None, wait: float | None,
              resume: str | None, retry_failed: bool, fail_fast: bool, observer: SweepObserver,
              command: str) -> SweepOutcome:
    """`bench sweep --cluster`: the same outcome as a local sweep; a lost scheduler is said plainly."""
    _need_lab_extra()
    from harness.lab.sweep import run_lab_sweep

    lab = run_lab_sweep(config, address=cluster, devices=devices, wait_s=wait, resume=resume,
                        retry_failed=retry_failed, fail_fast=fail_fast, observer=observer, command=command)
    if lab.lost:
        err_console.print(f"[bold red]lab:[/] {lab.lost} (scheduler {lab.address}).", highlight=False)
    return lab.outcome


@lab_app.command("scheduler")
def scheduler_command(
    config_path: ConfigOpt = None,
    host: Annotated[str, typer.Option(help="address to listen on (beyond loopback, TLS is required)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="port (0: any free one)")] = 8786,
) -> None:
    """Run the lab's scheduler (plain `dask scheduler` works too); prints its address once listening."""
    _need_lab_extra()
    from harness.config import resolve_config
    from harness.lab.security import check_address, security, tls_files
    from harness.lab.worker import serve_scheduler

    config = resolve_config(config_path)
    tls = tls_files(config.cluster, config.base_dir)
    check_address(f"{'tls' if tls else 'tcp'}://{host}:{port}", tls, "bench lab scheduler")
    serve_scheduler(host, port, security(tls), lambda addr: console.print(f"scheduler listening at {addr}",
                                                                            highlight=False))


@lab_app.command("worker")
def worker_command(
    config_path: ConfigOpt = None,
    scheduler: Annotated[str | None, typer.Option(help="scheduler address (default: [cluster] address)")] = None,
    name: Annotated[str | None, typer.Option(help="worker name shown in the lab (default: host name)")] = None,
    listen: Annotated[str | None, typer.Option(help="address this worker listens on (default: chosen by Dask)")] = None,
) -> None:
    """Join the lab with this host's boards (the [[devices]] of bench.toml), each advertised as a resource."""
    _need_lab_extra()
    from harness.config import DEFAULT_CONFIG_NAME, load_config
    from harness.lab.security import connection
    from harness.lab.worker import serve_worker

    config = load_config(config_path or DEFAULT_CONFIG_NAME)
    if not config.devices:
        raise ConfigError("a lab worker needs a bench.toml listing this host's boards ([[devices]]).",
                          hint="Pass -c bench.toml; board names must be unique across the lab.")
    address, sec = connection(config.cluster, config.base_dir, scheduler, "bench lab worker")
    serve_worker(address, config, sec, name=name, listen_host=listen)


@lab_app.command("boards")
def boards_command(
    config_path: ConfigOpt = None,
    cluster: Annotated[str | None, typer.Option(help="scheduler address (default: [cluster] address)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """List the lab's boards: which worker holds each, and its pool."""
    _need_lab_extra()
    from harness.config import resolve_config
    from harness.lab.sweep import connect, lab_boards

    client = connect(resolve_config(config_path), cluster)
    try:
        boards = lab_boards(client)
    finally:
        client.close()
    rows = [{"board": b.device.name, "kind": b.device.kind, "pool": b.device.pool, "worker": b.worker_name,
             "address": b.worker} for b in boards]
    if as_json:
        console.print_json(json.dumps(rows))
        return
    for r in rows:
        console.print(f"[bold]{r['board']}[/] ({r['kind']}) pool={r['pool'] or '–'} on {r['worker']} {r['address']}",
                      highlight=False)


@lab_app.command("certs")
def certs_command(
    out: Annotated[Path, typer.Argument(help="directory for the CA and the host certificates")],
    hosts: Annotated[list[str], typer.Argument(help="every host of the lab: scheduler, workers, sweep clients")],
    days: Annotated[int, typer.Option(min=1, help="validity")] = 825,
) -> None:
    """Make (or extend) a lab CA and a certificate + key per host, for Dask's mutual TLS."""
    from harness.lab.certs import CA_CERT, CA_KEY, make_certs

    made = make_certs(out, hosts, days)
    for c in made:
        console.print(f"{c.host}: {c.cert} {c.key}", highlight=False)
    console.print(f"CA: {out / CA_CERT} (copy to every host); keep {out / CA_KEY} on this machine only.\n"
                  "On each host, in bench.toml:\n  [cluster]\n  address = \"tls://SCHEDULER:8786\"\n"
                  f"  tls_ca_file = \"{CA_CERT}\"\n  tls_cert_file = \"HOST.pem\"\n  tls_key_file = \"HOST-key.pem\"",
                  highlight=False)

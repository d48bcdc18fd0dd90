"""`bench devices [--probe] [--json]` and `bench devices trust NAME`: argument adapters only.

A sub-app whose callback lists the devices when no subcommand is given, so the plain command keeps
working while subcommands (trust) hang off it. harness/cli.py mounts it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from harness.config import DeviceConfig

# The registry and config load pydantic and the drivers: imported when a command runs.
from harness.errors import EXIT_CELLS_FAILED, BenchError, ConfigError

devices_app = typer.Typer(
    help="List the configured devices (or the defaults); --probe opens each and shows what it is.",
    invoke_without_command=True,
)
console = Console(width=None if sys.stdout.isatty() else 200)

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="bench.toml (default: ./bench.toml if present)")]


@devices_app.callback()
def list_devices(
    ctx: typer.Context,
    config_path: ConfigOpt = None,
    probe: Annotated[bool, typer.Option("--probe", help="open each device and show what it reports")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """List the configured devices (or the defaults) and, with --probe, what each one is."""
    if ctx.invoked_subcommand is not None:
        return
    from devices import registry
    from harness.config import resolve_config

    config = resolve_config(config_path)
    listing = []
    for dev in config.devices:
        entry: dict[str, Any] = {"name": dev.name, "kind": dev.kind, "settings": dev.settings}
        if probe:
            entry.update(probe_device(dev))
        listing.append(entry)
    # A probe is a check: a device that could not be opened fails it, so scripts and CI can rely on it.
    code = EXIT_CELLS_FAILED if probe and any("error" in e for e in listing) else 0
    if as_json:
        console.print_json(json.dumps(listing, default=str))
        raise typer.Exit(code)
    for entry in listing:
        console.print(f"[bold]{entry['name']}[/] ({entry['kind']}) {entry['settings'] or ''}", highlight=False)
        if "error" in entry:
            console.print(f"  [red]{entry['error']}", highlight=False)
            if entry.get("hint"):
                console.print(f"  {entry['hint']}", highlight=False)
        elif "info" in entry:
            for key, value in entry["info"].items():
                console.print(f"  {key}: {value}", highlight=False)
    unused = [k for k in registry.kinds() if k not in {d.kind for d in config.devices}]
    if unused:
        console.print(f"other kinds: {', '.join(unused)}")
    if code:
        failed = [e["name"] for e in listing if "error" in e]
        console.print(f"[red]not reachable: {', '.join(failed)}", highlight=False)
    raise typer.Exit(code)


def probe_device(dev: DeviceConfig) -> dict[str, Any]:
    from devices import registry

    device = registry.create(dev.name, dev.kind, dev.settings)
    try:
        device.open()
        return {"info": device.info().as_dict()}
    except BenchError as exc:
        return {"error": exc.message, "hint": exc.hint}
    finally:
        device.close()


@devices_app.command("trust")
def trust_command(
    name: Annotated[str, typer.Argument(help="the device's name in bench.toml (kind = \"ssh\")")],
    config_path: ConfigOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="trust without asking (check the fingerprint!)")] = False,
) -> None:
    """Fetch an SSH board's host key, show its SHA256 fingerprint and add it to known_hosts when confirmed."""
    from devices import registry
    from devices.ssh_trust import trust
    from harness.config import resolve_config

    config = resolve_config(config_path)
    dev = next((d for d in config.devices if d.name == name), None)
    if dev is None:
        raise ConfigError(f"no device named {name!r} in the config.",
                          hint=f"Configured: {', '.join(d.name for d in config.devices) or 'none'}.")
    if dev.kind != "ssh":
        raise ConfigError(f"device {name!r} is kind {dev.kind!r}; only kind = \"ssh\" devices have host keys.")
    settings = registry.driver("ssh").settings(**dev.settings)

    def confirm(question: str) -> bool:
        console.print(question, highlight=False)
        if yes:
            return True
        try:
            return typer.confirm(f"Add it to {settings.known_hosts}?", default=False)
        except typer.Abort:  # end of input: the answer is no
            return False

    outcomes = trust(settings.target(name), settings.auth(), device=name, confirm=confirm,
                     timeout=settings.connect_timeout)
    for o in outcomes:
        console.print(f"{o.entry}: {o.key_type} {o.fingerprint} — {o.status}", highlight=False)
    if any(o.status == "declined" for o in outcomes):
        console.print("nothing more written; the device stays untrusted")
        raise typer.Exit(EXIT_CELLS_FAILED)

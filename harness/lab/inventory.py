"""Boards as Dask resources, and the lab's inventory as the client sees it.

A worker advertises `bench-board:NAME = 1` for each board of its bench.toml that is in no pool, and
`bench-pool:POOL = k` for the k boards of a pool it holds. A task asking for one unit lands on a worker
holding that board (or a free board of that pool), and a count of 1 per board means one cell at a time
on it, lab-wide: Dask serialises what the resources say.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from harness.config import DeviceConfig
from harness.errors import ConfigError

BOARD_PREFIX = "bench-board:"
POOL_PREFIX = "bench-pool:"


def resources_for(devices: list[DeviceConfig]) -> dict[str, float]:
    """The Dask resources a worker holding these devices advertises."""
    out: dict[str, float] = {f"{BOARD_PREFIX}{d.name}": 1 for d in devices if d.pool is None}
    for pool, count in Counter(d.pool for d in devices if d.pool is not None).items():
        out[f"{POOL_PREFIX}{pool}"] = count
    return out


def resource_of(unit: DeviceConfig) -> str:
    """The resource one cell of this lane unit (a board, or a pool standing for its boards) asks for."""
    return f"{POOL_PREFIX}{unit.name}" if unit.pool == unit.name else f"{BOARD_PREFIX}{unit.name}"


@dataclass(frozen=True)
class LabBoard:
    """One board of the lab: its config entry (from its worker's bench.toml) and who holds it."""

    device: DeviceConfig
    worker: str  # the worker's address
    worker_name: str


def inventory(workers: dict[str, dict[str, Any]]) -> list[LabBoard]:
    """Flatten what each worker reports (address -> {"name", "devices"}) into boards, checking that a
    board name is held once and that a pool's boards are of one kind."""
    boards: list[LabBoard] = []
    seen: dict[str, str] = {}
    for address, info in sorted(workers.items()):
        for entry in info["devices"]:
            dev = DeviceConfig(**entry)
            if dev.name in seen:
                raise ConfigError(f"board {dev.name!r} is held by two workers ({seen[dev.name]} and {address}).",
                                  hint="Board names must be unique across the lab: rename one in its bench.toml.")
            seen[dev.name] = address
            boards.append(LabBoard(device=dev, worker=address, worker_name=str(info.get("name") or address)))
    kinds: dict[str, str] = {}
    for b in boards:
        if b.device.pool is not None and kinds.setdefault(b.device.pool, b.device.kind) != b.device.kind:
            raise ConfigError(f"pool {b.device.pool!r} mixes kinds {kinds[b.device.pool]!r} and {b.device.kind!r} "
                              "across the lab's workers.", hint="A pool holds identical boards.")
    return boards


def lane_units(boards: list[LabBoard], wanted: list[str] | None) -> list[DeviceConfig]:
    """What a sweep on the lab measures: each unpooled board, and each pool once (standing for its
    boards, with the first board's settings as its description). `wanted` keeps only those named (a
    board, a pool, or a kind); a pooled board cannot be asked for alone (it would run beside its pool)."""
    units: dict[str, DeviceConfig] = {}
    for b in boards:
        dev = b.device
        if dev.pool is None:
            units[dev.name] = dev
        elif dev.pool not in units:
            units[dev.pool] = DeviceConfig(name=dev.pool, kind=dev.kind, pool=dev.pool, settings=dev.settings)
    if not wanted:
        return list(units.values())
    chosen: dict[str, DeviceConfig] = {}
    pooled = {b.device.name: b.device.pool for b in boards if b.device.pool is not None}
    for want in wanted:
        if want in pooled:
            raise ConfigError(f"--device {want}: board {want!r} belongs to pool {pooled[want]!r} on the lab.",
                              hint=f"Ask for the pool: --device {pooled[want]}.")
        found = [u for u in units.values() if u.name == want] or [u for u in units.values() if u.kind == want]
        if not found:
            raise ConfigError(f"--device {want}: no board, pool or kind of that name on the lab.",
                              hint="The lab holds: " + (", ".join(units) or "nothing (no worker has joined)")
                              + ". `bench lab boards` lists them.")
        for unit in found:
            chosen.setdefault(unit.name, unit)
    return list(chosen.values())


def boards_of(unit: DeviceConfig, boards: list[LabBoard]) -> list[LabBoard]:
    if unit.pool == unit.name:
        return [b for b in boards if b.device.pool == unit.name]
    return [b for b in boards if b.device.name == unit.name and b.device.pool is None]

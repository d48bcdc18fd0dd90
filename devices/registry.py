"""Maps the `kind` in bench.toml to a driver.

Driver modules are imported only when their kind is used, so a machine without paramiko's native
bits or QEMU can still run the others. Each driver module exposes `DRIVER`, a `DriverSpec`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from benchcore.errors import UnknownDeviceKindError
from benchcore.registry import Registry
from devices.base import Device


class DeviceSettings(BaseModel):
    """Base of every kind's settings: unknown keys are errors, never silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class DriverSpec:
    kind: str
    summary: str
    settings: type[DeviceSettings]
    create: Callable[[str, Any], Device]
    #: None when the kind works on this machine without hardware (used for the default sweep),
    #: else the reason it does not.
    unavailable_reason: Callable[[], str | None] = lambda: "needs hardware"
    #: Settings of the instance the default sweep adds when the kind is available here.
    default_settings: Callable[[], dict[str, Any]] | None = None
    #: The [[meters]] entry (without name and device) that comes with the default instance, if any:
    #: the simulated MCU brings its simulated meter, so the default sweep reports estimated energy.
    default_meter: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    #: Its latency is a clock on this host's own CPU: the sweep runs such a lane alone, because the
    #: simulator's and QEMU's host processes in parallel lanes would perturb its figures.
    times_on_host: bool = False


#: kind -> module holding DRIVER. Order is the order of the default sweep's devices.
BUILTIN_DRIVERS: dict[str, str] = {
    "local": "devices.local",
    "sim": "devices.sim",
    "fake": "devices.fake",
    "serial": "devices.mcu.driver",
    "ssh": "devices.ssh",
    "qemu": "devices.qemu",
}

DRIVERS: Registry[DriverSpec] = Registry("DRIVER", BUILTIN_DRIVERS, lambda kind, known: UnknownDeviceKindError(
    f"unknown device kind {kind!r}.", hint=f"Known kinds: {', '.join(known)}. See README.md, 'Adding a device'."))


def register(spec: DriverSpec) -> None:
    """Register a driver from outside the package (a plug-in or a test)."""
    DRIVERS.register(spec)


def kinds() -> list[str]:
    return DRIVERS.kinds()


def driver(kind: str) -> DriverSpec:
    return DRIVERS.get(kind)


def create(name: str, kind: str, settings: dict[str, Any]) -> Device:
    spec = driver(kind)
    return spec.create(name, spec.settings(**settings))

"""Maps the `kind` in a [[meters]] table to a power-meter driver.

Mirrors devices/registry.py: meter modules are imported only when their kind is used (so a machine
without the vendor packages runs the rest), and each exposes `METER`, a `MeterSpec`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from benchcore.registry import Registry
from devices.power.base import PowerMeter
from devices.power.errors import UnknownMeterKindError


class MeterSettings(BaseModel):
    """Base of every meter kind's settings: unknown keys are errors, never silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class MeterSpec:
    kind: str
    summary: str
    settings: type[MeterSettings]
    #: (name, settings, resources) -> meter. `resources` carries live objects a config cannot hold,
    #: e.g. {"reader": RemoteReader} for a sensor read through an SSH device's connection.
    create: Callable[[str, Any, Mapping[str, Any]], PowerMeter]
    #: None when the kind can be used on this machine (its vendor package imports), else why not.
    unavailable_reason: Callable[[], str | None] = lambda: None
    #: The inputs of a meter with these settings that can carry the marker (checked at config time).
    marker_inputs: Callable[[Any], tuple[str, ...]] = lambda settings: ()


#: kind -> module holding METER.
BUILTIN_METERS: dict[str, str] = {
    "joulescope": "devices.power.joulescope",
    "ppk2": "devices.power.ppk2",
    "ina2xx": "devices.power.ina2xx",
    "replay": "devices.power.replay",
    "sim": "devices.power.sim",
}

METERS: Registry[MeterSpec] = Registry("METER", BUILTIN_METERS, lambda kind, known: UnknownMeterKindError(
    f"unknown power meter kind {kind!r}.",
    hint=f"Known kinds: {', '.join(known)}. See README.md, 'Energy (power meters)'."))


def register(spec: MeterSpec) -> None:
    """Register a meter from outside the package (a plug-in or a test)."""
    METERS.register(spec)


def kinds() -> list[str]:
    return METERS.kinds()


def meter_spec(kind: str) -> MeterSpec:
    return METERS.get(kind)


def create(name: str, kind: str, settings: dict[str, Any], *, resources: Mapping[str, Any] | None = None) -> PowerMeter:
    """A meter, not yet opened. Settings are validated here (pydantic errors name the key)."""
    spec = meter_spec(kind)
    return spec.create(name, spec.settings(**settings), resources or {})

"""[[meters]] entries in bench.toml: validated, and bound to the device each one measures.

    [[meters]]
    name = "js"                 # yours; unique
    kind = "joulescope"         # picks the driver; the keys below `marker_input` belong to the kind
    device = "nucleo-l4"        # the [[devices]] entry whose supply this meter measures
    marker_input = "gpi0"       # meter input wired to the device's marker pin; omit: host timestamps
    serial_number = "001234"

`bind_meters` checks everything a config can get wrong (unknown kind or key, a device that does not
exist, two meters on one device, a marker input the meter lacks) and returns plain, picklable
`MeterBinding`s that a cell — possibly on a remote worker — turns into a meter with `create_meter`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from benchcore.errors import BenchError, ConfigError
from devices.power import registry
from devices.power.base import PowerMeter

COMMON_KEYS = ("name", "kind", "device", "marker_input")


@dataclass(frozen=True)
class MeterBinding:
    name: str
    kind: str
    device: str
    marker_input: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)


def _settings_error(exc: ValidationError, source: str, where: str) -> ConfigError:
    first = exc.errors()[0]
    key = ".".join(str(p) for p in first["loc"])
    key = f"{where}.{key}" if key else where
    if first["type"] == "extra_forbidden":
        return ConfigError(f"{source}: unknown key {key!r}.", hint="Check its spelling against the meter kind's keys "
                           "(README.md, 'Energy').")  # fmt: skip
    if first["type"] == "missing":
        return ConfigError(f"{source}: missing key {key!r}.")
    return ConfigError(f"{source}: key {key!r} is invalid: {first['msg']} (got {first.get('input')!r}).")


def bind_meters(entries: Iterable[Any], device_names: Iterable[str], source: str = "bench.toml") -> list[MeterBinding]:
    """Validate [[meters]] entries against the meter registry and the configured devices."""
    devices = set(device_names)
    bindings: list[MeterBinding] = []
    names: set[str] = set()
    measured: dict[str, str] = {}
    for i, entry in enumerate(entries):
        where = f"meters[{i}]"
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{source}: {where} must be a table ([[meters]]).")
        for key in ("name", "kind", "device"):
            if not isinstance(entry.get(key), str) or not entry.get(key):
                raise ConfigError(f"{source}: missing key {where}.{key!r}" if key not in entry
                                  else f"{source}: {where}.{key} must be a non-empty string.")  # fmt: skip
        name, kind, device = entry["name"], entry["kind"], entry["device"]
        marker = entry.get("marker_input")
        if marker is not None and not isinstance(marker, str):
            raise ConfigError(f"{source}: {where}.marker_input must be a string (got {marker!r}).")
        if name in names:
            raise ConfigError(f"{source}: {where}.name {name!r} is used twice; meter names must be unique.")
        names.add(name)
        if device not in devices:
            raise ConfigError(f"{source}: {where} ({name!r}) measures device {device!r}, which is not configured.",
                              hint=f"Configured devices: {', '.join(sorted(devices)) or 'none'}.")
        if device in measured:
            raise ConfigError(f"{source}: device {device!r} is measured by two meters ({measured[device]!r} and "
                              f"{name!r}); one meter per device.")  # fmt: skip
        measured[device] = name
        settings = {k: v for k, v in entry.items() if k not in COMMON_KEYS}
        try:
            spec = registry.meter_spec(kind)
        except BenchError as exc:
            raise ConfigError(f"{source}: {where}.kind: {exc.message}", hint=exc.hint) from None
        try:
            parsed = spec.settings(**settings)
        except ValidationError as exc:
            raise _settings_error(exc, source, where) from None
        inputs = spec.marker_inputs(parsed)
        if marker is not None and marker not in inputs:
            raise ConfigError(f"{source}: {where}.marker_input {marker!r}: a {kind} meter has no such input; "
                              f"its inputs: {', '.join(inputs) or 'none'}.",
                              hint="Omit marker_input to cut windows on host timestamps.")  # fmt: skip
        bindings.append(MeterBinding(name=name, kind=kind, device=device, marker_input=marker, settings=settings))
    return bindings


def create_meter(binding: MeterBinding, *, resources: Mapping[str, Any] | None = None) -> PowerMeter:
    """The (unopened) meter of a binding; also checks its marker input exists on that kind."""
    from devices.power.measure import check_marker_input

    meter = registry.create(binding.name, binding.kind, binding.settings, resources=resources)
    check_marker_input(meter, binding.marker_input)
    return meter

"""bench.toml: read with tomllib, validated with pydantic.

A misspelt key or a wrong type is an error naming the key and the file, never a warning. Device
settings are validated by the driver of their `kind`, so each driver owns its own keys.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from devices import registry
from devices.power import MeterBinding, bind_meters
from harness.defaults import DEFAULT_CONFIG_NAME, DEFAULT_STORE_URL
from harness.errors import BenchError, ConfigError

#: The model reference that means "the bundled example family".
EXAMPLE_MODELS = "example:digits"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StoreConfig(_Strict):
    url: str = DEFAULT_STORE_URL


class DeviceConfig(_Strict):
    name: str = Field(min_length=1)
    kind: str
    #: Identical boards sharing a pool name are interchangeable: on a lab cluster the pool's cells
    #: spread over its free boards (see harness/lab).
    pool: str | None = Field(default=None, min_length=1)
    settings: dict[str, Any] = Field(default_factory=dict)


class ClusterConfig(_Strict):
    """[cluster]: where the lab's Dask scheduler is, and the TLS files to reach it (paths, never keys inline)."""

    #: tcp://127.0.0.1:8786 on one host; tls://scheduler.lab:8786 anywhere else (mutual TLS required).
    address: str | None = None
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    #: How long a sweep waits for a board another sweep holds (0: refuse at once, naming the holder).
    wait_s: float = Field(default=0.0, ge=0.0)


class SweepConfig(_Strict):
    models: list[str] = Field(default_factory=lambda: [EXAMPLE_MODELS])
    #: Keep only variants made with these methods (empty: all).
    methods: list[str] = Field(default_factory=list)
    #: Keep only variants with these target sparsities (empty: all).
    sparsities: list[float] = Field(default_factory=list)
    repeats: int = Field(default=3, ge=1)
    warmup: int = Field(default=10, ge=0)
    iterations: int = Field(default=100, ge=1)
    min_seconds: float = Field(default=0.0, ge=0.0)
    #: Labelled samples each cell classifies for top-1 accuracy: "all", or a count (0 turns it off).
    accuracy_samples: int | Literal["all"] = "all"

    @field_validator("sparsities")
    @classmethod
    def _in_unit_interval(cls, values: list[float]) -> list[float]:
        for v in values:
            if not 0.0 <= v < 1.0:
                raise ValueError(f"sparsity {v} is outside [0, 1)")
        return values

    @field_validator("accuracy_samples")
    @classmethod
    def _non_negative(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 0:
            raise ValueError("must be 'all' or a count >= 0")
        return value


class EnergyConfig(_Strict):
    """How cells on a device with a power meter measure energy per inference."""

    #: Timed windows per cell; the figure is their median, with the spread.
    windows: int = Field(default=5, ge=1)
    #: Each window lasts at least this long by the device's clock (MLPerf Tiny uses 10 s).
    min_window_s: float = Field(default=1.0, gt=0)
    #: Idle supply recorded before and after each window, for idle power and dynamic energy.
    idle_s: float = Field(default=0.2, gt=0)


class BenchConfig(_Strict):
    store: StoreConfig = Field(default_factory=StoreConfig)
    devices: list[DeviceConfig] = Field(default_factory=list)
    #: [[meters]] as written; checked against the meter registry and the devices by `meter_bindings`.
    meters: list[dict[str, Any]] = Field(default_factory=list)
    energy: EnergyConfig = Field(default_factory=EnergyConfig)
    sweep: SweepConfig = Field(default_factory=SweepConfig)
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    #: Where relative paths in the file are resolved from (not a TOML key).
    base_dir: Path = Field(default_factory=Path.cwd, exclude=True)


def _format_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _raise_validation(exc: ValidationError, source: str, prefix: str = "") -> None:
    first = exc.errors()[0]
    key = _format_loc(tuple(first["loc"]))
    key = f"{prefix}.{key}" if prefix and key else (prefix or key)
    kind = first["type"]
    if kind == "extra_forbidden":
        msg = f"{source}: unknown key {key!r}."
        hint = "Check its spelling against README.md, 'bench.toml reference' (`bench init` writes an example)."
    elif kind == "missing":
        msg = f"{source}: missing key {key!r}."
        hint = "Add it; `bench init` writes a commented example."
    else:
        msg = f"{source}: key {key!r} is invalid: {first['msg']} (got {first.get('input')!r})."
        hint = "See README.md, 'bench.toml reference'."
    more = len(exc.errors()) - 1
    if more:
        hint += f" ({more} more problem{'s' if more > 1 else ''} after this one.)"
    raise ConfigError(msg, hint=hint) from None


#: Keys of a [[devices]] entry that belong to bench, not to the driver.
_COMMON_DEVICE_KEYS = ("name", "kind", "pool")


def _split_device(entry: Any, index: int, source: str) -> dict[str, Any]:
    """[[devices]] entries are flat in TOML; name and kind are common, the rest belongs to the driver."""
    if not isinstance(entry, dict):
        raise ConfigError(f"{source}: devices[{index}] must be a table ([[devices]]).")
    common = {k: entry[k] for k in _COMMON_DEVICE_KEYS if k in entry}
    return {**common, "settings": {k: v for k, v in entry.items() if k not in _COMMON_DEVICE_KEYS}}


def parse_config(doc: dict[str, Any], source: str, base_dir: Path) -> BenchConfig:
    doc = dict(doc)
    if "meters" in doc and not isinstance(doc["meters"], list):
        raise ConfigError(f"{source}: 'meters' must be an array of tables ([[meters]]).")
    if "devices" in doc:
        if not isinstance(doc["devices"], list):
            raise ConfigError(f"{source}: 'devices' must be an array of tables ([[devices]]).")
        doc["devices"] = [_split_device(e, i, source) for i, e in enumerate(doc["devices"])]
    try:
        config = BenchConfig(**doc, base_dir=base_dir)
    except ValidationError as exc:
        _raise_validation(exc, source)
    except TypeError as exc:  # a non-table where a table belongs
        raise ConfigError(f"{source}: {exc}.") from None
    seen: set[str] = set()
    for i, dev in enumerate(config.devices):
        if dev.name in seen:
            raise ConfigError(f"{source}: devices[{i}].name {dev.name!r} is used twice; names must be unique.")
        seen.add(dev.name)
        validate_device(dev, f"devices[{i}]", source)
    _check_pools(config, source)
    meter_bindings(config, source)
    return config


def _check_pools(config: BenchConfig, source: str) -> None:
    """A pool holds identical boards: one kind, and no board named like a pool (cell keys would clash)."""
    names = {d.name for d in config.devices}
    kinds: dict[str, str] = {}
    for i, dev in enumerate(config.devices):
        if dev.pool is None:
            continue
        if dev.pool in names:
            raise ConfigError(f"{source}: devices[{i}].pool {dev.pool!r} is also a device's name.",
                              hint="Give the pool a name of its own (for example the board model).")
        if kinds.setdefault(dev.pool, dev.kind) != dev.kind:
            raise ConfigError(f"{source}: devices[{i}].pool {dev.pool!r} mixes kinds {kinds[dev.pool]!r} and "
                              f"{dev.kind!r}.", hint="A pool holds identical boards; use one pool per kind of board.")


def meter_bindings(config: BenchConfig, source: str = DEFAULT_CONFIG_NAME) -> list[MeterBinding]:
    """The [[meters]] of a config, each bound to the device it measures (errors name key and file)."""
    return bind_meters(config.meters, [d.name for d in config.devices], source)


def validate_device(dev: DeviceConfig, where: str, source: str) -> None:
    try:
        spec = registry.driver(dev.kind)
    except BenchError as exc:
        raise ConfigError(f"{source}: {where}.kind: {exc.message}", hint=exc.hint) from None
    try:
        spec.settings(**dev.settings)
    except ValidationError as exc:
        _raise_validation(exc, source, prefix=where)


def load_config(path: str | Path) -> BenchConfig:
    path = Path(path)
    try:
        with path.open("rb") as f:
            doc = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(
            f"config file {str(path)!r} does not exist.", hint="Run `bench init` to write an example."
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{str(path)!r} is not valid TOML: {exc}.") from None
    except OSError as exc:
        raise ConfigError(f"config file {str(path)!r} cannot be read: {exc.strerror}.") from None
    return parse_config(doc, str(path), path.resolve().parent)


def default_instance(kind: str) -> tuple[DeviceConfig, list[dict[str, Any]]]:
    """A device of `kind` with the driver's default settings, and the meter it comes with, if any."""
    spec = registry.driver(kind)  # an unknown kind raises, naming the known ones
    settings = spec.default_settings() if spec.default_settings else {}
    device = DeviceConfig(name=kind, kind=kind, settings=settings)
    meters = [{**spec.default_meter(settings), "name": f"{kind}-meter", "device": kind}] if spec.default_meter else []
    return device, meters


def default_devices() -> tuple[list[DeviceConfig], list[dict[str, Any]]]:
    """Every device kind that works on this machine without hardware, one instance each, and the
    meters those instances come with."""
    devices, meters = [], []
    for kind in registry.kinds():
        spec = registry.driver(kind)
        if spec.default_settings is not None and spec.unavailable_reason() is None:
            device, device_meters = default_instance(kind)
            devices.append(device)
            meters.extend(device_meters)
    return devices, meters


def with_devices(config: BenchConfig, wanted: list[str]) -> BenchConfig:
    """Keep only the devices named (by name, else the first of that kind, else a default instance of
    that kind), with the meters that measure them."""
    devices: list[DeviceConfig] = []
    meters = [m for m in config.meters]
    for want in wanted:
        by_name = [d for d in config.devices if d.name == want] or [d for d in config.devices if d.kind == want]
        if by_name:
            devices.append(by_name[0])
            continue
        device, device_meters = default_instance(want)
        validate_device(device, f"--device {want}", "command line")
        devices.append(device)
        meters.extend(device_meters)
    names = {d.name for d in devices}
    return config.model_copy(update={"devices": devices, "meters": [m for m in meters if m.get("device") in names]})


def with_mlperf_rules(config: BenchConfig) -> BenchConfig:
    """`--mlperf-rules`: every device whose driver can measure as MLCommons' Tiny rules require (5 windows,
    each >= 10 s of DUT time; its settings have `mlperf_rules`) does, so its figures can be quoted beside
    submissions."""

    def follows_rules(d: DeviceConfig) -> bool:
        return "mlperf_rules" in registry.driver(d.kind).settings.model_fields

    if not any(follows_rules(d) for d in config.devices):
        raise ConfigError("--mlperf-rules given, but no device has kind = \"mlperf\".",
                          hint="Add an MLPerf Tiny board as [[devices]] kind = \"mlperf\" (README, 'Labs with MLPerf "
                          "Tiny boards'), or drop the flag.")  # fmt: skip
    devices = [d.model_copy(update={"settings": {**d.settings, "mlperf_rules": True}}) if follows_rules(d) else d
               for d in config.devices]  # fmt: skip
    return config.model_copy(update={"devices": devices})


def resolve_config(path: str | Path | None) -> BenchConfig:
    """The config a command runs with: the given file, else ./bench.toml when present, else defaults."""
    if path is None and Path(DEFAULT_CONFIG_NAME).is_file():
        path = DEFAULT_CONFIG_NAME
    config = load_config(path) if path is not None else BenchConfig()
    if not config.devices:
        devices, meters = default_devices()
        config = config.model_copy(update={"devices": devices, "meters": meters})
    return config

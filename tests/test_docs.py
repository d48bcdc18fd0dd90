"""The documentation a new user reads first cannot drift from the code: the README's device-kind table
names every driver's every key, every example config validates, and `bench init` writes a config whose
runs compare with a default sweep's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from devices import registry
from harness.config import default_instance, load_config
from harness.example_config import EXAMPLE_CONFIG

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
EXAMPLES = sorted((REPO / "examples").iterdir())


def _kind_table() -> dict[str, str]:
    """kind -> the 'keys' cell of its row in the README's 'Device kinds and their keys' table."""
    section = README.split("Device kinds and their keys:", 1)[1].split("\n\n", 2)[1]
    rows = {}
    for line in section.splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        rows[cells[0].strip("`")] = cells[-1]
    return rows


@pytest.mark.parametrize("kind", list(registry.BUILTIN_DRIVERS))
def test_the_readme_lists_every_key_of_every_device_kind(kind: str) -> None:
    rows = _kind_table()
    assert kind in rows, f"README's device-kind table has no row for {kind!r}"
    keys = set(re.findall(r"`([a-z_0-9]+)`", rows[kind]))
    missing = [f for f in registry.driver(kind).settings.model_fields if f not in keys]
    assert not missing, f"README's row for {kind!r} lacks {missing}"
    kinds_row = next(line for line in README.splitlines() if line.startswith("| `devices[].kind`"))
    assert f"`{kind}`" in kinds_row


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_config_validates(path: Path) -> None:
    config = load_config(path)  # every key checked against its driver's settings and the meter registry
    assert config.devices, f"{path.name} configures no device"
    assert f"examples/{path.name}" in README, f"README does not point to examples/{path.name}"
    assert f"-c examples/{path.name}" in path.read_text(), "its header should say how to use it"


def test_examples_cover_the_hardware_kinds() -> None:
    kinds = {d.kind for p in EXAMPLES for d in load_config(p).devices}
    assert {"ssh", "serial", "qemu"} <= kinds


def test_init_names_devices_like_the_default_sweep(tmp_path: Path) -> None:
    path = tmp_path / "bench.toml"
    path.write_text(EXAMPLE_CONFIG)
    for dev in load_config(path).devices:
        default, _ = default_instance(dev.kind)
        assert dev.name == default.name, f"`bench init` names its {dev.kind} device {dev.name!r}; a default " \
                                         f"sweep names it {default.name!r}, so their runs would never match"

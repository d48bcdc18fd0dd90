"""bench.toml: every key checked, errors name the key and the file."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from harness.config import BenchConfig, load_config, parse_config, resolve_config
from harness.errors import ConfigError
from harness.example_config import EXAMPLE_CONFIG


def test_example_config_parses_to_what_it_documents(tmp_path: Path) -> None:
    path = tmp_path / "bench.toml"
    path.write_text(EXAMPLE_CONFIG)
    config = load_config(path)
    defaults = BenchConfig()
    assert config.sweep == defaults.sweep
    assert config.store == defaults.store
    assert [(d.name, d.kind, d.settings) for d in config.devices] == [
        ("local", "local", {"threads": 1, "kernels": "default"})
    ]


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("[sweep]\nrepeat = 3\n", "sweep.repeat"),
        ("[store]\npath = 'x.db'\n", "store.path"),
        ("colour = 'blue'\n", "colour"),
        ("[[devices]]\nname = 'pi'\nkind = 'local'\nthreds = 2\n", "devices[0].threds"),
    ],
)
def test_unknown_key_is_an_error_naming_key_and_file(tmp_path: Path, toml: str, key: str) -> None:
    path = tmp_path / "bench.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert f"unknown key {key!r}" in str(err.value)
    assert str(path) in str(err.value)


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("[sweep]\nrepeats = 'three'\n", "sweep.repeats"),
        ("[sweep]\nsparsities = [0.5, 1.0]\n", "sweep.sparsities"),
        ("[sweep]\naccuracy_samples = -1\n", "sweep.accuracy_samples"),
        ("[[devices]]\nname = 'h'\nkind = 'local'\nkernels = 'fast'\n", "devices[0].kernels"),
        ("[[devices]]\nname = 'h'\nkind = 'local'\nthreads = 0\n", "devices[0].threads"),
    ],
)
def test_wrong_type_or_value_is_an_error_naming_the_key(tmp_path: Path, toml: str, key: str) -> None:
    path = tmp_path / "bench.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert f"key {key!r} is invalid" in str(err.value)


def test_unknown_device_kind_names_the_known_ones(tmp_path: Path) -> None:
    path = tmp_path / "bench.toml"
    path.write_text("[[devices]]\nname = 'board'\nkind = 'arduino'\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert "devices[0].kind" in message and "'arduino'" in message and "local" in message


def test_duplicate_device_names_are_refused() -> None:
    doc = tomllib.loads("[[devices]]\nname='a'\nkind='local'\n[[devices]]\nname='a'\nkind='fake'\n")
    with pytest.raises(ConfigError, match="used twice"):
        parse_config(doc, "bench.toml", Path("."))


def test_without_a_config_the_defaults_need_no_hardware(workdir: Path) -> None:
    config = resolve_config(None)
    assert config.sweep.models == ["example:digits"]
    assert "local" in [d.kind for d in config.devices]
    assert "fake" not in [d.kind for d in config.devices]


def test_bench_toml_in_the_working_directory_is_used(workdir: Path) -> None:
    (workdir / "bench.toml").write_text("[sweep]\nrepeats = 7\n")
    assert resolve_config(None).sweep.repeats == 7


def test_invalid_toml_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "bench.toml"
    path.write_text("[sweep\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)


def test_a_meter_for_a_device_that_does_not_exist_is_refused() -> None:
    doc = tomllib.loads("[[devices]]\nname='a'\nkind='fake'\n"
                        "[[meters]]\nname='js'\nkind='sim'\ndevice='nucleo'\nactive_power_w=0.05\n")
    with pytest.raises(ConfigError, match="'nucleo', which is not configured"):
        parse_config(doc, "bench.toml", Path("."))


def test_a_misspelt_meter_key_is_refused() -> None:
    doc = tomllib.loads("[[devices]]\nname='a'\nkind='fake'\n"
                        "[[meters]]\nname='m'\nkind='sim'\ndevice='a'\nactive_powr_w=0.05\n")
    with pytest.raises(ConfigError, match=re.escape("unknown key 'meters[0].active_powr_w'")):
        parse_config(doc, "bench.toml", Path("."))


def test_the_default_sim_device_comes_with_its_simulated_meter(workdir: Path) -> None:
    config = resolve_config(None)
    assert {(m["kind"], m["device"]) for m in config.meters} == {("sim", "sim")}

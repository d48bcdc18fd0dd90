"""`--mlperf-rules` and the `mlperf` kind's settings: what a lab writes in bench.toml is checked before
any board is touched."""

from __future__ import annotations

import hashlib

import pytest

from devices import registry
from devices.base import ModelBinary
from devices.mlperf.client import CMD_MAX, MAX_CHUNK_BYTES
from devices.mlperf.driver import MlperfSettings, matches
from harness.config import BenchConfig, DeviceConfig, with_mlperf_rules
from harness.errors import ConfigError, DeviceError


def test_mlperf_rules_switches_every_mlperf_device_and_only_those() -> None:
    config = BenchConfig(devices=[DeviceConfig(name="b", kind="mlperf", settings={"port": "/dev/ttyACM0"}),
                                  DeviceConfig(name="h", kind="local")])
    ruled = with_mlperf_rules(config)
    assert ruled.devices[0].settings == {"port": "/dev/ttyACM0", "mlperf_rules": True}
    assert ruled.devices[1].settings == {}
    with pytest.raises(ConfigError, match="no device has kind"):
        with_mlperf_rules(BenchConfig(devices=[DeviceConfig(name="h", kind="local")]))


def test_settings_refuse_chunks_the_command_buffer_cannot_hold() -> None:
    assert len("db ") + 2 * MAX_CHUNK_BYTES <= CMD_MAX
    with pytest.raises(ValueError, match="chunk_bytes"):
        MlperfSettings(port="loop://", chunk_bytes=MAX_CHUNK_BYTES + 1)
    with pytest.raises(ValueError, match=r"[Ee]xtra inputs"):
        MlperfSettings(port="loop://", windw=3)  # type: ignore[call-arg]


def test_exactly_one_of_port_and_image() -> None:
    with pytest.raises(DeviceError, match="exactly one of `port`"):
        registry.create("b", "mlperf", {})


def test_model_matching_by_name_mapping_or_sha() -> None:
    data = b"model"
    m = ModelBinary("resnet8_int8", hashlib.sha256(data).hexdigest(), data)
    assert matches("resnet8_int8", m, {}) is not None
    assert matches("ic01", m, {}) is None
    assert matches("ic01", m, {"ic01": ["resnet8_int8"]}) is not None
    assert matches("ic01", m, {"ic01": [m.sha256[:12]]}) is not None
    assert matches("ic01", m, {"ic01": ["other"]}) is None

"""The host CPU driver against real models: LiteRT latency, memory, outputs."""

from __future__ import annotations

import numpy as np
import pytest

from devices import registry
from devices.base import Device, ModelBinary, RunSpec
from harness.errors import DeviceError
from harness.models.tflite_file import read_model
from tests.conftest import SHARED_MODELS


def binary(path) -> ModelBinary:
    model = read_model(path)
    return ModelBinary(name=model.path.stem, sha256=model.sha256, data=model.data)


@pytest.fixture
def device() -> Device:
    dev = registry.create("host", "local", {"kernels": "reference"})
    dev.open()
    yield dev
    dev.close()


def test_local_reports_every_latency_after_warmup(device: Device) -> None:
    deployment = device.deploy(binary(SHARED_MODELS / "micro_speech_quantized.tflite"))
    assert deployment.load_time_ms is not None and deployment.load_time_ms > 0
    assert deployment.ram_bytes and deployment.ram_bytes > 0 and "fresh process" in deployment.details["ram_method"]
    result = device.run(RunSpec(warmup=3, iterations=25))
    assert result.latency_ns.shape == (25,) and (result.latency_ns > 0).all()
    assert result.source == "measured" and "perf_counter_ns" in result.timing_method


def test_min_seconds_extends_the_timed_loop(device: Device) -> None:
    device.deploy(binary(SHARED_MODELS / "hello_world_int8.tflite"))
    result = device.run(RunSpec(warmup=0, iterations=5, min_seconds=0.5))
    # Five µs-scale inferences are far below 0.5 s, so the loop must go on. Only a machine so busy that
    # the five took 0.5 s by themselves may stop there (min_seconds was then honoured).
    assert len(result.latency_ns) > 5 or result.latency_ns.sum() >= 0.5e9, result.latency_ns


def test_outputs_classify_the_micro_speech_features(device: Device) -> None:
    """The yes/no feature files of TFLM's micro_speech example classify as yes and no."""
    device.deploy(binary(SHARED_MODELS / "micro_speech_quantized.tflite"))
    inputs = SHARED_MODELS / "inputs"
    samples = np.stack([np.fromfile(inputs / f"{w}_1000ms_features_int8_49x40.bin", dtype=np.int8)
                        for w in ("yes", "no")])
    result = device.run(RunSpec(warmup=0, iterations=1, samples=samples))
    # label order of the micro_speech model: silence, unknown, yes, no
    assert list(result.outputs.argmax(axis=1)) == [2, 3]


def test_info_names_the_runtime_and_cpu(device: Device) -> None:
    info = device.info()
    assert info.runtime == "ai-edge-litert" and info.runtime_version[0].isdigit()
    assert info.details["kernels"] == "reference" and info.details["cores"] >= 1


def test_a_model_litert_rejects_is_a_device_error_naming_the_step(device: Device) -> None:
    # person_detect uses a per-channel axis LiteRT refuses (see ../shared/ENVIRONMENT.md)
    with pytest.raises(DeviceError) as err:
        device.deploy(binary(SHARED_MODELS / "person_detect.tflite"))
    assert "deploy person_detect" in str(err.value) and "host" in str(err.value)

"""Faults and bad input, end to end through the `sim` driver: nothing lost, clear errors."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from devices.base import ModelBinary, RunSpec
from devices.mcu.errors import ArenaTooSmallError, ModelTooLargeError, UnsupportedOpError, VersionMismatchError
from devices.sim import SimDevice, SimSettings
from harness.errors import DeviceError, DeviceTimeoutError

MODELS = Path(__file__).resolve().parents[1].parent / "shared" / "models"


def binary(name: str) -> ModelBinary:
    path = MODELS / f"{name}.tflite"
    if not path.exists():
        pytest.skip(f"{path} not available")
    data = path.read_bytes()
    return ModelBinary(name, hashlib.sha256(data).hexdigest(), data)


@pytest.fixture
def speech() -> tuple[ModelBinary, np.ndarray]:
    x = np.frombuffer((MODELS / "inputs" / "yes_1000ms_features_int8_49x40.bin").read_bytes(), np.int8)
    return binary("micro_speech_quantized"), x


def opened(**settings) -> SimDevice:
    dev = SimDevice("sim-under-test", SimSettings(**settings))
    dev.open()
    return dev


@pytest.fixture
def device(request: pytest.FixtureRequest) -> Iterator[SimDevice]:
    dev = opened(**request.param)
    try:
        yield dev
    finally:
        dev.close()


def spec(x: np.ndarray, samples: int = 0) -> RunSpec:
    return RunSpec(warmup=1, iterations=5, timing_input=x, samples=np.stack([x] * samples) if samples else None)


@pytest.mark.parametrize(
    "device",
    [{"faults": {"corrupt_rate": 0.0001, "drop_rate": 0.00005}, "timeout_s": 0.2, "seed": 3}],
    indirect=True,
)
def test_corrupted_and_dropped_bytes_are_recovered_by_retransmission(device: SimDevice, speech) -> None:
    model, x = speech
    dep = device.deploy(model)
    result = device.run(spec(x, samples=3))
    assert dep.arena_bytes and dep.arena_bytes > 0
    assert len(result.latency_ns) == 5
    assert result.outputs is not None and (result.outputs.argmax(axis=1) == 2).all()  # still "yes"
    stats = device.client.stats if device.client else None
    assert stats is not None and stats.bad_frames + stats.naks + stats.upload_rewinds + stats.retransmits > 0


@pytest.mark.parametrize("device", [{"faults": {"reset_during_upload": 1}}], indirect=True)
def test_reset_mid_upload_is_recovered(device: SimDevice, speech) -> None:
    model, x = speech
    dep = device.deploy(model)
    assert dep.arena_bytes == 7584 and device.resets == 1
    assert len(device.run(spec(x)).latency_ns) == 5


@pytest.mark.parametrize("device", [{"faults": {"reset_during_invoke": 1}}], indirect=True)
def test_reset_mid_run_redeploys_and_retries_the_cell(device: SimDevice, speech) -> None:
    model, x = speech
    device.deploy(model)
    result = device.run(spec(x, samples=1))
    assert device.resets == 1 and len(result.latency_ns) == 5 and result.details["resets"] == 1
    assert result.outputs is not None and result.outputs.argmax() == 2


@pytest.mark.parametrize("device", [{"faults": {"reset_during_invoke": 2}}], indirect=True)
def test_repeated_reset_fails_the_cell_with_the_reason(device: SimDevice, speech) -> None:
    model, x = speech
    device.deploy(model)
    with pytest.raises(DeviceError, match="reset again after a retry") as exc:
        device.run(spec(x))
    assert "HELLO banner" in str(exc.value) and exc.value.step == "run"


@pytest.mark.parametrize("device", [{"faults": {"max_model_bytes": 4096}}], indirect=True)
def test_model_larger_than_the_device_accepts(device: SimDevice, speech) -> None:
    with pytest.raises(ModelTooLargeError, match=r"max 4096 bytes"):
        device.deploy(speech[0])


@pytest.mark.parametrize("arena", [4096, 64])  # 64 B would segfault TFLM in-process; the sim probes
def test_arena_too_small_names_the_bytes_required(arena: int, speech) -> None:
    # The sim finds the bytes required by probing TFLM in ~22 forked children before it answers
    # ALLOCATE; on a busy machine that outlasts the default 5 x 1 s retransmission budget.
    dev = opened(faults={"arena_bytes": arena}, timeout_s=10.0)
    try:
        with pytest.raises(ArenaTooSmallError, match=rf"needs \d+ bytes, the device has {arena}") as exc:
            dev.deploy(speech[0])
        assert exc.value.required == 7584
    finally:
        dev.close()


@pytest.mark.parametrize("device", [{"faults": {"supported_ops": ["RESHAPE", "FULLY_CONNECTED", "SOFTMAX"]}}],
                         indirect=True)  # fmt: skip
def test_unsupported_operator_is_named(device: SimDevice, speech) -> None:
    with pytest.raises(UnsupportedOpError, match="operator DEPTHWISE_CONV_2D") as exc:
        device.deploy(speech[0])
    assert exc.value.op == "DEPTHWISE_CONV_2D"


def test_protocol_version_mismatch_names_both_versions() -> None:
    dev = SimDevice("sim-v2", SimSettings(faults={"versions": (2, 3)}))
    with pytest.raises(VersionMismatchError, match=r"host speaks 1\.\.1, device speaks 2\.\.3"):
        dev.open()
    assert dev.link_provider.proc is None  # a failed open stops the simulator again


@pytest.mark.parametrize("device", [{"faults": {"silent_after": 1}}], indirect=True)
def test_silent_board_timeout_names_the_command_and_the_last_bytes(device: SimDevice, speech) -> None:
    # The short budget only for the step that must time out: HELLO (the one answer) gets the default,
    # which a busy machine needs.
    assert device.client is not None
    device.client.timeout, device.client.retries = 0.2, 1
    with pytest.raises(DeviceTimeoutError) as exc:
        device.deploy(speech[0])
    text = str(exc.value)
    assert "UPLOAD_BEGIN" in text and "after 2 attempts" in text
    assert "last bytes received: " in text and "nothing" not in text.split("last bytes received: ")[1][:10]

"""The C firmware under QEMU, through the same host driver as a real board: TFLM's outputs on the TFLM
example models, deterministic emulated latency, and bad input answered with an error code while the
firmware stays responsive."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from devices import qemu
from devices.base import ModelBinary, RunSpec
from devices.mcu import messages as m
from devices.mcu.errors import ProtocolError
from devices.mcu.framing import encode_frame
from harness.models.evaluate import tflm_outputs as tflm_reference

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "models"
FAMILY = ROOT / "harness" / "models" / "data" / "digits"

pytestmark = pytest.mark.skipif(qemu.unavailable_reason() is not None, reason=f"qemu: {qemu.unavailable_reason()}")


@pytest.fixture(scope="module")
def image() -> Path:
    # Our reference kernels (TFLM's own backends: test_qemu_tflm.py); built once per input hash.
    return qemu.locate_image(qemu.QemuSettings(backend="ref"))


@pytest.fixture(scope="module")
def device(image: Path) -> Iterator[qemu.QemuDevice]:
    dev = qemu.QemuDevice("qemu-test", qemu.QemuSettings(image=image))
    dev.open()
    yield dev
    dev.close()


def binary(path: Path) -> ModelBinary:
    data = path.read_bytes()
    return ModelBinary(path.stem, hashlib.sha256(data).hexdigest(), data)


def tflm_outputs(data: bytes, xs: np.ndarray) -> np.ndarray:
    """The TFLM runtime's int8 outputs, one flat row per input: the oracle the firmware must match."""
    return tflm_reference(data, xs, arena_size=1 << 20).reshape(len(xs), -1)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "inputs", "label"), [
    ("micro_speech_quantized", ["yes_1000ms_features_int8_49x40", "no_1000ms_features_int8_49x40",
                                "silence_1000ms_features_int8_49x40", "noise_1000ms_features_int8_49x40"], 2),
    ("person_detect", ["person_int8_96x96x1", "no_person_int8_96x96x1"], 1),
])  # fmt: skip
def test_tflm_example_models_match_tflm_bit_for_bit(device: qemu.QemuDevice, name: str, inputs: list[str],
                                                    label: int) -> None:
    path = SHARED / f"{name}.tflite"
    if not path.exists():
        pytest.skip(f"{path} not available")
    dep = device.deploy(binary(path))
    assert dep.arena_bytes and dep.arena_bytes <= 2 * 1024 * 1024
    xs = np.stack([np.fromfile(SHARED / "inputs" / f"{i}.bin", np.int8) for i in inputs])
    shape = device._alloc_or_fail().inputs[0].shape
    result = device.run(RunSpec(warmup=0, iterations=2, timing_input=xs[0].reshape(shape),
                                samples=xs.reshape(len(xs), *shape)))  # fmt: skip
    assert result.source == "emulated"
    assert len(set(result.latency_ns.tolist())) == 1  # icount time: every inference the same
    np.testing.assert_array_equal(result.outputs.reshape(len(xs), -1), tflm_outputs(path.read_bytes(), xs))
    assert int(np.argmax(result.outputs[0])) == label


def test_latency_is_identical_across_two_qemu_runs(image: Path) -> None:
    model = binary(FAMILY / "digits_channel-50w.tflite")
    figures = []
    for _ in range(2):
        dev = qemu.QemuDevice("qemu-det", qemu.QemuSettings(image=image, op_profile=False))
        dev.open()
        try:
            dev.deploy(model)
            x = np.arange(64, dtype=np.int8).reshape(1, 8, 8, 1)
            figures.append(dev.run(RunSpec(warmup=1, iterations=3, timing_input=x)).latency_ns.tolist())
        finally:
            dev.close()
    assert figures[0] == figures[1] and len(set(figures[0])) == 1


def status_of(exc: pytest.ExceptionInfo[ProtocolError]) -> str:
    return exc.value.status


def test_bad_input_is_answered_and_the_firmware_stays_responsive(device: qemu.QemuDevice) -> None:
    c = device.client
    assert c is not None and c.info is not None
    c.reset()  # nothing uploaded: commands out of order
    for cmd, payload in ((m.Cmd.INVOKE, struct.pack("<IIB3x", 1, 0, 0)), (m.Cmd.ALLOCATE, bytes(4)),
                         (m.Cmd.UPLOAD_END, b""), (m.Cmd.GET_OUTPUT, struct.pack("<BBIH", 0, 0, 0, 8))):
        with pytest.raises(ProtocolError) as exc:
            c.request(cmd, payload)
        assert status_of(exc) == "E_STATE"
    # An upload beyond the device's capacity is refused up front.
    with pytest.raises(ProtocolError) as exc:
        c.request(m.Cmd.UPLOAD_BEGIN, struct.pack("<II", c.info.max_model_size + 1, 0))
    assert status_of(exc) == "E_TOO_LARGE"
    # A frame whose length field lies, and one longer than any buffer: dropped, the link recovers.
    lying = bytearray(encode_frame(m.Cmd.PING, 0, 900, 0, b"abc"))
    c.link.write(b"\x00" + bytes(lying[:-3]) + b"\xff\xff\x00")
    c.link.write(encode_frame(m.Cmd.PING, 0, 901, 0, bytes(c.info.max_payload + 500)))
    assert c.ping(b"still here") == b"still here"
    # A model with an operator the firmware lacks is refused by name.
    lstm = SHARED / "trained_lstm_int8.tflite"
    if lstm.exists():
        c.upload(lstm.read_bytes())
        with pytest.raises(ProtocolError, match="UNIDIRECTIONAL_SEQUENCE_LSTM") as exc:
            c.allocate()
        assert status_of(exc) == "E_UNSUPPORTED_OP"
    # A model whose arena does not fit the limit: the bytes it needs come back.
    data = (FAMILY / "digits_dense.tflite").read_bytes()
    c.upload(data)
    with pytest.raises(ProtocolError) as exc:
        c.allocate(1024)
    assert status_of(exc) == "E_ARENA_TOO_SMALL"
    needed = c.allocate().arena_used
    assert needed > 1024 and c.allocate(needed).arena_used == needed
    # A damaged model (garbage with a valid upload CRC) is refused, not run.
    c.upload(bytes(range(256)) * 8)
    with pytest.raises(ProtocolError) as exc:
        c.allocate()
    assert status_of(exc) == "E_MODEL_INVALID"
    assert c.ping(b"ok") == b"ok"

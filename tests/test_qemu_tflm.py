"""TensorFlow Lite Micro itself in the firmware, under QEMU: the `tflm` (reference kernels) and
`tflm-cmsis-nn` images built from ../shared/third_party, the bundled family and the TFLM example
models run on both, outputs compared with the tflite_micro Python runtime (exact for `tflm`; the
CMSIS-NN differences are measured and bounded, not hidden), deterministic instruction counts, the
on-target arena, and bad input answered per model while the firmware keeps answering."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tflite

from devices import firmware, qemu
from devices.base import ModelBinary, RunSpec
from devices.mcu import messages as m
from devices.mcu.errors import ArenaTooSmallError, ProtocolError, UnsupportedOpError
from harness.models.evaluate import tflm_outputs

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "models"
FAMILY = ROOT / "harness" / "models" / "data" / "digits"
BACKENDS = ("tflm", "tflm-cmsis-nn")
#: The TFLM example models that run on the firmware, with the input files that come with them.
SHARED_MODELS = {
    "hello_world_int8": [],
    "micro_speech_quantized": ["yes_1000ms_features_int8_49x40", "no_1000ms_features_int8_49x40"],
    "person_detect": ["person_int8_96x96x1", "no_person_int8_96x96x1"],
    "trained_lstm_int8": [],
    "keyword_scrambled": [],
}


#: Measured, not explained yet: shown as xfail so the difference stays visible, never silently passed.
KNOWN_DEVIATIONS = {
    "trained_lstm_int8": "up to 30 LSB on 7 of 40 outputs with full-range random inputs (benchmarks/qemu_backends.py); "
    "the Python runtime is a later TFLM nightly (0.dev20261023) than the firmware's commit, and the LSTM's "
    "float/double set-up runs on newlib soft-float here, glibc there: cause not isolated",
}

pytestmark = [pytest.mark.slow, pytest.mark.skipif(qemu.unavailable_reason() is not None,
                                                    reason=f"qemu: {qemu.unavailable_reason()}")]


def binary(path: Path, data: bytes | None = None) -> ModelBinary:
    data = path.read_bytes() if data is None else data
    return ModelBinary(path.stem, hashlib.sha256(data).hexdigest(), data)


_OPEN: dict[str, qemu.QemuDevice] = {}


@pytest.fixture(scope="module", autouse=True)
def _close_devices() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.popitem()[1].close()


def device(backend: str) -> qemu.QemuDevice:
    """One QEMU per backend for the module; its image comes from the cache (built once per input hash)."""
    if firmware.tflm_tree(backend) is None:
        pytest.skip(f"no offline TFLM tree for {backend} under {firmware.third_party_dir()}")
    if backend not in _OPEN:
        dev = qemu.QemuDevice(f"qemu-{backend}", qemu.QemuSettings(backend=backend))  # type: ignore[arg-type]
        dev.open()
        _OPEN[backend] = dev
    return _OPEN[backend]


def inputs_for(dev: qemu.QemuDevice, name: str, n_random: int = 2) -> np.ndarray:
    desc = dev._alloc_or_fail().inputs[0]
    dtype = np.dtype(desc.dtype)  # int8, or int16 (keyword_scrambled)
    assert dtype.kind == "i", f"{name}: integer input expected, got {desc.dtype}"
    files = SHARED_MODELS.get(name, [])
    xs = [np.fromfile(SHARED / "inputs" / f"{f}.bin", dtype).reshape(desc.shape) for f in files]
    rng = np.random.default_rng(sum(name.encode()))
    info = np.iinfo(dtype)
    xs += [rng.integers(info.min, info.max, size=desc.shape, dtype=dtype, endpoint=True) for _ in range(n_random)]
    return np.stack(xs)


def models() -> list[Path]:
    family = sorted(FAMILY.glob("*.tflite"))
    shared = [SHARED / f"{n}.tflite" for n in SHARED_MODELS if (SHARED / f"{n}.tflite").exists()]
    return family + shared


@pytest.mark.parametrize("path", models(), ids=lambda p: p.stem)
@pytest.mark.parametrize("backend", BACKENDS)
def test_outputs_agree_with_the_tflm_python_runtime(backend: str, path: Path) -> None:
    dev = device(backend)
    dep = dev.deploy(binary(path))
    used, minimum = dep.details["arena_used_bytes"], dep.details["arena_min_bytes"]
    assert used > 0 and minimum is not None and 0 < minimum <= dep.details["arena_capacity"]
    xs = inputs_for(dev, path.stem)
    r = dev.run(RunSpec(warmup=1, iterations=2, timing_input=xs[0], samples=xs))
    assert r.details["backend"] == backend and r.details["tflm_commit"] == firmware.tflm_commit()
    # icount time: deterministic run to run (test below); within a run the first timed inference of
    # TFLM can differ from the next by a few hundred instructions (seen: 689416 vs 689205, 137065 vs
    # 136921): bounded here, reported by benchmarks/qemu_backends.py.
    counts = r.details["instructions"]
    assert (max(counts) - min(counts)) <= 1000 + 1e-3 * min(counts)
    assert r.op_profile is not None
    profile = r.op_profile.ops
    assert profile and abs(sum(p.share for p in profile) - 1.0) < 1e-9
    assert [p.index for p in profile] == list(range(len(profile)))
    expected = tflm_outputs(path.read_bytes(), xs, arena_size=1 << 21).reshape(len(xs), -1).astype(np.int32)
    lsb = int(np.abs(r.outputs.reshape(len(xs), -1).astype(np.int32) - expected).max())
    if path.stem in KNOWN_DEVIATIONS and lsb:
        pytest.xfail(f"{path.stem} on {backend}: {lsb} LSB from the TFLM Python runtime; {KNOWN_DEVIATIONS[path.stem]}")
    if backend == "tflm":
        assert lsb == 0, f"{path.stem}: TFLM on the target differs from the TFLM Python runtime by {lsb} LSB"
    else:  # CMSIS-NN's kernels round differently in places: measured (benchmarks/), bounded here
        assert lsb <= 2, f"{path.stem}: CMSIS-NN differs from the TFLM Python runtime by {lsb} LSB"


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_qemu_runs_give_identical_instruction_counts(backend: str) -> None:
    model = binary(FAMILY / "digits_channel-50w.tflite")
    x = np.arange(64, dtype=np.int8).reshape(1, 8, 8, 1)
    if firmware.tflm_tree(backend) is None:
        pytest.skip(f"no offline TFLM tree for {backend} under {firmware.third_party_dir()}")
    figures = []
    for _ in range(2):
        settings = qemu.QemuSettings(backend=backend, arena_search=False)  # type: ignore[arg-type]
        dev = qemu.QemuDevice("qemu-det", settings)
        dev.open()
        try:
            dev.deploy(model)
            r = dev.run(RunSpec(warmup=1, iterations=3, timing_input=x))
            figures.append((r.details["instructions"], [p.ticks for p in r.op_profile.ops]))
        finally:
            dev.close()
    assert figures[0] == figures[1]


def with_operator(data: bytes, builtin: int) -> bytes:
    """The model with every operator code rewritten in place to `builtin` (both schema fields)."""
    buf = bytearray(data)
    model = tflite.Model.GetRootAsModel(buf, 0)
    for i in range(model.OperatorCodesLength()):
        tab = model.OperatorCodes(i)._tab
        for slot, fmt in ((4, "<b"), (10, "<i")):  # deprecated_builtin_code (int8), builtin_code (int32)
            off = tab.Offset(slot)
            if off:
                struct.pack_into(fmt, buf, tab.Pos + off, builtin)
    return bytes(buf)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_input_is_a_clear_error_and_the_firmware_keeps_answering(backend: str) -> None:
    dev = device(backend)
    c = dev.client
    assert c is not None and c.info is not None
    good = SHARED / "hello_world_int8.tflite"
    data = good.read_bytes() if good.exists() else (FAMILY / "digits_dense.tflite").read_bytes()
    # An operator the resolver lacks (LOCAL_RESPONSE_NORMALIZATION = 13): refused by name.
    with pytest.raises(UnsupportedOpError, match="LOCAL_RESPONSE_NORMALIZATION") as unsupported:
        dev.deploy(binary(good, with_operator(data, 13)))
    assert unsupported.value.op == "LOCAL_RESPONSE_NORMALIZATION"
    # An arena too small: TFLM's own reason comes back, and the full arena still works after.
    c.upload(data)
    with pytest.raises(ArenaTooSmallError) as small:
        c.allocate(64)
    assert "allocate" in small.value.message.lower()
    assert c.allocate().arena_used > 64
    # A model larger than the model buffer is refused before any byte is sent.
    with pytest.raises(ProtocolError) as large:
        c.request(m.Cmd.UPLOAD_BEGIN, struct.pack("<II", c.info.max_model_size + 1, 0))
    assert large.value.status == "E_TOO_LARGE"
    # Bytes that arrived intact (CRC fine) but are no flatbuffer, and a truncated model: the
    # flatbuffers verifier refuses both before TFLM reads an offset.
    for junk in (bytes(range(256)) * 8, data[: len(data) // 2]):
        c.upload(junk)
        with pytest.raises(ProtocolError) as invalid:
            c.allocate()
        assert invalid.value.status == "E_MODEL_INVALID"
    assert c.ping(b"still here") == b"still here"
    dep = dev.deploy(binary(good, data))  # and a good model runs again
    assert dep.arena_bytes and dep.arena_bytes > 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_device_info_carries_backend_commit_and_image_sizes(backend: str) -> None:
    for dev in [device(backend)]:
        info = dev.info()
        assert info.details["backend"] == backend and info.details["tflm_commit"] == firmware.tflm_commit()
        sizes = info.details["image_sizes"]
        assert sizes["text"] > 50_000 and sizes["bss"] >= sizes["arena_buffer"] > 0
        assert info.details["image_hash"]

"""The `mlperf` device kind against the peer DUT: MLPerf Tiny's official benchmark/api code, compiled
unchanged with bench's submitter port, on QEMU mps2-an386. Handshake, hex download, MLPerf-style
windows, accuracy, a sweep, and each kind of bad input answered by a clear error (with a relay in the
line that loses bytes or goes quiet, as real USB-serial bridges do)."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from devices import firmware, qemu
from devices.base import ModelBinary, RunSpec
from devices.link_relay import LinkRelay
from devices.mlperf import images
from devices.mlperf.client import EnergyModeError, MlperfError
from devices.mlperf.driver import MlperfDevice, MlperfSettings
from harness.errors import DeviceError, DeviceTimeoutError
from harness.models.dataset import input_spec, load_dataset
from harness.models.evaluate import tflm_outputs
from harness.models.tflite_file import read_model
from tests.conftest import run_bench, write_config

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "harness" / "models" / "data" / "digits"
DENSE = DIGITS / "digits_dense.tflite"

_why = qemu.unavailable_reason() or images.missing()
pytestmark = pytest.mark.skipif(_why is not None, reason=f"mlperf peer: {_why}")
log = logging.getLogger("test.mlperf")


#: The peer runs TFLM as a submission would: the backend bench's `qemu` kind uses by default (TFLM with
#: CMSIS-NN when its tree is in ../shared/third_party), whose TFLM build it links rather than recompiles.
PEER_BACKEND = os.environ.get("BENCH_MLPERF_BACKEND") or firmware.default_backend()

#: Answer and start-up timeouts for steps that are not meant to time out: they only guard against a hang,
#: and a busy machine delays QEMU's answers by seconds (the driver's 5 s default is for real boards).
ROOMY_S = 60.0


@pytest.fixture(scope="module")
def peer() -> Path:
    return images.build(DENSE, backend=PEER_BACKEND)["mlperf_peer.elf"]


def binary(path: Path) -> ModelBinary:
    data = path.read_bytes()
    return ModelBinary(path.stem, hashlib.sha256(data).hexdigest(), data)


@pytest.fixture
def qemu_url(peer: Path) -> Iterator[str]:
    """The peer under QEMU on its own; tests connect through a relay or directly."""
    proc = qemu.QemuProcess("peer", qemu.QemuSettings(image=peer, icount_sleep=True, startup_timeout_s=ROOMY_S),
                            peer, log)
    url = proc.start()
    yield url
    proc.stop()


def device_on(url: str, **settings) -> MlperfDevice:
    return MlperfDevice("peer", MlperfSettings(port=url, **{"timeout_s": ROOMY_S, **settings}))


def test_handshake_names_the_built_in_model_and_performance_mode(peer: Path) -> None:
    dev = MlperfDevice("peer", MlperfSettings(image=peer, timeout_s=ROOMY_S))
    dev.open()
    try:
        info = dev.info()
        assert info.kind == "mlperf"
        assert info.details["model_id"] == "digits_dense"
        assert info.details["timestamp_mode"] == "performance"
        assert info.runtime_version == "ULPMark for tinyML Firmware V0.0.1"  # the official code's profile
        assert info.details["latency_source"] == "emulated"
    finally:
        dev.close()


def test_windows_and_accuracy_match_tflm(peer: Path) -> None:
    mf = read_model(DENSE)
    data = load_dataset(DIGITS / "digits_test.npz", input_spec(mf), samples=24)
    dev = MlperfDevice("peer", MlperfSettings(image=peer, windows=3, min_seconds=0.2, timeout_s=ROOMY_S))
    dev.open()
    try:
        dev.deploy(binary(DENSE))
        r = dev.run(RunSpec(warmup=1, iterations=1, timing_input=data.x[0], samples=data.x))
    finally:
        dev.close()
    ml = r.details["mlperf"]
    assert r.source == "emulated" and len(r.latency_ns) == 3
    assert all(w["elapsed_us"] >= 0.2e6 for w in ml["windows"])  # every window >= min_seconds of DUT time
    assert ml["median_throughput_inf_s"] == pytest.approx(1e6 / np.median([w["latency_us"] for w in ml["windows"]]))
    assert r.details["download"]["verified"] and r.details["download"]["restarts"] == 0
    ref = tflm_outputs(mf.data, data.x).reshape(len(data.x), -1)
    assert r.outputs is not None and r.outputs.shape == ref.shape
    # m-results are dequantised floats with 6 decimals: back in int8 they are the TFLM runtime's outputs.
    assert int(np.abs(r.outputs.astype(int) - ref.astype(int)).max()) <= 1
    assert float(np.mean(r.outputs.argmax(1) == data.y)) >= 0.9


def test_quirks_of_the_official_code_that_the_client_works_around(qemu_url: str) -> None:
    dev = device_on(qemu_url)
    dev.open()
    try:
        c = dev.client
        assert c is not None
        c.load(bytes(range(20)))
        assert "m-warmup-start-10" in c.command("infer 1", timeout=30)  # W defaults to 10, not 0
        assert "m-warmup-start-0" in c.infer(1, 0, timeout=30).lines  # so the client always sends it
        printed = c.command("db print 4 8")  # the arguments are ignored: all 20 bytes, 8 a line
        assert printed == ["m-buffer-00-01-02-03-04-05-06-07", "m-buffer-08-09-0a-0b-0c-0d-0e-0f",
                           "m-buffer-10-11-12-13"]
        with pytest.raises(ValueError, match="80-character"):
            c.command("db " + "00" * 39)  # 81 characters: the DUT would silently keep 80
        with pytest.raises(MlperfError, match=r"Insufficent number of hex digits"):
            c.command("db 123")
    finally:
        dev.close()


def test_other_variant_is_refused_naming_the_firmware_model(qemu_url: str) -> None:
    dev = device_on(qemu_url)
    dev.open()
    try:
        with pytest.raises(DeviceError, match=r"holds model 'digits_dense'.*digits_channel-50w"):
            dev.deploy(binary(DIGITS / "digits_channel-50w.tflite"))
    finally:
        dev.close()
    # A user mapping says which variants the firmware's model stands for.
    dev = device_on(qemu_url.replace("127.0.0.1", "localhost"), models={"digits_dense": ["digits_channel-50w"]})
    dev.open()
    try:
        deployed = dev.deploy(binary(DIGITS / "digits_channel-50w.tflite"))
        assert "models['digits_dense']" in deployed.details["matched_by"]
    finally:
        dev.close()


def test_a_lost_hex_digit_restarts_the_download(qemu_url: str) -> None:
    # Byte 14 of the host's stream is the 4th hex digit of the first `db` line (after name%profile%
    # timestamp%db load 64%): the DUT refuses the odd count, the client starts again from `db load`.
    sent = len("name%profile%timestamp%db load 64%db ")
    relay = LinkRelay(qemu_url, drop=lambda i, _b: i == sent + 3)
    dev = device_on(relay.start(), windows=1)
    try:
        dev.open()
        dev.deploy(binary(DENSE))
        r = dev.run(RunSpec(warmup=0, iterations=2))
        assert r.details["download"]["restarts"] == 1 and r.details["download"]["verified"]
        assert relay.dropped == 1
    finally:
        dev.close()
        relay.stop()


def test_hex_digits_lost_on_every_line_fail_the_cell_with_the_dut_answer(qemu_url: str) -> None:
    state = {"n": 0}

    def drop(_i: int, b: int) -> bool:  # lose the 5th character of every `db <hex>` command
        state["n"] = 0 if b == ord("%") else state["n"] + 1
        return state["n"] == 5 and b != ord("%")

    relay = LinkRelay(qemu_url)
    url = relay.start()
    dev = device_on(url, windows=1, retries=1)
    try:
        dev.open()
        relay.drop = drop
        dev.deploy(binary(DENSE))
        with pytest.raises(MlperfError) as exc:
            dev.run(RunSpec(warmup=0, iterations=1))
        assert "could not be downloaded in 2 attempts" in exc.value.message
        assert "e-[" in exc.value.message  # what came back, from the serial log
    finally:
        dev.close()
        relay.stop()


def test_mangled_command_reports_unknown_command(qemu_url: str) -> None:
    relay = LinkRelay(qemu_url)
    dev = device_on(relay.start(), windows=1)
    try:
        dev.open()
        dev.deploy(binary(DENSE))
        dev.client.load(bytes(64))
        relay.drop = lambda i, b: b == ord("i") and relay.host_bytes > 0  # "infer" arrives as "nfer"
        with pytest.raises(MlperfError, match=r"Unknown command: nfer"):
            dev.client.infer(1, 0, timeout=ROOMY_S)
    finally:
        dev.close()
        relay.stop()


def test_line_going_quiet_mid_download_times_out_naming_what_was_awaited(qemu_url: str) -> None:
    stall = len("name%profile%timestamp%db load 64%db ") + 20
    relay = LinkRelay(qemu_url, stall_after=stall)
    dev = device_on(relay.start(), windows=1, retries=0)
    try:
        # The handshake gets the roomy default (a busy machine delays QEMU's answers); only the step
        # that must time out, the download the relay stalls, gets the short budget.
        dev.open()
        dev.deploy(binary(DENSE))
        assert dev.client is not None
        dev.client.timeout = 1.0
        with pytest.raises(MlperfError) as exc:
            dev.run(RunSpec(warmup=0, iterations=1))
        assert isinstance(exc.value.__context__, DeviceTimeoutError) or "no answer" in exc.value.message
        assert "awaiting db" in exc.value.message and "m-[Expecting 64 bytes]" in exc.value.message
    finally:
        dev.close()
        relay.stop()


def test_energy_mode_firmware_is_refused_at_handshake() -> None:
    energy = images.build(DENSE, energy_mode=True)["mlperf_peer.elf"]  # ref backend: mode is not about kernels
    dev = MlperfDevice("energy", MlperfSettings(image=energy, timeout_s=ROOMY_S))
    with pytest.raises(EnergyModeError, match=r"energy mode.*no m-lap-us") as exc:
        dev.open()
    assert "EE_CFG_ENERGY_MODE=0" in (exc.value.hint or "")


@pytest.mark.slow
def test_sweep_runs_the_matching_variant_and_fails_the_other_cell_clearly(peer: Path, tmp_path: Path) -> None:
    write_config(tmp_path / "bench.toml", f"""
[store]
url = "sqlite:///bench.db"

[[devices]]
name = "mlperf-peer"
kind = "mlperf"
image = "{peer}"
windows = 2
min_seconds = 0.1

[sweep]
models = ["{DENSE}", "{DIGITS / 'digits_channel-50w.tflite'}"]
repeats = 1
iterations = 1
warmup = 1
accuracy_samples = 0
""")
    r = run_bench("sweep", "-c", "bench.toml", cwd=tmp_path, timeout=600)
    assert r.returncode == 1, r.stdout[-2000:] + r.stderr[-2000:]  # one cell failed, the sweep went on
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'bench.db'}")
    with engine.connect() as conn:
        rows = {row["variant_name"]: dict(row) for row in conn.execute(sa.text(
            "SELECT variant_name, status, error, latency_source, latency_ns FROM measurements")).mappings()}
    engine.dispose()
    assert rows["digits_dense"]["status"] == "ok" and rows["digits_dense"]["latency_source"] == "emulated"
    assert rows["digits_channel-50w"]["status"] == "failed"
    assert "holds model 'digits_dense'" in rows["digits_channel-50w"]["error"]
    # The report quotes the MLPerf-style figures in the runner's terms.
    summary = next(tmp_path.glob("reports/*/summary.md")).read_text()
    assert "### MLPerf Tiny figures" in summary and "not MLPerf rules (2 windows ≥ 0.1 s)" in summary

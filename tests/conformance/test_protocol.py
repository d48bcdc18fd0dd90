"""A device speaks firmware/PROTOCOL.md: framing, errors, upload, allocation, timing, outputs, reset."""

from __future__ import annotations

import struct
import time
from pathlib import Path

import numpy as np
import pytest

from devices.mcu import messages as m
from devices.mcu.client import McuClient
from devices.mcu.errors import ProtocolError, VersionMismatchError
from devices.mcu.framing import Frame, crc32, encode_frame

#: A guard against a device that never answers, not a speed requirement: a busy machine delays the
#: simulator, and "no answer" is judged by the order of answers (see `answers_up_to_a_ping`), not a clock.
HANG_S = 120.0
MODELS = Path(__file__).resolve().parents[2].parent / "shared" / "models"


def model_bytes(name: str = "hello_world_int8") -> bytes:
    path = MODELS / f"{name}.tflite"
    if not path.exists():
        pytest.skip(f"{path} not available")
    return path.read_bytes()


def exchange(c: McuClient, raw: bytes, seq: int, timeout: float = HANG_S) -> tuple[Frame | None, list[Frame]]:
    """Write raw bytes; return the response with `seq` and the events seen before it."""
    c.link.write(raw)
    events: list[Frame] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for item in c.poll(deadline):
            if isinstance(item, Frame) and item.is_event:
                events.append(item)
            elif isinstance(item, Frame) and item.seq == seq:
                return item, events
    return None, events


def answers_up_to_a_ping(c: McuClient, raw: bytes, ping_seq: int) -> list[Frame]:
    """Write raw bytes, then a PING (seq `ping_seq`); return every frame the device sent up to the PING's answer.

    The device handles frames in the order they arrive, so anything it says about `raw` (an answer, a
    NAK) comes before that answer: "no answer to raw" is then a fact about the stream, not a guess that
    a quiet interval was long enough. The PING is sent again now and then (a retransmission is answered
    from the device's copy), should its first copy be lost in `raw`'s remains."""
    ping = encode_frame(m.Cmd.PING, 0, ping_seq, 0, b"order")
    c.link.write(raw + b"\x00" + ping)
    seen: list[Frame] = []
    deadline = time.monotonic() + HANG_S
    resend = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        for item in c.poll(min(deadline, resend)):
            if isinstance(item, Frame):
                seen.append(item)
                if item.is_response and item.seq == ping_seq and item.cmd == m.Cmd.PING:
                    return seen
        if time.monotonic() >= resend:
            c.link.write(b"\x00" + ping)
            resend = time.monotonic() + 5.0
    raise AssertionError(f"no answer to PING seq {ping_seq} within {HANG_S} s; frames seen: {seen}")


def status_of(exc: pytest.ExceptionInfo[ProtocolError]) -> str:
    return exc.value.status


def deploy(c: McuClient, data: bytes) -> m.Allocation:
    c.upload(data)
    return c.allocate()


# --- HELLO and framing -----------------------------------------------------------------------


def test_hello_describes_the_device(mcu: McuClient) -> None:
    info = mcu.info
    assert info is not None
    assert info.version == m.PROTOCOL_VERSION
    assert info.device_min_version <= info.version <= info.device_max_version
    assert info.clock_hz > 0 and info.arena_capacity > 0 and info.max_model_size > 0
    assert 256 <= info.max_payload <= 0xFFFF and info.rx_window >= 1
    assert info.cycle_source in set(m.CycleSource)
    assert info.board and info.cpu and info.firmware_version and info.backend and info.backend_version


def test_hello_negotiates_the_highest_common_version(mcu: McuClient) -> None:
    mcu.versions = (1, 9)
    assert mcu.hello().version == 1
    mcu.versions = (7, 9)
    with pytest.raises(VersionMismatchError, match=r"host speaks 7\.\.9, device speaks 1\.\.1"):
        mcu.hello()


def test_ping_echoes_a_full_payload(mcu: McuClient) -> None:
    assert mcu.info is not None
    data = bytes(range(256)) * (mcu.info.max_payload // 256)
    assert mcu.ping(data) == data
    assert mcu.ping(b"") == b""


def test_unknown_command_and_bad_length_are_errors(mcu: McuClient) -> None:
    with pytest.raises(ProtocolError) as exc:
        mcu.request(0x5A, b"")
    assert status_of(exc) == "E_UNKNOWN_CMD"
    with pytest.raises(ProtocolError) as exc:
        mcu.request(m.Cmd.HELLO, b"\x01\x00\x01")
    assert status_of(exc) == "E_BAD_LENGTH"


def test_corrupted_frame_is_naked_and_the_link_recovers(mcu: McuClient) -> None:
    bad = bytearray(encode_frame(m.Cmd.PING, 0, 4000, 0, b"corrupt me"))
    bad[4] ^= 0x10
    seen = answers_up_to_a_ping(mcu, b"\x00" + bytes(bad), 4100)
    assert not [f for f in seen if f.seq == 4000 and not f.is_event], seen  # the corrupted frame is not answered
    assert any(f.is_event and f.cmd == m.Cmd.NAK for f in seen), seen  # but NAKed, before the next answer
    assert mcu.ping(b"still alive") == b"still alive"


def test_garbage_before_a_frame_is_skipped(mcu: McuClient) -> None:
    response, _ = exchange(mcu, b"\x55\xaa boot noise \r\n\x00" + encode_frame(m.Cmd.PING, 0, 4001, 0, b"ok"), 4001)
    assert response is not None and response.payload == b"ok"


def test_oversized_frame_is_dropped(mcu: McuClient) -> None:
    assert mcu.info is not None
    huge = encode_frame(m.Cmd.PING, 0, 4002, 0, bytes(mcu.info.max_payload + 64))
    seen = answers_up_to_a_ping(mcu, huge, 4102)
    assert not [f for f in seen if f.seq == 4002 and not f.is_event], seen
    assert mcu.ping(b"after") == b"after"


def test_a_retransmitted_request_is_answered_from_the_copy(mcu: McuClient) -> None:
    deploy(mcu, model_bytes())
    mcu.set_input(0, b"\x10")
    raw = b"\x00" + encode_frame(m.Cmd.INVOKE, 0, 4003, 0, struct.pack("<IIB3x", 3, 0, 0))
    first, _ = exchange(mcu, raw, 4003)
    again, _ = exchange(mcu, raw, 4003)
    assert first is not None and again is not None
    assert first.payload == again.payload  # not re-run: a re-run would count new cycles


# --- upload --------------------------------------------------------------------------------------


def test_upload_is_checked_and_resumable(mcu: McuClient) -> None:
    data = model_bytes("micro_speech_quantized")
    begin = mcu.request(m.Cmd.UPLOAD_BEGIN, struct.pack("<II", len(data), crc32(data)))
    resume, max_chunk = struct.unpack("<IH", begin.payload)
    assert resume == 0 and max_chunk >= 252
    half = (len(data) // 2 // max_chunk) * max_chunk or max_chunk
    for off in range(0, half, max_chunk):
        mcu.request(m.Cmd.UPLOAD_CHUNK, struct.pack("<I", off) + data[off : off + max_chunk])
    # A chunk beyond the watermark is refused with the watermark.
    with pytest.raises(ProtocolError) as exc:
        mcu.request(m.Cmd.UPLOAD_CHUNK, struct.pack("<I", half + max_chunk) + data[half + max_chunk :][:16])
    assert status_of(exc) == "E_SEQUENCE"
    with pytest.raises(ProtocolError) as exc:
        mcu.request(m.Cmd.UPLOAD_END)
    assert status_of(exc) == "E_STATE"
    # The same model again resumes where the device is.
    again = mcu.request(m.Cmd.UPLOAD_BEGIN, struct.pack("<II", len(data), crc32(data)))
    assert struct.unpack("<IH", again.payload)[0] == half
    result = mcu.upload(data)
    assert result.resumed_from == half


def test_checksum_mismatch_is_reported(mcu: McuClient) -> None:
    data = model_bytes()
    mcu.request(m.Cmd.UPLOAD_BEGIN, struct.pack("<II", len(data), crc32(data) ^ 1))
    assert mcu.info is not None
    step = mcu.info.max_payload - 4
    for off in range(0, len(data), step):
        mcu.request(m.Cmd.UPLOAD_CHUNK, struct.pack("<I", off) + data[off : off + step])
    with pytest.raises(ProtocolError) as exc:
        mcu.request(m.Cmd.UPLOAD_END)
    assert status_of(exc) == "E_CHECKSUM"


def test_model_beyond_the_limit_is_refused_up_front(mcu: McuClient) -> None:
    assert mcu.info is not None
    with pytest.raises(ProtocolError, match=f"max {mcu.info.max_model_size} bytes"):
        mcu.request(m.Cmd.UPLOAD_BEGIN, struct.pack("<II", mcu.info.max_model_size + 1, 0))


# --- allocate, run, outputs ---------------------------------------------------------------------


def test_commands_before_allocation_are_state_errors(mcu: McuClient) -> None:
    mcu.reset()
    for cmd, payload in ((m.Cmd.ALLOCATE, bytes(4)), (m.Cmd.INVOKE, struct.pack("<IIB3x", 1, 0, 0))):
        with pytest.raises(ProtocolError) as exc:
            mcu.request(cmd, payload)
        assert status_of(exc) == "E_STATE"


def test_invoke_reports_every_count_and_a_consistent_summary(mcu: McuClient) -> None:
    alloc = deploy(mcu, model_bytes())
    assert 0 < alloc.arena_used <= alloc.arena_capacity
    assert [t.shape for t in alloc.inputs] == [(1, 1)] and alloc.inputs[0].dtype == "int8"
    mcu.set_input(0, b"\x05")
    s = mcu.invoke(7, warmup=2, marker=True)
    assert (s.n, s.warmup) == (7, 2) and s.all_logged and s.clock_hz > 0
    cycles = mcu.get_cycles(7)
    assert len(cycles) == 7 and min(cycles) == s.min and max(cycles) == s.max and sum(cycles) == s.sum
    assert s.sum_sq == sum(c * c for c in cycles) and sum(s.histogram) == 7 and s.hist_base == cycles[0]
    assert mcu.info is not None and s.marker_pin == mcu.info.marker_pin


def test_beyond_the_count_log_only_the_summary_is_kept(mcu: McuClient) -> None:
    assert mcu.info is not None
    if not 0 < mcu.info.max_cycle_log <= 4096:
        pytest.skip("device keeps no per-inference log, or a very large one")
    deploy(mcu, model_bytes())
    s = mcu.invoke(mcu.info.max_cycle_log + 1)
    assert not s.all_logged and sum(s.histogram) == s.n
    with pytest.raises(ProtocolError) as exc:
        mcu.get_cycles(1)
    assert status_of(exc) == "E_STATE"


def test_outputs_match_the_tflm_reference(mcu: McuClient) -> None:
    from tflite_micro import runtime

    data = model_bytes("micro_speech_quantized")
    alloc = deploy(mcu, data)
    x = (MODELS / "inputs" / "yes_1000ms_features_int8_49x40.bin").read_bytes()
    mcu.set_input(0, x)
    mcu.invoke(1)
    out = np.frombuffer(mcu.get_output(0, alloc.outputs[0].nbytes), dtype=np.int8)
    ref = runtime.Interpreter.from_bytes(data, arena_size=64 * 1024)
    ref.set_input(np.frombuffer(x, np.int8).reshape(1, 1960), 0)
    ref.invoke()
    expected = ref.get_output(0).reshape(-1)
    assert int(np.argmax(out)) == int(np.argmax(expected)) == 2  # "yes"
    assert np.max(np.abs(out.astype(int) - expected.astype(int))) <= 1


def test_bad_tensor_arguments_are_refused(mcu: McuClient) -> None:
    deploy(mcu, model_bytes())
    for payload in (struct.pack("<BBI", 3, 0, 0) + b"\x01", struct.pack("<BBI", 0, 0, 1) + b"\x01\x02"):
        with pytest.raises(ProtocolError) as exc:
            mcu.request(m.Cmd.SET_INPUT, payload)
        assert status_of(exc) == "E_BAD_ARG"
    with pytest.raises(ProtocolError) as exc:
        mcu.request(m.Cmd.INVOKE, struct.pack("<IIB3x", 0, 0, 0))
    assert status_of(exc) == "E_BAD_ARG"


def test_per_op_profile_lists_every_operator(mcu: McuClient) -> None:
    deploy(mcu, model_bytes("micro_speech_quantized"))
    mcu.invoke(3, profile=True)
    n, ops = mcu.get_profile()
    assert n == 3
    assert [op.builtin_code for op in ops] == [22, 4, 9, 25]  # RESHAPE, DEPTHWISE_CONV_2D, FC, SOFTMAX
    assert all(op.cycles_total > 0 for op in ops)


def test_reset_announces_a_new_boot_and_forgets_the_model(mcu: McuClient) -> None:
    deploy(mcu, model_bytes())
    assert mcu.info is not None
    before = mcu.info.boot_id
    info = mcu.reset()
    assert info.boot_id != before
    with pytest.raises(ProtocolError) as exc:
        mcu.request(m.Cmd.ALLOCATE, bytes(4))
    assert status_of(exc) == "E_STATE"

"""Framing and payload layouts of firmware/PROTOCOL.md, checked byte for byte."""

from __future__ import annotations

import struct

import pytest

from devices.mcu import messages as m
from devices.mcu.framing import (
    NAK_COBS,
    NAK_CRC,
    NAK_TOO_LONG,
    BadFrame,
    Frame,
    FrameDecoder,
    cobs_decode,
    cobs_encode,
    crc32,
    encode_frame,
)


def test_crc_is_crc32_iso_hdlc() -> None:
    assert crc32(b"123456789") == 0xCBF43926


@pytest.mark.parametrize("n", [0, 1, 253, 254, 255, 508, 1000])
def test_cobs_round_trip_has_no_zeros(n: int) -> None:
    no_zeros = bytes(range(1, 256)) * (n // 255) + bytes([7]) * (n % 255)
    for data in (bytes(n), no_zeros, bytes(i % 256 for i in range(n))):
        enc = cobs_encode(data)
        assert 0 not in enc
        assert len(enc) <= len(data) + len(data) // 254 + 1
        assert cobs_decode(enc) == data


def test_cobs_known_vectors() -> None:
    assert cobs_encode(b"\x00") == b"\x01\x01"
    assert cobs_encode(b"\x11\x22\x00\x33") == b"\x03\x11\x22\x02\x33"
    with pytest.raises(ValueError):
        cobs_decode(b"\x05\x11")


def test_frame_layout_is_little_endian() -> None:
    wire = encode_frame(0x22, 0x01, 0x1234, 7, b"\xaa\xbb")
    assert wire.endswith(b"\x00")
    body = cobs_decode(wire[:-1])
    assert body[:8] == bytes([0x22, 0x01, 0x34, 0x12, 0x02, 0x00, 7, 0])
    assert struct.unpack("<I", body[-4:])[0] == crc32(body[:-4])


def test_decoder_resynchronises_after_garbage_and_split_feeds() -> None:
    good = encode_frame(m.Cmd.PING, 0, 5, 0, b"hello\x00world")
    stream = b"\x13\x37garbage" + b"\x00" + good + b"\xff\xfe" + b"\x00" + good
    dec = FrameDecoder()
    items = [item for i in range(len(stream)) for item in dec.feed(stream[i : i + 1])]
    frames = [x for x in items if isinstance(x, Frame)]
    assert [f.payload for f in frames] == [b"hello\x00world"] * 2
    assert all(isinstance(x, BadFrame) for x in items if not isinstance(x, Frame))
    assert dec.bad_frames == 2


def test_decoder_flags_crc_cobs_and_overlong_frames() -> None:
    good = bytearray(encode_frame(m.Cmd.PING, 0, 1, 0, b"abcdef"))
    good[3] ^= 0x40  # a flipped bit in the payload
    dec = FrameDecoder(max_payload=256)
    (bad,) = dec.feed(bytes(good))
    assert isinstance(bad, BadFrame) and bad.reason in (NAK_CRC, NAK_COBS)
    (cobs,) = dec.feed(b"\x09\x01\x00")
    assert isinstance(cobs, BadFrame) and cobs.reason == NAK_COBS
    (long,) = dec.feed(encode_frame(m.Cmd.PING, 0, 1, 0, bytes(300)))
    assert isinstance(long, BadFrame) and long.reason == NAK_TOO_LONG
    (ok,) = dec.feed(encode_frame(m.Cmd.PING, 0, 2, 0, b"x"))
    assert isinstance(ok, Frame) and ok.seq == 2


def test_hello_info_round_trip_and_bounds() -> None:
    info = m.HelloInfo(1, 1, 1, 0xDEADBEEF, 80_000_000, 1 << 17, 1 << 20, 1024, 4, m.CycleSource.DWT_CYCCNT,
                       5, True, 512, 0, "board", "cortex-m4", "fw 1", "tflite-micro", "x")
    raw = info.encode()
    assert m.HelloInfo.decode(raw) == info
    with pytest.raises(m.PayloadError):
        m.HelloInfo.decode(raw[:-1])
    with pytest.raises(m.PayloadError):
        m.HelloInfo.decode(raw + b"\x00")


def test_allocation_and_summary_round_trip() -> None:
    t = m.TensorDesc(9, (1, 49, 40), 1960, 0.5, -128)  # f32-exact scales round-trip exactly
    alloc = m.Allocation(7584, 196608, [t], [m.TensorDesc(9, (1, 4), 4, 1 / 256, -128)])
    assert m.Allocation.decode(alloc.encode()) == alloc
    s = m.summarise([100, 101, 99, 300, 100], 80_000_000, m.CycleSource.COST_MODEL, 2, logged=True)
    raw = s.encode()
    assert len(raw) == 188
    back = m.InvokeSummary.decode(raw)
    assert back == s and back.sum_sq == sum(c * c for c in [100, 101, 99, 300, 100])
    assert sum(back.histogram) == 5 and back.histogram[31] == 1  # 300 lands in the upper tail bin


def test_summary_sum_of_squares_needs_128_bits() -> None:
    big = [0xFFFFFFFF] * 3
    s = m.summarise(big, 1, 1, 0, logged=False)
    assert m.InvokeSummary.decode(s.encode()).sum_sq == 3 * 0xFFFFFFFF**2


def test_error_payloads_are_bounds_checked() -> None:
    raw = m.encode_error(m.Status.E_ARENA_TOO_SMALL, 9000, 4096, message="too small")
    assert m.decode_error(m.Status.E_ARENA_TOO_SMALL, raw).fields == (9000, 4096)
    op = m.decode_error(m.Status.E_UNSUPPORTED_OP, m.encode_error(m.Status.E_UNSUPPORTED_OP, 27, 3, "SVDF"))
    assert op.fields == (27, 3, "SVDF")
    # A truncated error still reports something readable instead of raising.
    assert m.decode_error(m.Status.E_ARENA_TOO_SMALL, raw[:3]).fields == ()

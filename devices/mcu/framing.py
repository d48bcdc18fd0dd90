"""Frames on the wire (firmware/PROTOCOL.md §2): COBS with a 0x00 delimiter around header+payload+CRC-32.

`FrameDecoder` is streaming: feed it whatever bytes arrived and it yields complete frames, or
`BadFrame` records for garbage, so a caller can NAK or retransmit and carry on at the next 0x00.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

HEADER = struct.Struct("<BBHHBB")
CRC = struct.Struct("<I")
OVERHEAD = HEADER.size + CRC.size  # 12 bytes of body around the payload
MAX_PAYLOAD_LIMIT = 0xFFFF

FLAG_RESPONSE = 0x01
FLAG_EVENT = 0x02

# NAK reasons (PROTOCOL.md §5).
NAK_CRC = 1
NAK_COBS = 2
NAK_TOO_LONG = 3
NAK_LENGTH = 4


@dataclass(frozen=True)
class Frame:
    cmd: int
    flags: int
    seq: int
    status: int
    payload: bytes

    @property
    def is_response(self) -> bool:
        return bool(self.flags & FLAG_RESPONSE)

    @property
    def is_event(self) -> bool:
        return bool(self.flags & FLAG_EVENT)


@dataclass(frozen=True)
class BadFrame:
    """Bytes between two delimiters that were not a valid frame; `reason` is a NAK reason code."""

    reason: int
    raw: bytes

    @property
    def why(self) -> str:
        return {NAK_CRC: "CRC mismatch", NAK_COBS: "invalid COBS", NAK_TOO_LONG: "too long"}.get(
            self.reason, "bad length"
        )


def crc32(data: bytes) -> int:
    """CRC-32/ISO-HDLC, the zlib CRC; check value crc32(b"123456789") == 0xCBF43926."""
    return zlib.crc32(data) & 0xFFFFFFFF


def cobs_encode(data: bytes) -> bytes:
    out = bytearray()
    code_at = 0
    out.append(0)  # placeholder for the first code byte
    code = 1
    for byte in data:
        if byte == 0:
            out[code_at] = code
            code_at = len(out)
            out.append(0)
            code = 1
            continue
        out.append(byte)
        code += 1
        if code == 0xFF:
            out[code_at] = code
            code_at = len(out)
            out.append(0)
            code = 1
    out[code_at] = code
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    """Decode one COBS block (without its delimiter); raise ValueError if it is malformed."""
    out = bytearray()
    i = 0
    n = len(data)
    while i < n:
        code = data[i]
        if code == 0:
            raise ValueError("zero byte inside a COBS block")
        end = i + code
        if end > n:
            raise ValueError("COBS code runs past the end of the block")
        block = data[i + 1 : end]
        if 0 in block:
            raise ValueError("zero byte inside a COBS block")
        out += block
        i = end
        if code < 0xFF and i < n:
            out.append(0)
    return bytes(out)


def encode_body(cmd: int, flags: int, seq: int, status: int, payload: bytes) -> bytes:
    if len(payload) > MAX_PAYLOAD_LIMIT:
        raise ValueError(f"payload of {len(payload)} bytes exceeds the 65535-byte frame limit")
    head = HEADER.pack(cmd, flags, seq & 0xFFFF, len(payload), status, 0)
    body = head + payload
    return body + CRC.pack(crc32(body))


def encode_frame(cmd: int, flags: int, seq: int, status: int, payload: bytes = b"") -> bytes:
    """A complete frame as it goes on the wire, delimiter included."""
    return cobs_encode(encode_body(cmd, flags, seq, status, payload)) + b"\x00"


def decode_body(body: bytes) -> Frame | BadFrame:
    if len(body) < OVERHEAD:
        return BadFrame(NAK_LENGTH, body)
    cmd, flags, seq, length, status, _ = HEADER.unpack_from(body, 0)
    if HEADER.size + length + CRC.size != len(body):
        return BadFrame(NAK_LENGTH, body)
    (crc,) = CRC.unpack_from(body, len(body) - CRC.size)
    if crc != crc32(body[: -CRC.size]):
        return BadFrame(NAK_CRC, body)
    return Frame(cmd, flags, seq, status, bytes(body[HEADER.size : HEADER.size + length]))


def max_encoded_size(max_payload: int) -> int:
    body = max_payload + OVERHEAD
    return body + body // 254 + 2


class FrameDecoder:
    """Accumulates bytes up to each 0x00 and decodes them; never holds more than one frame's bound."""

    def __init__(self, max_payload: int = MAX_PAYLOAD_LIMIT) -> None:
        self.max_encoded = max_encoded_size(max_payload)
        self._buf = bytearray()
        self._overflowed = 0  # bytes dropped while skipping an over-long frame
        self.bad_frames = 0

    def set_max_payload(self, max_payload: int) -> None:
        self.max_encoded = max_encoded_size(max_payload)

    def feed(self, data: bytes) -> list[Frame | BadFrame]:
        out: list[Frame | BadFrame] = []
        start = 0
        while start < len(data):
            zero = data.find(b"\x00", start)
            chunk = data[start:] if zero < 0 else data[start:zero]
            if self._overflowed:
                self._overflowed += len(chunk)
            else:
                self._buf += chunk
                if len(self._buf) > self.max_encoded:
                    # Keep only a tail for diagnostics: the frame is lost, resync at the next 0x00.
                    self._overflowed = len(self._buf)
                    self._buf = self._buf[-32:]
            if zero < 0:
                break
            out.extend(self._finish())
            start = zero + 1
        return out

    def _finish(self) -> list[Frame | BadFrame]:
        raw = bytes(self._buf)
        self._buf.clear()
        if self._overflowed:
            self._overflowed = 0
            self.bad_frames += 1
            return [BadFrame(NAK_TOO_LONG, raw)]
        if not raw:
            return []  # an empty frame: a resync delimiter
        try:
            body = cobs_decode(raw)
        except ValueError:
            self.bad_frames += 1
            return [BadFrame(NAK_COBS, raw)]
        frame = decode_body(body)
        if isinstance(frame, BadFrame):
            self.bad_frames += 1
        return [frame]

    def pending(self) -> bytes:
        """Bytes of a frame begun but not finished (for timeout diagnostics)."""
        return bytes(self._buf)

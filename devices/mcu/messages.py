"""Command codes, status codes and payload layouts of firmware/PROTOCOL.md §3–§5.

Both the host client and the simulator encode and decode through this module, so a layout lives in
exactly one place. Decoders raise `PayloadError` on any length that does not fit: a payload is never
trusted to be as long as it claims.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum

PROTOCOL_VERSION = 1
PRE_HELLO_MAX_PAYLOAD = 256
MAX_STR = 64
MAX_MESSAGE = 200
MAX_DIMS = 6
HIST_BINS = 32
NO_PIN = 0xFFFF


class Cmd(IntEnum):
    HELLO = 0x01
    RESET = 0x02
    PING = 0x03
    UPLOAD_BEGIN = 0x10
    UPLOAD_CHUNK = 0x11
    UPLOAD_END = 0x12
    ALLOCATE = 0x20
    SET_INPUT = 0x21
    INVOKE = 0x22
    GET_CYCLES = 0x23
    GET_OUTPUT = 0x24
    GET_PROFILE = 0x25
    # events
    BUSY = 0x7D
    NAK = 0x7E
    LOG = 0x7F


class Status(IntEnum):
    OK = 0
    E_UNKNOWN_CMD = 1
    E_BAD_LENGTH = 2
    E_VERSION = 3
    E_TOO_LARGE = 4
    E_SEQUENCE = 5
    E_CHECKSUM = 6
    E_STATE = 7
    E_MODEL_INVALID = 8
    E_UNSUPPORTED_OP = 9
    E_ARENA_TOO_SMALL = 10
    E_BAD_ARG = 11
    E_INVOKE_FAILED = 12
    E_INTERNAL = 13


class CycleSource(IntEnum):
    NONE = 0
    DWT_CYCCNT = 1
    XTENSA_CCOUNT = 2
    SYSTICK = 3
    TIMER = 4
    COST_MODEL = 5
    ICOUNT = 6


#: PROTOCOL.md §4.7: how a cycle source's figures are labelled downstream.
LATENCY_SOURCE = {
    CycleSource.NONE: "measured",
    CycleSource.DWT_CYCCNT: "measured",
    CycleSource.XTENSA_CCOUNT: "measured",
    CycleSource.SYSTICK: "measured",
    CycleSource.TIMER: "measured",
    CycleSource.COST_MODEL: "estimated",
    CycleSource.ICOUNT: "emulated",
}

INVOKE_PROFILE = 0x01
INVOKE_MARKER = 0x02
SUMMARY_ALL_LOGGED = 0x01
SUMMARY_MARKER = 0x02

#: TFLite TensorType -> numpy dtype name, for the types a TFLM model's I/O can have.
TENSOR_DTYPES = {0: "float32", 2: "int32", 3: "uint8", 4: "int64", 6: "bool", 7: "int16", 9: "int8"}


class PayloadError(ValueError):
    """A payload shorter, longer or otherwise different from its layout."""


class Reader:
    """Bounds-checked little-endian reads from one payload."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise PayloadError(f"payload too short: need {n} bytes at offset {self.pos} of {len(self.data)}")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str) -> tuple:
        s = struct.Struct("<" + fmt)
        return s.unpack(self.take(s.size))

    def u8(self) -> int:
        return self.unpack("B")[0]

    def u16(self) -> int:
        return self.unpack("H")[0]

    def u32(self) -> int:
        return self.unpack("I")[0]

    def str(self, limit: int = 255) -> str:
        n = self.u8()
        if n > limit:
            raise PayloadError(f"string of {n} bytes exceeds its {limit}-byte limit")
        return self.take(n).decode("utf-8", errors="replace")

    def rest(self) -> bytes:
        return self.take(len(self.data) - self.pos)

    def end(self) -> None:
        if self.pos != len(self.data):
            raise PayloadError(f"{len(self.data) - self.pos} unexpected bytes after offset {self.pos}")


def pack_str(text: str, limit: int = MAX_STR) -> bytes:
    raw = text.encode("utf-8")[:limit]
    return bytes([len(raw)]) + raw


# --- HELLO -------------------------------------------------------------------------------------

_HELLO_FIXED = struct.Struct("<HHHIIIIHBBHBBII")


@dataclass(frozen=True)
class HelloInfo:
    version: int
    device_min_version: int
    device_max_version: int
    boot_id: int
    clock_hz: int
    arena_capacity: int
    max_model_size: int
    max_payload: int
    rx_window: int
    cycle_source: int
    marker_pin: int
    marker_active_high: bool
    max_cycle_log: int
    active_power_uw: int
    board: str
    cpu: str
    firmware_version: str
    backend: str
    backend_version: str

    def encode(self) -> bytes:
        fixed = _HELLO_FIXED.pack(
            self.version, self.device_min_version, self.device_max_version, self.boot_id,
            self.clock_hz, self.arena_capacity, self.max_model_size, self.max_payload, self.rx_window,
            self.cycle_source, self.marker_pin, 1 if self.marker_active_high else 0, 0,
            self.max_cycle_log, self.active_power_uw,
        )  # fmt: skip
        strings = (self.board, self.cpu, self.firmware_version, self.backend, self.backend_version)
        return fixed + b"".join(pack_str(s) for s in strings)

    @classmethod
    def decode(cls, payload: bytes) -> HelloInfo:
        r = Reader(payload)
        f = _HELLO_FIXED.unpack(r.take(_HELLO_FIXED.size))
        strings = [r.str(MAX_STR) for _ in range(5)]
        r.end()
        info = cls(
            version=f[0], device_min_version=f[1], device_max_version=f[2], boot_id=f[3],
            clock_hz=f[4], arena_capacity=f[5], max_model_size=f[6], max_payload=f[7], rx_window=f[8],
            cycle_source=f[9], marker_pin=f[10], marker_active_high=bool(f[11] & 1),
            max_cycle_log=f[13], active_power_uw=f[14], board=strings[0], cpu=strings[1],
            firmware_version=strings[2], backend=strings[3], backend_version=strings[4],
        )  # fmt: skip
        if info.max_payload < PRE_HELLO_MAX_PAYLOAD:
            raise PayloadError(f"max_payload {info.max_payload} is below the protocol minimum 256")
        if info.rx_window < 1:
            raise PayloadError("rx_window is 0")
        return info


# --- tensors and ALLOCATE ------------------------------------------------------------------------


@dataclass(frozen=True)
class TensorDesc:
    type: int
    shape: tuple[int, ...]
    nbytes: int
    scale: float
    zero_point: int

    @property
    def dtype(self) -> str:
        return TENSOR_DTYPES.get(self.type, "uint8")

    def encode(self) -> bytes:
        if len(self.shape) > MAX_DIMS:
            raise PayloadError(f"tensor has {len(self.shape)} dimensions; the protocol carries at most 6")
        return (
            struct.pack("<BB", self.type, len(self.shape))
            + struct.pack(f"<{len(self.shape)}I", *self.shape)
            + struct.pack("<Ifi", self.nbytes, self.scale, self.zero_point)
        )

    @classmethod
    def read(cls, r: Reader) -> TensorDesc:
        ttype, ndims = r.unpack("BB")
        if ndims > MAX_DIMS:
            raise PayloadError(f"tensor claims {ndims} dimensions (limit 6)")
        shape = r.unpack(f"{ndims}I") if ndims else ()
        nbytes, scale, zp = r.unpack("Ifi")
        return cls(ttype, tuple(shape), nbytes, scale, zp)


@dataclass(frozen=True)
class Allocation:
    arena_used: int
    arena_capacity: int
    inputs: list[TensorDesc]
    outputs: list[TensorDesc]

    def encode(self) -> bytes:
        head = struct.pack("<IIBB", self.arena_used, self.arena_capacity, len(self.inputs), len(self.outputs))
        return head + b"".join(t.encode() for t in [*self.inputs, *self.outputs])

    @classmethod
    def decode(cls, payload: bytes) -> Allocation:
        r = Reader(payload)
        used, cap, n_in, n_out = r.unpack("IIBB")
        tensors = [TensorDesc.read(r) for _ in range(n_in + n_out)]
        r.end()
        return cls(used, cap, tensors[:n_in], tensors[n_in:])


# --- INVOKE --------------------------------------------------------------------------------------

_SUMMARY = struct.Struct(f"<IBBHIIIIQQQIIHH{HIST_BINS}I")


@dataclass(frozen=True)
class InvokeSummary:
    clock_hz: int
    cycle_source: int
    flags: int
    marker_pin: int
    n: int
    warmup: int
    min: int
    max: int
    sum: int
    sum_sq: int
    hist_base: int
    hist_width: int
    histogram: tuple[int, ...] = field(default=(0,) * HIST_BINS)

    @property
    def all_logged(self) -> bool:
        return bool(self.flags & SUMMARY_ALL_LOGGED)

    def encode(self) -> bytes:
        lo, hi = self.sum_sq & (2**64 - 1), self.sum_sq >> 64
        return _SUMMARY.pack(
            self.clock_hz, self.cycle_source, self.flags, self.marker_pin, self.n, self.warmup,
            self.min, self.max, self.sum, lo, hi, self.hist_base, self.hist_width, HIST_BINS, 0,
            *self.histogram,
        )  # fmt: skip

    @classmethod
    def decode(cls, payload: bytes) -> InvokeSummary:
        if len(payload) != _SUMMARY.size:
            raise PayloadError(f"invoke summary is {len(payload)} bytes, expected {_SUMMARY.size}")
        f = _SUMMARY.unpack(payload)
        if f[13] != HIST_BINS:
            raise PayloadError(f"histogram has {f[13]} bins, expected {HIST_BINS}")
        return cls(
            clock_hz=f[0], cycle_source=f[1], flags=f[2], marker_pin=f[3], n=f[4], warmup=f[5],
            min=f[6], max=f[7], sum=f[8], sum_sq=f[9] | (f[10] << 64), hist_base=f[11],
            hist_width=f[12], histogram=tuple(f[15:]),
        )  # fmt: skip


def summarise(cycles: list[int], clock_hz: int, source: int, warmup: int, *, logged: bool,
              marker_pin: int = NO_PIN) -> InvokeSummary:  # fmt: skip
    """What a device computes over its timed loop (PROTOCOL.md §4.6); the reference for firmware."""
    c0 = cycles[0]
    width = max(1, c0 // 64)
    hist = [0] * HIST_BINS
    for c in cycles:
        hist[min(max(16 + (c - c0) // width, 0), HIST_BINS - 1)] += 1
    flags = (SUMMARY_ALL_LOGGED if logged else 0) | (SUMMARY_MARKER if marker_pin != NO_PIN else 0)
    return InvokeSummary(
        clock_hz=clock_hz, cycle_source=source, flags=flags, marker_pin=marker_pin, n=len(cycles),
        warmup=warmup, min=min(cycles), max=max(cycles), sum=sum(cycles),
        sum_sq=sum(c * c for c in cycles), hist_base=c0, hist_width=width, histogram=tuple(hist),
    )  # fmt: skip


@dataclass(frozen=True)
class OpProfile:
    builtin_code: int
    op_index: int
    cycles_total: int


PROFILE_ENTRY = struct.Struct("<HHQI")

# --- errors --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErrorInfo:
    """A decoded error response: its code-specific fields and the device's message."""

    status: int
    fields: tuple
    message: str

    @property
    def name(self) -> str:
        try:
            return Status(self.status).name
        except ValueError:
            return f"status {self.status}"


_ERROR_FIELDS: dict[int, str] = {
    Status.E_VERSION: "HH",
    Status.E_TOO_LARGE: "I",
    Status.E_SEQUENCE: "I",
    Status.E_CHECKSUM: "II",
    Status.E_STATE: "I",
    Status.E_UNSUPPORTED_OP: "HH",
    Status.E_ARENA_TOO_SMALL: "II",
}


def encode_error(status: int, *fields: int | str, message: str = "") -> bytes:
    fmt = _ERROR_FIELDS.get(status, "")
    nums = [f for f in fields if isinstance(f, int)]
    out = struct.pack("<" + fmt, *nums) if fmt else b""
    if status == Status.E_UNSUPPORTED_OP:
        out += pack_str(str(fields[2]) if len(fields) > 2 else "")
    return out + pack_str(message, MAX_MESSAGE)


def decode_error(status: int, payload: bytes) -> ErrorInfo:
    """Lenient on purpose: an error must be reportable even when its payload is malformed."""
    r = Reader(payload)
    try:
        fmt = _ERROR_FIELDS.get(status, "")
        values: tuple = r.unpack(fmt) if fmt else ()
        if status == Status.E_UNSUPPORTED_OP:
            values = (*values, r.str())
        message = r.str(255)
    except PayloadError:
        return ErrorInfo(status, (), payload.hex())
    return ErrorInfo(status, values, message)

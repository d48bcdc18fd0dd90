"""The simulated MCU's firmware: the protocol state machine of firmware/PROTOCOL.md, run on TFLM.

A twin of the C firmware: same commands, same limits, same errors. Inference really runs in the
TFLM Python runtime (so outputs are TFLM's); cycle counts come from `sim_costmodel`, flagged as
COST_MODEL (estimated). Faults from `SimFaults` are applied here (resets, silence, arena, ops) and
in `sim_line` (bytes).
"""

from __future__ import annotations

import logging
import random
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from benchcore.arena import ForkProbe, Outcome, allocation_total, find_minimum
from devices.mcu import messages as m
from devices.mcu.framing import FLAG_EVENT, FLAG_RESPONSE, BadFrame, Frame, crc32, encode_frame
from devices.sim_costmodel import TargetProfile, model_ops, op_cycles
from devices.sim_faults import SimFaults

log = logging.getLogger("bench.sim")

FIRMWARE_VERSION = "bench-sim/1"
MAX_PROBE_ARENA = 64 * 1024 * 1024
MAX_COUNT = 10_000_000
BUSY_EVERY_S = 0.5


class _Rebooted(Exception):
    """A fault rebooted the device mid-command: no response goes out."""


class _Reply(Exception):
    def __init__(self, status: int, payload: bytes) -> None:
        super().__init__(status)
        self.status = status
        self.payload = payload


def _fail(status: int, *fields: int | str, message: str = "") -> _Reply:
    return _Reply(status, m.encode_error(status, *fields, message=message))


@dataclass
class _Upload:
    size: int
    crc: int
    buf: bytearray
    watermark: int = 0


def _runtime():
    from tflite_micro import runtime  # imported lazily: only the sim process needs TFLM

    return runtime


_BUILDS_NOWHERE = -1


def arena_needed(model: bytes, capacity: int) -> int | None:
    """None if the model allocates in `capacity` bytes, else the bytes it needs (to the byte), or
    _BUILDS_NOWHERE if not even MAX_PROBE_ARENA works.

    Allocate only, no invoke, to the byte: the firmware's ALLOCATE builds the interpreter and
    allocates its tensors, and E_ARENA_TOO_SMALL names an exact figure (benchcore.arena says why
    `bench models inspect` asks differently). Each size is tried in a forked child, since a too-small
    arena can segfault TFLM; the sim survives it.
    """
    with ForkProbe(model, invoke=False) as probe:
        if probe(capacity) is Outcome.OK:
            return None
        found = find_minimum(probe, lo=capacity, hi=MAX_PROBE_ARENA)  # ~22 forks
    return _BUILDS_NOWHERE if found.minimum is None else found.minimum


class Firmware:
    def __init__(self, target: TargetProfile, faults: SimFaults, *, seed: int = 0, jitter: float = 0.002) -> None:
        self.target = target
        self.faults = faults
        self.rng = random.Random(seed)
        self.jitter = jitter
        self.emit: Callable[[bytes], None] = lambda raw: None
        self.resets_upload = faults.reset_during_upload
        self.resets_invoke = faults.reset_during_invoke
        self.answered = 0
        self._fits_cache: dict[tuple[int, int], int | None] = {}
        self.boot(banner=False)

    # --- state ------------------------------------------------------------------------------

    @property
    def capacity(self) -> int:
        return self.faults.arena_bytes if self.faults.arena_bytes is not None else self.target.arena_capacity

    @property
    def versions(self) -> tuple[int, int]:
        return tuple(self.faults.versions) if self.faults.versions else (m.PROTOCOL_VERSION, m.PROTOCOL_VERSION)

    def boot(self, *, banner: bool = True) -> None:
        self.boot_id = self.rng.getrandbits(32)
        self.upload: _Upload | None = None
        self.model: bytes | None = None
        self.interp = None
        self.alloc: m.Allocation | None = None
        self.cycles_per_op: list[int] = []
        self.op_codes: list[int] = []
        self.inputs: list[bytearray] = []
        self.outputs: list[bytes] = []
        self.cycles_log: list[int] | None = None
        self.profile: tuple[int, list[int]] | None = None
        self.last: tuple[int, int, bytes] | None = None
        if banner:
            log.info("boot (id %#x): sending HELLO banner", self.boot_id)
            self.emit(encode_frame(m.Cmd.HELLO, FLAG_EVENT, 0, 0, self.hello_info(self.versions[1]).encode()))

    def hello_info(self, version: int) -> m.HelloInfo:
        from tflite_micro import __version__ as tflm_version

        t = self.target
        return m.HelloInfo(
            version=version, device_min_version=self.versions[0], device_max_version=self.versions[1],
            boot_id=self.boot_id, clock_hz=t.clock_hz, arena_capacity=self.capacity,
            max_model_size=self.faults.max_model_bytes or t.max_model_size, max_payload=t.max_payload,
            rx_window=t.rx_window, cycle_source=m.CycleSource.COST_MODEL, marker_pin=t.marker_pin,
            marker_active_high=True, max_cycle_log=t.max_cycle_log,
            active_power_uw=round(t.active_power_w * 1e6), board=t.board, cpu=t.cpu,
            firmware_version=FIRMWARE_VERSION, backend="tflite-micro", backend_version=str(tflm_version),
        )  # fmt: skip

    @property
    def silent(self) -> bool:
        return self.faults.silent_after is not None and self.answered >= self.faults.silent_after

    # --- dispatch ---------------------------------------------------------------------------

    def on_frame(self, item: Frame | BadFrame) -> None:
        if self.silent:
            return
        if isinstance(item, BadFrame):
            log.info("bad frame (%s): NAK", item.why)
            self.emit(encode_frame(m.Cmd.NAK, FLAG_EVENT, 0, 0, struct.pack("<BBH", item.reason, 0,
                                                                              min(len(item.raw), 0xFFFF))))
            return
        if item.flags:
            return  # only requests are for us
        if self.last and self.last[:2] == (item.seq, item.cmd) and item.cmd != m.Cmd.HELLO:
            log.info("duplicate %s seq=%d: resending the cached answer", item.cmd, item.seq)
            self.emit(self.last[2])
            return
        handler = self._handlers.get(item.cmd)
        try:
            if handler is None:
                raise _fail(m.Status.E_UNKNOWN_CMD, message=f"unknown command 0x{item.cmd:02x}")
            payload = handler(self, item)
            status = m.Status.OK
        except _Reply as reply:
            status, payload = reply.status, reply.payload
        except m.PayloadError as exc:
            status, payload = m.Status.E_BAD_LENGTH, m.encode_error(m.Status.E_BAD_LENGTH, message=str(exc))
        except _Rebooted:
            return
        if len(payload) > self.target.max_payload:
            status, payload = m.Status.E_INTERNAL, m.encode_error(m.Status.E_INTERNAL, message="answer too long")
        raw = encode_frame(item.cmd, FLAG_RESPONSE, item.seq, status, payload)
        self.last = (item.seq, item.cmd, raw)
        self.answered += 1
        self.emit(raw)
        if item.cmd == m.Cmd.RESET:
            self.boot()

    def _reboot(self, why: str) -> None:
        log.warning("fault: device reset %s", why)
        self.boot()
        raise _Rebooted

    # --- commands ---------------------------------------------------------------------------

    def _hello(self, f: Frame) -> bytes:
        r = m.Reader(f.payload)
        lo, hi = r.unpack("HH")
        r.end()
        dev_lo, dev_hi = self.versions
        version = min(hi, dev_hi)
        if version < max(lo, dev_lo):
            raise _fail(m.Status.E_VERSION, dev_lo, dev_hi, message=f"host {lo}..{hi}, device {dev_lo}..{dev_hi}")
        self.last = None
        return self.hello_info(version).encode()

    def _reset(self, f: Frame) -> bytes:
        m.Reader(f.payload).end()
        return b""

    def _ping(self, f: Frame) -> bytes:
        return f.payload

    def _upload_begin(self, f: Frame) -> bytes:
        r = m.Reader(f.payload)
        size, crc = r.unpack("II")
        r.end()
        limit = self.faults.max_model_bytes or self.target.max_model_size
        if size > limit:
            raise _fail(m.Status.E_TOO_LARGE, limit, message=f"{size} bytes > {limit}")
        if size == 0:
            raise _fail(m.Status.E_BAD_ARG, message="empty model")
        if not (self.upload and self.upload.size == size and self.upload.crc == crc):
            self.upload = _Upload(size, crc, bytearray(size))
            self.model = self.interp = self.alloc = None
        return struct.pack("<IH", self.upload.watermark, self.target.max_payload - 4)

    def _upload_chunk(self, f: Frame) -> bytes:
        r = m.Reader(f.payload)
        offset = r.u32()
        data = r.rest()
        up = self.upload
        if up is None:
            raise _fail(m.Status.E_STATE, 0, message="no UPLOAD_BEGIN")
        if not data:
            raise _fail(m.Status.E_BAD_LENGTH, message="empty chunk")
        end = offset + len(data)
        if end > up.size:
            raise _fail(m.Status.E_BAD_ARG, message=f"chunk ends at {end}, model is {up.size} bytes")
        if end <= up.watermark:
            return struct.pack("<I", up.watermark)
        if offset != up.watermark:
            raise _fail(m.Status.E_SEQUENCE, up.watermark)
        up.buf[offset:end] = data
        up.watermark = end
        if self.resets_upload and up.watermark >= up.size // 2:
            self.resets_upload -= 1
            self._reboot(f"mid-upload at byte {up.watermark} of {up.size}")
        return struct.pack("<I", up.watermark)

    def _upload_end(self, f: Frame) -> bytes:
        m.Reader(f.payload).end()
        up = self.upload
        if up is None or up.watermark < up.size:
            raise _fail(m.Status.E_STATE, up.watermark if up else 0, message="upload incomplete")
        crc = crc32(bytes(up.buf))
        if crc != up.crc:
            raise _fail(m.Status.E_CHECKSUM, crc, up.crc)
        self.model = bytes(up.buf)
        return struct.pack("<II", up.size, crc)

    def _allocate(self, f: Frame) -> bytes:
        r = m.Reader(f.payload)
        limit = r.u32()
        r.end()
        if self.model is None:
            raise _fail(m.Status.E_STATE, 0, message="no verified model")
        model = self.model
        try:
            ops = model_ops(model)
        except Exception as exc:  # the flatbuffer accessors raise anything on a damaged model
            raise _fail(m.Status.E_MODEL_INVALID, message=str(exc)[:200]) from None
        allowed = self.faults.supported_ops
        for op in ops:
            if allowed is not None and op.name not in allowed:
                raise _fail(m.Status.E_UNSUPPORTED_OP, op.code, op.index, op.name)
        capacity = min(self.capacity, limit) if limit else self.capacity
        key = (crc32(model), capacity)
        if key not in self._fits_cache:
            self._fits_cache[key] = arena_needed(model, capacity)
        needed = self._fits_cache[key]
        if needed == _BUILDS_NOWHERE:
            raise _fail(m.Status.E_MODEL_INVALID, message="TFLM cannot build an interpreter for this model")
        if needed is not None:
            raise _fail(m.Status.E_ARENA_TOO_SMALL, needed, capacity)
        try:
            interp = _runtime().Interpreter.from_bytes(model, arena_size=capacity)
        except (RuntimeError, ValueError) as exc:
            raise _fail(m.Status.E_MODEL_INVALID, message=str(exc)[:200]) from None
        used = allocation_total(interp) or 0
        ins = [self._desc(interp.get_input_details(i)) for i in range(len(self._io_count(interp, True)))]
        outs = [self._desc(interp.get_output_details(i)) for i in range(len(self._io_count(interp, False)))]
        self.interp = interp
        self.alloc = m.Allocation(used, capacity, ins, outs)
        self.cycles_per_op = op_cycles(ops, self.target)
        self.op_codes = [op.code for op in ops]
        self.inputs = [bytearray(t.nbytes) for t in ins]
        self.outputs = []
        self.profile = None
        self.cycles_log = None
        log.info("allocated: arena %d of %d bytes, %d ops", used, capacity, len(ops))
        return self.alloc.encode()

    @staticmethod
    def _io_count(interp, inputs: bool) -> list[int]:
        out = []
        getter = interp.get_input_details if inputs else interp.get_output_details
        for i in range(64):
            try:
                getter(i)
            except (IndexError, RuntimeError, ValueError):
                break
            out.append(i)
        return out

    @staticmethod
    def _desc(d: dict) -> m.TensorDesc:
        dtype = np.dtype(d["dtype"])
        codes = {v: k for k, v in m.TENSOR_DTYPES.items()}
        shape = tuple(int(x) for x in d["shape"])
        q = d.get("quantization_parameters", {})
        scales = q.get("scales", [])
        zps = q.get("zero_points", [])
        return m.TensorDesc(
            type=codes.get(dtype.name, 3), shape=shape, nbytes=int(np.prod(shape, dtype=np.int64)) * dtype.itemsize,
            scale=float(scales[0]) if len(scales) else 0.0, zero_point=int(zps[0]) if len(zps) else 0,
        )  # fmt: skip

    def _require_alloc(self) -> m.Allocation:
        if self.alloc is None or self.interp is None:
            raise _fail(m.Status.E_STATE, 0, message="not allocated")
        return self.alloc

    def _set_input(self, f: Frame) -> bytes:
        r = m.Reader(f.payload)
        index, _, offset = r.unpack("BBI")
        data = r.rest()
        alloc = self._require_alloc()
        if index >= len(alloc.inputs):
            raise _fail(m.Status.E_BAD_ARG, message=f"input {index} of {len(alloc.inputs)}")
        end = offset + len(data)
        if end > alloc.inputs[index].nbytes:
            size = alloc.inputs[index].nbytes
            raise _fail(m.Status.E_BAD_ARG, message=f"input {index} is {size} bytes, write ends at {end}")
        self.inputs[index][offset:end] = data
        return struct.pack("<I", end)

    def _invoke(self, f: Frame) -> bytes:
        r = m.Reader(f.payload)
        n, warmup, flags = r.unpack("IIB3x")
        r.end()
        alloc = self._require_alloc()
        if not 1 <= n <= MAX_COUNT or warmup > MAX_COUNT:
            raise _fail(m.Status.E_BAD_ARG, message=f"n={n}, warmup={warmup}")
        if self.resets_invoke:
            self.resets_invoke -= 1
            self._reboot("mid-run (INVOKE)")
        interp = self.interp
        for i, desc in enumerate(alloc.inputs):
            arr = np.frombuffer(bytes(self.inputs[i]), dtype=desc.dtype).reshape(desc.shape)
            interp.set_input(arr, i)
        base = sum(self.cycles_per_op)
        cycles: list[int] = []
        per_op = [0] * len(self.cycles_per_op)
        profile = bool(flags & m.INVOKE_PROFILE)
        last_busy = time.monotonic()
        for k in range(warmup + n):
            try:
                interp.invoke()
            except Exception as exc:  # TFLM reports kernel failures as generic exceptions
                raise _fail(m.Status.E_INVOKE_FAILED, message=str(exc)[:200]) from None
            if time.monotonic() - last_busy > BUSY_EVERY_S:
                last_busy = time.monotonic()
                self.emit(encode_frame(m.Cmd.BUSY, FLAG_EVENT, f.seq, 0, struct.pack("<I", k + 1)))
            if k < warmup:
                continue
            # Cache, interrupts and flash wait states make real runs jitter; a little modelled noise
            # keeps the histogram and spread meaningful. It is part of the estimate.
            factor = 1.0 + self.rng.gauss(0.0, self.jitter)
            cycles.append(max(1, round(base * factor)))
            if profile:
                for j, c in enumerate(self.cycles_per_op):
                    per_op[j] += round(c * factor)
        self.outputs = [np.ascontiguousarray(interp.get_output(i)).tobytes() for i in range(len(alloc.outputs))]
        logged = n <= self.target.max_cycle_log
        self.cycles_log = cycles if logged else None
        if profile:
            self.profile = (n, per_op)
        marker = self.target.marker_pin if flags & m.INVOKE_MARKER else m.NO_PIN
        return m.summarise(cycles, self.target.clock_hz, m.CycleSource.COST_MODEL, warmup, logged=logged,
                           marker_pin=marker).encode()  # fmt: skip

    def _get_cycles(self, f: Frame) -> bytes:
        r = m.Reader(f.payload)
        start, count = r.unpack("IH")
        r.end()
        if self.cycles_log is None:
            raise _fail(m.Status.E_STATE, 0, message="no per-inference counts kept")
        if count > (self.target.max_payload - 6) // 4 or start + count > len(self.cycles_log):
            raise _fail(m.Status.E_BAD_ARG, message=f"{count} counts from {start} of {len(self.cycles_log)}")
        return struct.pack(f"<IH{count}I", start, count, *self.cycles_log[start : start + count])

    def _get_output(self, f: Frame) -> bytes:
        r = m.Reader(f.payload)
        index, _, offset, max_len = r.unpack("BBIH")
        r.end()
        self._require_alloc()
        if index >= len(self.outputs):
            raise _fail(m.Status.E_BAD_ARG if self.outputs else m.Status.E_STATE, 0,
                        message=f"output {index} of {len(self.outputs)}")  # fmt: skip
        data = self.outputs[index]
        if offset > len(data):
            raise _fail(m.Status.E_BAD_ARG, message=f"offset {offset} beyond {len(data)} bytes")
        piece = data[offset : offset + min(max_len, self.target.max_payload - 8)]
        return struct.pack("<II", offset, len(data)) + piece

    def _get_profile(self, f: Frame) -> bytes:
        r = m.Reader(f.payload)
        start, count = r.unpack("HH")
        r.end()
        if self.profile is None:
            raise _fail(m.Status.E_STATE, 0, message="no profiled INVOKE")
        n, per_op = self.profile
        total = len(per_op)
        if start > total:
            raise _fail(m.Status.E_BAD_ARG, message=f"start {start} beyond {total} ops")
        count = min(count, (self.target.max_payload - 10) // m.PROFILE_ENTRY.size, total - start)
        body = b"".join(m.PROFILE_ENTRY.pack(self.op_codes[i], i, per_op[i], 0) for i in range(start, start + count))
        return struct.pack("<HHHI", total, start, count, n) + body

    _handlers: ClassVar[dict[int, Callable[[Firmware, Frame], bytes]]] = {
        m.Cmd.HELLO: _hello,
        m.Cmd.RESET: _reset,
        m.Cmd.PING: _ping,
        m.Cmd.UPLOAD_BEGIN: _upload_begin,
        m.Cmd.UPLOAD_CHUNK: _upload_chunk,
        m.Cmd.UPLOAD_END: _upload_end,
        m.Cmd.ALLOCATE: _allocate,
        m.Cmd.SET_INPUT: _set_input,
        m.Cmd.INVOKE: _invoke,
        m.Cmd.GET_CYCLES: _get_cycles,
        m.Cmd.GET_OUTPUT: _get_output,
        m.Cmd.GET_PROFILE: _get_profile,
    }


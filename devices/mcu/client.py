"""Request/response over a framed serial link (firmware/PROTOCOL.md §2–§6).

One `McuClient` per open link. It numbers requests, matches responses by sequence number,
retransmits on timeouts, NAKs and corrupted frames within a bounded budget, streams model uploads
with a sliding window (go-back-N on the device's watermark) and turns error statuses into specific
`DeviceError`s. A HELLO banner while a request is outstanding raises `DeviceResetError`.
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

import serial

from benchcore.errors import DeviceError, DeviceTimeoutError
from devices.mcu import messages as m
from devices.mcu.errors import (
    ArenaTooSmallError,
    DeviceResetError,
    ModelTooLargeError,
    ProtocolError,
    UnsupportedOpError,
    VersionMismatchError,
)
from devices.mcu.framing import BadFrame, Frame, FrameDecoder, crc32, encode_frame

TAIL_BYTES = 48
#: Smallest upload chunk; at 1 % byte errors a 32-byte chunk's frame still arrives intact ~60 % of the time.
MIN_CHUNK = 32
BANNER_TIMEOUT_S = 5.0


@dataclass
class LinkStats:
    frames_sent: int = 0
    frames_received: int = 0
    bad_frames: int = 0
    naks: int = 0
    retransmits: int = 0
    stale: int = 0
    upload_rewinds: int = 0


@dataclass(frozen=True)
class UploadResult:
    size: int
    resumed_from: int
    seconds: float
    rewinds: int
    chunk: int
    window: int


def _cmd_name(cmd: int) -> str:
    try:
        return m.Cmd(cmd).name
    except ValueError:
        return f"0x{cmd:02x}"


class McuClient:
    def __init__(
        self,
        link: serial.SerialBase,
        *,
        device: str,
        logger: logging.Logger,
        timeout: float = 1.0,
        retries: int = 4,
        baud: int | None = None,
        trace: bool = False,
        chunk: int | None = None,
        window: int | None = None,
        versions: tuple[int, int] = (m.PROTOCOL_VERSION, m.PROTOCOL_VERSION),
    ) -> None:
        self.link = link
        self.device = device
        self.log = logger
        self.timeout = timeout
        self.retries = retries
        self.baud = baud
        self.trace = trace
        self.chunk_limit = chunk
        self.window_limit = window
        self.versions = versions
        self.decoder = FrameDecoder()
        self.info: m.HelloInfo | None = None
        self.stats = LinkStats()
        self._seq = 0
        self._tail = bytearray()
        self._flushed = False
        # Frames that arrived in the same read as the one a caller wanted, kept for the next poll.
        self._backlog: list[Frame | BadFrame] = []
        # pyserial's socket:// `in_waiting` says only 0 or 1, so reading `in_waiting` bytes there would
        # cost one syscall per byte; such links get a non-blocking drain after the first byte instead.
        self._inexact_waiting = type(link).__module__.endswith("protocol_socket")

    # --- low level ----------------------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq = self._seq % 0xFFFF + 1
        return self._seq

    def _wire_s(self, nbytes: int) -> float:
        return nbytes * 10 / self.baud if self.baud else 0.0

    def _attempt_timeout(self, request_bytes: int) -> float:
        max_payload = self.info.max_payload if self.info else m.PRE_HELLO_MAX_PAYLOAD
        return self.timeout + self._wire_s(request_bytes + max_payload + 16)

    def _write(self, data: bytes, *, resync: bool = False) -> None:
        if resync or not self._flushed:
            # A leading delimiter closes off any partial frame in the device's buffer (§2.1).
            data = b"\x00" + data
            self._flushed = True
        try:
            self.link.write(data)
        except (serial.SerialException, OSError) as exc:
            raise DeviceError(self.device, "write", f"link write failed: {exc}") from None

    def _log_frame(self, direction: str, frame: Frame, raw: bytes | None = None) -> None:
        if not self.log.isEnabledFor(logging.DEBUG):
            return
        kind = "evt" if frame.is_event else ("rsp" if frame.is_response else "req")
        self.log.debug("%s %s %s seq=%d status=%d len=%d", direction, kind, _cmd_name(frame.cmd), frame.seq,
                       frame.status, len(frame.payload))
        if self.trace and raw is not None:
            self.log.debug("%s hex %s", direction, raw.hex(" "))

    def send(self, cmd: int, payload: bytes, seq: int, *, resync: bool = False) -> bytes:
        raw = encode_frame(cmd, 0, seq, 0, payload)
        self._log_frame("tx", Frame(cmd, 0, seq, 0, payload), raw)
        self._write(raw, resync=resync)
        self.stats.frames_sent += 1
        return raw

    def poll(self, deadline: float) -> list[Frame | BadFrame]:
        """Whatever frames complete before `deadline` (returns early as soon as any do)."""
        if self._backlog:
            items, self._backlog = self._backlog, []
            return items
        while True:
            try:
                waiting = self.link.in_waiting
                data = self.link.read(waiting or 1)
                if data and self._inexact_waiting:
                    data += self._drain()
            except (serial.SerialException, OSError) as exc:
                raise DeviceError(self.device, "read", f"link read failed: {exc}") from None
            if data:
                self._tail += data
                del self._tail[:-TAIL_BYTES]
                items = self.decoder.feed(data)
                for item in items:
                    if isinstance(item, Frame):
                        self.stats.frames_received += 1
                        self._log_frame("rx", item, data if self.trace else None)
                    else:
                        self.stats.bad_frames += 1
                        self.log.debug("rx bad frame (%s), %d bytes: %s", item.why, len(item.raw),
                                       item.raw[:32].hex(" "))
                if items:
                    return items
            if time.monotonic() >= deadline:
                return []

    def _drain(self) -> bytes:
        old = self.link.timeout
        self.link.timeout = 0
        try:
            return self.link.read(65536)
        finally:
            self.link.timeout = old

    def tail(self) -> str:
        pending = self.decoder.pending()
        seen = self._tail.hex(" ") if self._tail else "nothing"
        return f"last bytes received: {seen}" + (f"; unfinished frame: {pending[-16:].hex(' ')}" if pending else "")

    def _on_event(self, frame: Frame, step: str, *, banner_ok: bool) -> str | None:
        """Handle an unsolicited frame; returns "retransmit", "busy" or None."""
        if frame.cmd == m.Cmd.HELLO:
            try:
                boot = m.HelloInfo.decode(frame.payload)
                detail = f"boot id {boot.boot_id:#x}, firmware {boot.firmware_version}"
            except m.PayloadError:
                detail = "banner unreadable"
            if banner_ok:
                self.log.info("device banner (%s)", detail)
                return None
            self.log.warning("device reset during %s (%s)", step, detail)
            raise DeviceResetError(
                self.device, step,
                f"the device reset while awaiting {step} (HELLO banner: {detail}); its model is gone.",
                hint="Check the board's power supply and watchdog; the cell is retried once after re-deploying.",
            )
        if frame.cmd == m.Cmd.NAK:
            self.stats.naks += 1
            return "retransmit"
        if frame.cmd == m.Cmd.BUSY:
            return "busy"
        if frame.cmd == m.Cmd.LOG:
            self.log.info("device log: %s", frame.payload.decode("utf-8", errors="replace"))
        return None

    def request(self, cmd: int, payload: bytes = b"", *, step: str | None = None, check: bool = True,
                banner_ok: bool = False) -> Frame:  # fmt: skip
        """Send one request and return its response, retransmitting within the budget."""
        step = step or _cmd_name(cmd)
        seq = self._next_seq()
        raw = self.send(cmd, payload, seq)
        per_attempt = self._attempt_timeout(len(raw))
        deadline = time.monotonic() + per_attempt
        attempts = 0
        while True:
            retransmit = False
            items = self.poll(deadline)
            for i, item in enumerate(items):
                if isinstance(item, BadFrame):
                    retransmit = True
                    continue
                if item.is_event:
                    action = self._on_event(item, step, banner_ok=banner_ok)
                    if action == "retransmit":
                        retransmit = True
                    elif action == "busy" and item.seq == seq:
                        deadline = time.monotonic() + per_attempt
                    continue
                if item.is_response and item.seq == seq and item.cmd == cmd:
                    self._backlog.extend(items[i + 1 :])
                    if check and item.status != m.Status.OK:
                        self.raise_status(item, step)
                    return item
                self.stats.stale += 1
                self.log.debug("dropping stale %s seq=%d (awaiting seq=%d)", _cmd_name(item.cmd), item.seq, seq)
            if not retransmit and time.monotonic() < deadline:
                continue
            attempts += 1
            if attempts > self.retries:
                raise DeviceTimeoutError(
                    self.device, step,
                    f"no valid answer to {_cmd_name(cmd)} (seq {seq}) after {attempts} attempts of "
                    f"{per_attempt:.2f} s; {self.tail()}.",
                    hint="Check the port, baud rate and that the board runs the bench firmware.",
                )
            self.stats.retransmits += 1
            self.log.info("retransmitting %s seq=%d (%s)", _cmd_name(cmd), seq,
                          "bad frame or NAK" if retransmit else "timeout")
            self._write(raw, resync=True)
            deadline = time.monotonic() + per_attempt

    def raise_status(self, frame: Frame, step: str) -> None:
        err = m.decode_error(frame.status, frame.payload)
        said = f": {err.message}" if err.message else ""
        f = err.fields
        if frame.status == m.Status.E_VERSION and len(f) >= 2:
            lo, hi = self.versions
            raise VersionMismatchError(
                self.device, step,
                f"protocol version mismatch: host speaks {lo}..{hi}, device speaks {f[0]}..{f[1]}{said}.",
                status=err.name, hint="Update the firmware or bench so both speak one protocol version.",
            )
        if frame.status == m.Status.E_TOO_LARGE and f:
            raise ModelTooLargeError(
                self.device, step, f"the model is larger than the device accepts (max {f[0]} bytes){said}.",
                status=err.name, hint="Prune or quantise the model further, or use a board with more flash.",
            )
        if frame.status == m.Status.E_ARENA_TOO_SMALL and len(f) >= 2:
            raise ArenaTooSmallError(
                self.device, step,
                f"tensor arena too small: the model needs {f[0]} bytes, the device has {f[1]}{said}.",
                required=f[0], capacity=f[1],
            )
        if frame.status == m.Status.E_UNSUPPORTED_OP and len(f) >= 3:
            raise UnsupportedOpError(
                self.device, step,
                f"operator {f[2]} (builtin {f[0]}, op #{f[1]}) is not supported by the firmware{said}.",
                op=f[2],
            )
        raise ProtocolError(self.device, step, f"device answered {err.name}{said}.", status=err.name)

    # --- commands -----------------------------------------------------------------------------

    def hello(self) -> m.HelloInfo:
        lo, hi = self.versions
        frame = self.request(m.Cmd.HELLO, struct.pack("<HH", lo, hi), step="hello", banner_ok=True)
        try:
            info = m.HelloInfo.decode(frame.payload)
        except m.PayloadError as exc:
            raise DeviceError(self.device, "hello", f"malformed HELLO answer: {exc}") from None
        if self.info and info.boot_id != self.info.boot_id:
            self.log.warning("boot id changed %#x -> %#x: the device rebooted", self.info.boot_id, info.boot_id)
        self.info = info
        self.decoder.set_max_payload(info.max_payload)
        return info

    def require_info(self) -> m.HelloInfo:
        if self.info is None:
            return self.hello()
        return self.info

    def ping(self, data: bytes = b"") -> bytes:
        return self.request(m.Cmd.PING, data).payload

    def reset(self) -> m.HelloInfo:
        """Reboot the device and wait for its banner, then negotiate again."""
        self.request(m.Cmd.RESET, step="reset")
        deadline = time.monotonic() + BANNER_TIMEOUT_S
        while time.monotonic() < deadline:
            items = self.poll(deadline)
            for i, item in enumerate(items):
                if isinstance(item, Frame) and item.is_event and item.cmd == m.Cmd.HELLO:
                    self._backlog.extend(items[i + 1 :])
                    return self.hello()
        raise DeviceTimeoutError(self.device, "reset", f"no HELLO banner within {BANNER_TIMEOUT_S} s; {self.tail()}.")

    def upload(self, model: bytes, progress: Callable[[int, int], None] | None = None) -> UploadResult:
        """Stream `model` in chunks with up to rx_window in flight; resumes where the device is."""
        info = self.require_info()
        size = len(model)
        t0 = time.monotonic()
        begin = self.request(m.Cmd.UPLOAD_BEGIN, struct.pack("<II", size, crc32(model)), step="upload")
        r = m.Reader(begin.payload)
        resume, max_chunk = r.unpack("IH")
        full_chunk = chunk = max(1, min(max_chunk, info.max_payload - 4, self.chunk_limit or max_chunk))
        window = max(1, min(info.rx_window, self.window_limit or info.rx_window))
        per_attempt = self.timeout + self._wire_s(window * (chunk + 40))
        clean = stalled = 0
        acked = min(resume, size)
        next_off = acked
        inflight: dict[int, int] = {}  # seq -> epoch it was sent in
        epoch = rewinds = 0
        stalled_at = acked
        deadline = time.monotonic() + per_attempt
        if resume:
            self.log.info("resuming upload at byte %d of %d", resume, size)
        while acked < size:
            while len(inflight) < window and next_off < size:
                end = min(next_off + chunk, size)
                seq = self._next_seq()
                self.send(m.Cmd.UPLOAD_CHUNK, struct.pack("<I", next_off) + model[next_off:end], seq)
                inflight[seq] = epoch
                next_off = end
            rewind = False
            for item in self.poll(deadline):
                if isinstance(item, BadFrame):
                    continue  # a lost ack: the next one carries the cumulative watermark
                if item.is_event:
                    if self._on_event(item, "upload", banner_ok=False) == "retransmit" and next_off >= size:
                        rewind = True
                    continue
                if not item.is_response or item.cmd != m.Cmd.UPLOAD_CHUNK:
                    self.stats.stale += 1
                    continue
                sent_in = inflight.pop(item.seq, None)
                if item.status == m.Status.OK:
                    mark = m.Reader(item.payload).u32()
                elif item.status == m.Status.E_SEQUENCE:
                    mark = m.decode_error(item.status, item.payload).fields[0]
                    rewind = rewind or sent_in == epoch
                else:
                    self.raise_status(item, "upload")
                if mark > acked:
                    acked = min(mark, size)
                    deadline = time.monotonic() + per_attempt
                    clean += 1
                    if clean >= 8 and chunk < full_chunk:
                        chunk, clean = min(full_chunk, chunk * 2), 0
                    if progress:
                        progress(acked, size)
            if time.monotonic() >= deadline:
                rewind = True
            if rewind and acked < size:
                rewinds += 1
                self.stats.upload_rewinds += 1
                # The budget bounds rewinds that make no progress at the smallest chunk: a noisy link
                # that still moves the watermark forward is slow, not stuck.
                stalled = stalled + 1 if acked == stalled_at and chunk == MIN_CHUNK else 0
                stalled_at = acked
                if stalled > self.retries:
                    raise DeviceTimeoutError(
                        self.device, "upload",
                        f"upload stuck at byte {acked} of {size} after {stalled} rewinds without progress "
                        f"({rewinds} in all); {self.tail()}.",
                        hint="The link loses too much; lower the baud rate or check the cable.",
                    )
                # A noisy line loses long frames first: halve the chunk, regrow it after clean acks.
                chunk, clean = max(MIN_CHUNK, chunk // 2), 0
                self.log.info("upload rewinding to byte %d (rewind %d, chunk now %d)", acked, rewinds, chunk)
                epoch += 1
                inflight.clear()
                next_off = acked
                self._write(b"", resync=True)
                deadline = time.monotonic() + per_attempt
            next_off = max(next_off, acked)
        self.request(m.Cmd.UPLOAD_END, step="upload")
        return UploadResult(size, resume, time.monotonic() - t0, rewinds, full_chunk, window)

    def allocate(self, arena_limit: int = 0) -> m.Allocation:
        frame = self.request(m.Cmd.ALLOCATE, struct.pack("<I", arena_limit), step="allocate")
        return _decode(self.device, "allocate", m.Allocation.decode, frame.payload)

    def set_input(self, index: int, data: bytes) -> None:
        step = (self.require_info().max_payload - 6) or 1
        for off in range(0, max(len(data), 1), step):
            self.request(m.Cmd.SET_INPUT, struct.pack("<BBI", index, 0, off) + data[off : off + step],
                         step="set input")  # fmt: skip

    def invoke(self, n: int, warmup: int = 0, *, profile: bool = False, marker: bool = False) -> m.InvokeSummary:
        flags = (m.INVOKE_PROFILE if profile else 0) | (m.INVOKE_MARKER if marker else 0)
        frame = self.request(m.Cmd.INVOKE, struct.pack("<IIB3x", n, warmup, flags), step="invoke")
        return _decode(self.device, "invoke", m.InvokeSummary.decode, frame.payload)

    def get_cycles(self, n: int) -> list[int]:
        per = (self.require_info().max_payload - 6) // 4
        out: list[int] = []
        while len(out) < n:
            count = min(per, n - len(out))
            frame = self.request(m.Cmd.GET_CYCLES, struct.pack("<IH", len(out), count), step="get cycles")
            r = m.Reader(frame.payload)
            start, got = r.unpack("IH")
            if start != len(out) or got != count:
                raise DeviceError(self.device, "get cycles", f"asked {count} from {len(out)}, got {got} from {start}")
            out.extend(r.unpack(f"{got}I"))
            r.end()
        return out

    def get_output(self, index: int, nbytes: int) -> bytes:
        per = self.require_info().max_payload - 8
        out = bytearray()
        while len(out) < nbytes:
            want = min(per, nbytes - len(out))
            frame = self.request(m.Cmd.GET_OUTPUT, struct.pack("<BBIH", index, 0, len(out), want), step="get output")
            r = m.Reader(frame.payload)
            offset, total = r.unpack("II")
            data = r.rest()
            if offset != len(out) or total != nbytes or not data or len(data) > want:
                raise DeviceError(self.device, "get output",
                                  f"output {index}: asked {want} bytes at {len(out)} of {nbytes}, got "
                                  f"{len(data)} at {offset} of {total}")  # fmt: skip
            out += data
        return bytes(out)

    def get_profile(self) -> tuple[int, list[m.OpProfile]]:
        per = (self.require_info().max_payload - 10) // m.PROFILE_ENTRY.size
        ops: list[m.OpProfile] = []
        total = n_profiled = None
        while total is None or len(ops) < total:
            frame = self.request(m.Cmd.GET_PROFILE, struct.pack("<HH", len(ops), per), step="get profile")
            r = m.Reader(frame.payload)
            total, start, count, n_profiled = r.unpack("HHHI")
            if start != len(ops) or count > per or (count == 0 and len(ops) < total):
                raise DeviceError(self.device, "get profile", f"bad profile page: {count} ops from {start}")
            for _ in range(count):
                code, index, cycles, _ = r.unpack("HHQI")
                ops.append(m.OpProfile(code, index, cycles))
            r.end()
        return n_profiled or 0, ops


def _decode(device: str, step: str, fn, payload: bytes):
    try:
        return fn(payload)
    except m.PayloadError as exc:
        raise DeviceError(device, step, f"malformed answer: {exc}") from None

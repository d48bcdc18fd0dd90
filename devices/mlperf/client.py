"""The MLPerf Tiny (EEMBC) benchmark serial protocol, host side, performance mode.

A command is ASCII text ended by `%`; the DUT answers with `\\r\\n`-ended lines and closes every
command with `m-ready`. Lines starting `e-[` are errors. What the official DUT code
(benchmark/api/internally_implemented.cpp) does, and what this client does about it:

- its command buffer keeps 80 characters and silently overwrites the last one after that:
  every command we send is checked against `CMD_MAX` before it goes out;
- `infer N` without W runs 10 warm-ups: we always send W;
- `db print` ignores its arguments and prints the whole buffer, 8 bytes a line (`m-buffer-xx-..`):
  we read it all back to verify a download;
- an odd count of hex digits is refused (`e-[Insufficent number of hex digits]`, sic) without storing;
  an invalid digit is refused after the bytes before it were stored; bytes lost on the line leave
  the buffer short (no `m-load-done`): every one of these restarts the download from `db load N`,
  which rewinds the DUT's write position;
- `db load N` over its buffer prints a plain line (no `e-`) yet keeps N: we treat it as an error.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections import deque
from dataclasses import dataclass, field

import serial

from benchcore.errors import DeviceError, DeviceTimeoutError

#: The DUT's command buffer (EE_CMD_SIZE): longer commands are truncated on the device.
CMD_MAX = 80
#: Bytes per `db` line: "db " + 2 digits a byte must fit CMD_MAX (38 would; 32 keeps a margin).
CHUNK_BYTES = 32
MAX_CHUNK_BYTES = (CMD_MAX - len("db ")) // 2
TAIL_LINES = 12
READY = "m-ready"
TIMESTAMP_WRAP = 1 << 32  # m-lap-us is printed with %lu from a 32-bit counter on most DUTs

_RE_NAME = re.compile(r"^m-name-([^-]+)-\[(.*)\]$")
_RE_PROFILE = re.compile(r"^m-(profile|model)-\[(.*)\]$")
_RE_LAP = re.compile(r"^m-lap-us-(\d+)$")
_RE_RESULTS = re.compile(r"^m-results-\[(.*)\]$")
_RE_EXPECT = re.compile(r"^m-\[Expecting (\d+) bytes\]$")
_RE_BUFFER = re.compile(r"^m-buffer-([0-9a-fA-F]{2}(?:-[0-9a-fA-F]{2})*)$")
_RE_MODE = re.compile(r"^m-timestamp-mode-(\w+)$")


class MlperfError(DeviceError):
    """The DUT answered a command with `e-[...]` or with something the protocol does not allow."""

    def __init__(self, device: str, step: str, message: str, *, answer: str | None = None,
                 hint: str | None = None) -> None:  # fmt: skip
        super().__init__(device, step, message, hint=hint)
        self.answer = answer


class EnergyModeError(DeviceError):
    """The firmware was built with EE_CFG_ENERGY_MODE=1: timestamps are GPIO pulses, not m-lap-us."""


@dataclass(frozen=True)
class Identity:
    name: str
    vendor: str
    profile: str
    model: str
    mode: str  # "performance" or "energy"
    boot_lines: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class InferResult:
    n: int
    warmup: int
    elapsed_us: int
    results: list[float]
    lines: list[str]


@dataclass
class DownloadStats:
    bytes: int = 0
    commands: int = 0
    wire_bytes: int = 0  # characters sent, commands and terminators included
    restarts: int = 0
    seconds: float = 0.0
    verified: bool = False


class MlperfClient:
    """Commands over one open pyserial link; keeps the last lines seen for error messages."""

    def __init__(self, link: serial.SerialBase, *, device: str, logger: logging.Logger | None = None,
                 timeout: float = 5.0, retries: int = 2, chunk: int = CHUNK_BYTES, trace: bool = False) -> None:
        if not 1 <= chunk <= MAX_CHUNK_BYTES:
            raise ValueError(f"chunk must be 1..{MAX_CHUNK_BYTES} bytes (80-character command buffer)")
        self.link = link
        self.device = device
        self.log = logger or logging.getLogger(f"bench.device.{device}")
        self.timeout = timeout
        self.retries = retries
        self.chunk = chunk
        self.trace = trace
        self._buf = bytearray()
        self._tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.last_download = DownloadStats()

    # --- lines --------------------------------------------------------------------------------

    def tail(self) -> str:
        return " | ".join(self._tail) if self._tail else "nothing"

    def _readline(self, deadline: float, awaiting: str) -> str:
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                raw = bytes(self._buf[:nl])
                del self._buf[: nl + 1]
                line = raw.replace(b"\r", b"").replace(b"\0", b"").decode("ascii", "replace").strip()
                if line:
                    self._tail.append(line)
                    if self.trace:
                        self.log.debug("rx %s", line)
                    return line
                continue
            if time.monotonic() > deadline:
                partial = self._buf.decode("ascii", "replace")
                raise DeviceTimeoutError(
                    self.device, awaiting,
                    f"no answer within {self.timeout:.1f} s awaiting {awaiting}; last lines: {self.tail()}"
                    + (f" | partial: {partial[-60:]!r}" if partial else ""),
                    hint="Check the baud rate and wiring, and that the firmware is an MLPerf Tiny DUT in "
                    "performance mode (it answers `name%` with m-name-dut-[...]).",
                )  # fmt: skip
            waiting = self.link.in_waiting
            chunk = self.link.read(waiting or 1)
            if chunk:
                self._buf += chunk

    def drain(self, quiet_s: float = 0.2, max_s: float = 2.0) -> list[str]:
        """Read what the DUT says unasked (boot banner) until it is quiet for `quiet_s`."""
        lines: list[str] = []
        end = time.monotonic() + max_s
        quiet = time.monotonic() + quiet_s
        while time.monotonic() < min(end, quiet):
            chunk = self.link.read(self.link.in_waiting or 1)
            if chunk:
                self._buf += chunk
                quiet = time.monotonic() + quiet_s
        while b"\n" in self._buf:
            lines.append(self._readline(time.monotonic(), "boot output"))
        self._buf.clear()
        return lines

    def command(self, cmd: str, *, timeout: float | None = None, step: str | None = None) -> list[str]:
        """Send `cmd%`, return the answer lines before m-ready. Raises on `e-[...]`."""
        if len(cmd) > CMD_MAX or "%" in cmd:
            raise ValueError(f"command {cmd[:20]!r}... does not fit the DUT's {CMD_MAX}-character buffer")
        step = step or cmd.split(" ", 1)[0]
        if self.trace:
            self.log.debug("tx %s", cmd)
        self.link.write(cmd.encode("ascii") + b"%")
        self.link.flush()
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        lines: list[str] = []
        while True:
            line = self._readline(deadline, f"{step} (m-ready)")
            if line == READY:
                break
            lines.append(line)
        errors = [ln for ln in lines if ln.startswith("e-[")]
        if errors:
            raise MlperfError(self.device, step, f"`{cmd[:40]}` answered {errors[0]}; last lines: {self.tail()}",
                              answer=errors[0], hint=_hint_for(errors[0]))  # fmt: skip
        return lines

    # --- handshake ------------------------------------------------------------------------------

    def identify(self, boot_lines: list[str] | None = None) -> Identity:
        boot = list(boot_lines or [])
        profile = model = ""
        name, vendor = self.sync_name()
        for line in self.command("profile"):
            if m := _RE_PROFILE.match(line):
                if m.group(1) == "profile":
                    profile = m.group(2)
                else:
                    model = m.group(2)
        if not model:
            raise MlperfError(self.device, "profile", f"`profile%` named no model (m-model-[...]); "
                              f"last lines: {self.tail()}")  # fmt: skip
        # A performance-mode DUT prints m-lap-us-N for `timestamp`; an energy-mode one pulses a GPIO
        # line and prints nothing. The boot banner says it too, when we were there to read it.
        mode = next((m.group(1) for ln in boot if (m := _RE_MODE.match(ln))), "")
        laps = [ln for ln in self.command("timestamp") if _RE_LAP.match(ln)]
        if not mode:
            mode = "performance" if laps else "energy"
        if mode != "performance" or not laps:
            raise EnergyModeError(
                self.device, "handshake",
                f"the DUT is in {mode} mode: `timestamp%` printed no m-lap-us line (last lines: {self.tail()}). "
                "Energy-mode firmware times with a GPIO pulse to an energy monitor, so a performance run "
                "would end with 'too few timestamps'.",
                hint="Rebuild the firmware with EE_CFG_ENERGY_MODE=0 (performance mode) and connect the host "
                "to the DUT directly, not through the interface board.",
            )  # fmt: skip
        return Identity(name, vendor, profile, model, mode, boot)

    # --- download ---------------------------------------------------------------------------------

    def load(self, data: bytes, *, verify: bool = True) -> DownloadStats:
        """Put `data` into the DUT's db buffer; restart from `db load` on any sign of loss."""
        if not data:
            raise ValueError("nothing to download")
        stats = DownloadStats(bytes=len(data))
        t0 = time.perf_counter()
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            stats.restarts = attempt
            try:
                self._load_once(data, stats)
                if verify:
                    got = self.read_buffer()
                    if got != data:
                        first = next((i for i, (a, b) in enumerate(zip(got, data, strict=False)) if a != b),
                                     min(len(got), len(data)))  # fmt: skip
                        raise MlperfError(self.device, "db print",
                                          f"read-back differs from the download at byte {first} "
                                          f"({len(got)} of {len(data)} bytes read back)")  # fmt: skip
                    stats.verified = True
                stats.seconds = time.perf_counter() - t0
                self.last_download = stats
                return stats
            except (MlperfError, DeviceTimeoutError) as exc:
                last = exc
                self.log.warning("download attempt %d of %d failed: %s", attempt + 1, self.retries + 1, exc)
                self.resync()  # a late or extra answer would shift every later one by a command
        assert last is not None
        raise MlperfError(self.device, "download", f"{len(data)} bytes could not be downloaded in "
                          f"{self.retries + 1} attempts: {last}",
                          hint="Check the link (baud, cabling, flow control); lower chunk_bytes.")  # fmt: skip

    def _load_once(self, data: bytes, stats: DownloadStats) -> None:
        lines = self._counted(stats, f"db load {len(data)}")
        if not any((m := _RE_EXPECT.match(ln)) and int(m.group(1)) == len(data) for ln in lines):
            raise MlperfError(self.device, "db load", f"the DUT did not accept {len(data)} bytes: "
                              f"{' | '.join(lines) or 'no answer line'}",
                              hint="The input is larger than the firmware's MAX_DB_INPUT_SIZE.")  # fmt: skip
        done = False
        for off in range(0, len(data), self.chunk):
            lines = self._counted(stats, "db " + data[off : off + self.chunk].hex())
            done = "m-load-done" in lines
            if done and off + self.chunk < len(data):
                raise MlperfError(self.device, "db", f"m-load-done after {off + self.chunk} of {len(data)} bytes")
        if not done:
            raise MlperfError(self.device, "db", f"no m-load-done after all {len(data)} bytes: the DUT "
                              f"received fewer (bytes lost on the line); last lines: {self.tail()}")  # fmt: skip

    def _counted(self, stats: DownloadStats, cmd: str) -> list[str]:
        stats.commands += 1
        stats.wire_bytes += len(cmd) + 1
        return self.command(cmd, step=cmd.split(" ", 2)[0] if not cmd.startswith("db load") else "db load")

    def read_buffer(self) -> bytes:
        out = bytearray()
        for line in self.command("db print"):
            if m := _RE_BUFFER.match(line):
                out += bytes.fromhex(m.group(1).replace("-", ""))
        return bytes(out)

    def resync(self) -> None:
        """After a timeout: end whatever half command the DUT holds, then find the answer boundary."""
        with contextlib.suppress(DeviceTimeoutError, MlperfError, serial.SerialException):
            self.sync_name(prefix="%", timeout=self.timeout * 2)

    def sync_name(self, *, prefix: str = "", timeout: float | None = None) -> tuple[str, str]:
        """`name%`, skipping any answer lines still in the stream before its own (a boot banner that
        came late, the late answer of a command that timed out): the protocol has no request ids,
        so the m-name line is the one boundary we can be sure of. Returns (name, vendor)."""
        self.link.write(prefix.encode() + b"name%")
        self.link.flush()
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        found: tuple[str, str] | None = None
        since_ready: list[str] = []
        while True:
            line = self._readline(deadline, "name (m-name-...)")
            if m := _RE_NAME.match(line):
                found = (m.group(1), m.group(2))
            elif line == READY:
                if found is not None:
                    return found
                errors = [ln for ln in since_ready if ln.startswith("e-[") and "name" in ln]
                if errors:
                    raise MlperfError(self.device, "name", f"`name%` answered {errors[0]}; last lines: {self.tail()}",
                                      answer=errors[0], hint="Is this an MLPerf Tiny DUT?")  # fmt: skip
                since_ready = []
            else:
                since_ready.append(line)

    # --- inference --------------------------------------------------------------------------------

    def infer(self, n: int, warmup: int, *, timeout: float) -> InferResult:
        if n < 1 or warmup < 0:
            raise ValueError("infer needs n >= 1 and warmup >= 0")
        lines = self.command(f"infer {n} {warmup}", timeout=timeout, step="infer")  # W always: default is 10
        laps = [int(m.group(1)) for ln in lines if (m := _RE_LAP.match(ln))]
        if len(laps) < 2:
            raise MlperfError(self.device, "infer",
                              f"{len(laps)} m-lap-us timestamp(s) for `infer {n} {warmup}`, 2 needed; "
                              f"last lines: {self.tail()}",
                              hint="Energy-mode firmware prints no timestamps; use a performance-mode build.")
        elapsed = (laps[-1] - laps[-2]) % TIMESTAMP_WRAP
        return InferResult(n, warmup, elapsed, _results(lines), lines)

    def results(self) -> list[float]:
        return _results(self.command("results"))


def _results(lines: list[str]) -> list[float]:
    for line in reversed(lines):
        if m := _RE_RESULTS.match(line):
            try:
                return [float(x) for x in m.group(1).split(",") if x.strip()]
            except ValueError:
                break
    return []


def _hint_for(error: str) -> str | None:
    if "Unknown command" in error:
        return ("The firmware does not implement this command (or bytes were lost on the line and it saw a "
                "mangled one): check the link, and that the firmware is built from MLPerf Tiny's benchmark/api.")
    if "hex digit" in error:
        return "Hex digits were lost or corrupted on the line: check the baud rate and flow control."
    return None

"""The simulated MCU as a process: serves the firmware twin over a pty or a loopback TCP socket.

Run as `python -m devices.sim serve --listen tcp:127.0.0.1:0 --profile cortex-m4@80MHz`; the first
line on stdout is `LISTENING <url-or-path>`. It is a separate process on purpose: the harness times
host inference in threads of its own process, and an in-process simulator would compete for the GIL.

The line model: bytes are paced at `--baud` (10 bits per byte, each direction independently, as a
full-duplex UART), and faults flip or drop bytes in both directions.
"""

from __future__ import annotations

import argparse
import logging
import os
import queue
import random
import socket
import sys
import threading
import time
import tty
from collections.abc import Iterator

from devices.mcu.framing import BadFrame, Frame, FrameDecoder
from devices.sim_costmodel import PROFILES, profile
from devices.sim_faults import SimFaults
from devices.sim_firmware import Firmware

log = logging.getLogger("bench.sim")


class Conn:
    """A byte pipe to the host: a TCP connection or a pty master."""

    def __init__(self, sock: socket.socket | None = None, fd: int | None = None) -> None:
        self.sock = sock
        self.fd = fd

    def recv(self) -> bytes:
        try:
            if self.sock is not None:
                return self.sock.recv(65536)
            assert self.fd is not None
            return os.read(self.fd, 65536)
        except OSError:
            return b""

    def send(self, data: bytes) -> None:
        try:
            if self.sock is not None:
                self.sock.sendall(data)
                return
            assert self.fd is not None
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view) :]
        except OSError as exc:
            log.info("send failed: %s", exc)


class Line:
    """Paces and corrupts the bytes of one connection; a reader thread timestamps arrivals."""

    def __init__(self, conn: Conn, baud: int | None, faults: SimFaults, rng: random.Random) -> None:
        self.conn = conn
        self.byte_s = 10 / baud if baud else 0.0
        self.faults = faults
        self.rng = rng
        self.rx_clock = 0.0
        self.tx_clock = 0.0
        self._q: queue.Queue[tuple[float, bytes] | None] = queue.Queue()
        self._lock = threading.Lock()

    def start(self) -> None:
        threading.Thread(target=self._reader, name="sim-reader", daemon=True).start()

    def _reader(self) -> None:
        while True:
            data = self.conn.recv()
            if not data:
                self._q.put(None)
                return
            self._q.put((time.monotonic(), data))

    def _mangle(self, data: bytes) -> bytes:
        corrupt, drop = self.faults.corrupt_rate, self.faults.drop_rate
        if not corrupt and not drop:
            return data
        out = bytearray()
        for byte in data:
            x = self.rng.random()
            if x < drop:
                continue
            if x < drop + corrupt:
                byte ^= 1 << self.rng.randrange(8)
            out.append(byte)
        return bytes(out)

    def items(self, decoder: FrameDecoder) -> Iterator[Frame | BadFrame]:
        while True:
            got = self._q.get()
            if got is None:
                return
            arrived, data = got
            data = self._mangle(data)
            start = 0
            while start < len(data):
                # Release each frame when its last byte would have come off the wire at this baud.
                zero = data.find(b"\x00", start)
                end = len(data) if zero < 0 else zero + 1
                piece = data[start:end]
                start = end
                if self.byte_s:
                    self.rx_clock = max(self.rx_clock, arrived) + len(piece) * self.byte_s
                    delay = self.rx_clock - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                yield from decoder.feed(piece)

    def send(self, raw: bytes) -> None:
        raw = self._mangle(raw)
        with self._lock:
            if self.byte_s:
                self.tx_clock = max(self.tx_clock, time.monotonic()) + len(raw) * self.byte_s
                delay = self.tx_clock - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            self.conn.send(raw)


def _session(fw: Firmware, conn: Conn, baud: int | None, rng: random.Random) -> None:
    line = Line(conn, baud, fw.faults, rng)
    fw.emit = line.send
    fw.boot()  # a connection is a power-on: the host sees the banner, as with QEMU's wait=on
    line.start()
    decoder = FrameDecoder(fw.target.max_payload)
    for item in line.items(decoder):
        fw.on_frame(item)
    log.info("host disconnected")


def _announce(where: str) -> None:
    print(f"LISTENING {where}", flush=True)
    # From here on stdout is nobody's: TFLM's C++ prints there, and a full pipe would block us.
    os.dup2(2, 1)


def _watch_stdin() -> None:
    def wait() -> None:
        sys.stdin.buffer.read()
        os._exit(0)

    threading.Thread(target=wait, name="sim-stdin", daemon=True).start()


def serve(listen: str, fw: Firmware, baud: int | None, seed: int) -> None:
    rng = random.Random(seed ^ 0x5EED)
    if listen == "pty":
        master, slave = os.openpty()
        tty.setraw(slave)  # at once: the line discipline would otherwise echo and mangle bytes
        # Keeping the slave open means reads on the master never see EIO between host sessions.
        _announce(os.ttyname(slave))
        _session(fw, Conn(fd=master), baud, rng)
        return
    if not listen.startswith("tcp:"):
        raise SystemExit(f"--listen must be 'pty' or 'tcp:HOST:PORT', not {listen!r}")
    host, _, port = listen[4:].rpartition(":")
    server = socket.create_server((host or "127.0.0.1", int(port or 0)))
    _announce(f"socket://{host or '127.0.0.1'}:{server.getsockname()[1]}")
    while True:
        sock, peer = server.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        log.info("host connected from %s", peer)
        _session(fw, Conn(sock=sock), baud, rng)
        sock.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devices.sim", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="serve the simulated MCU")
    s.add_argument("--listen", default="tcp:127.0.0.1:0", help="pty | tcp:HOST:PORT (port 0: any free)")
    s.add_argument("--profile", default="cortex-m4@80MHz", choices=sorted(PROFILES))
    s.add_argument("--baud", type=int, default=0, help="pace bytes at this baud rate (0: unpaced)")
    s.add_argument("--faults", default="{}", help="SimFaults as JSON")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--jitter", type=float, default=0.002, help="relative sd of modelled cycle noise")
    s.add_argument("--exit-on-stdin-eof", action="store_true", help="exit when the parent closes stdin")
    s.add_argument("--log-level", default="INFO")
    sub.add_parser("profiles", help="list target profiles")
    args = parser.parse_args(argv)
    if args.command == "profiles":
        for p in PROFILES.values():
            print(f"{p.name}\t{p.board}\t{p.clock_hz} Hz\tarena {p.arena_capacity} B")
        return 0
    logging.basicConfig(level=args.log_level, stream=sys.stderr, format="%(asctime)s sim %(levelname)s %(message)s")
    faults = SimFaults.model_validate_json(args.faults)
    fw = Firmware(profile(args.profile), faults, seed=args.seed, jitter=args.jitter)
    if args.exit_on_stdin_eof:
        _watch_stdin()
    serve(args.listen, fw, args.baud or None, args.seed)
    return 0

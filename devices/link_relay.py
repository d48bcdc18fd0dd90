"""A TCP relay in front of a socket:// serial (QEMU's), that can pace bytes like a UART and inject faults.

Beside the real links: tests put it between a driver and a real firmware under QEMU to see what the
driver does when bytes are lost or the line goes quiet, and benchmarks put it there to give both
wire protocols the same 115200-baud 8N1 line. The faults act on the host→device direction, where
a real USB-serial bridge loses bytes under load.

    relay = LinkRelay("socket://127.0.0.1:4444", baud=115200, drop=lambda n, b: n == 10)
    url = relay.start()   # socket://127.0.0.1:<port> for the driver
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Callable


class LinkRelay:
    """One client connection relayed to `target`; `drop(index, byte)` True loses that host byte;
    after `stall_after` host bytes nothing more is forwarded (the line went dead)."""

    def __init__(self, target: str, *, baud: int | None = None, drop: Callable[[int, int], bool] | None = None,
                 stall_after: int | None = None) -> None:
        host, port = target.removeprefix("socket://").rsplit(":", 1)
        self.target = (host, int(port))
        self.baud = baud
        self.drop = drop
        self.stall_after = stall_after
        self.host_bytes = 0  # host→device bytes seen (forwarded or not)
        self.dropped = 0
        self.device_bytes = 0
        self._server = socket.socket()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(1)
        self._thread = threading.Thread(target=self._serve, name="link-relay", daemon=True)
        self._thread.start()
        return f"socket://127.0.0.1:{self._server.getsockname()[1]}"

    def _serve(self) -> None:
        self._server.settimeout(0.2)
        client = None
        while not self._stop.is_set() and client is None:
            with contextlib.suppress(TimeoutError):
                client, _ = self._server.accept()
        if client is None:
            return
        upstream = socket.create_connection(self.target)
        for s in (client, upstream):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # One thread per direction: each is its own UART, and pacing one must not hold up the other
        # (a sliding window's acknowledgements flow while its chunks are still on the wire).
        down = threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True)
        down.start()
        try:
            self._pump(client, upstream, True)
        finally:
            for s in (client, upstream):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
            down.join(timeout=2)
            for s in (client, upstream):
                with contextlib.suppress(OSError):
                    s.close()

    def _pump(self, src: socket.socket, dst: socket.socket, from_host: bool) -> None:
        free = 0.0  # when this direction's line is next idle (monotonic seconds)
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([src], [], [], 0.1)
                if not ready:
                    continue
                data = src.recv(4096)
                if not data:
                    return
                if from_host:
                    data = self._filter(data)
                else:
                    self.device_bytes += len(data)
                free = self._pace(dst, data, free)
        except OSError:
            return

    def _filter(self, data: bytes) -> bytes:
        out = bytearray()
        for b in data:
            i = self.host_bytes
            self.host_bytes += 1
            stalled = self.stall_after is not None and i >= self.stall_after
            if stalled or (self.drop is not None and self.drop(i, b)):
                self.dropped += 1
            else:
                out.append(b)
        return bytes(out)

    def _pace(self, sock: socket.socket, data: bytes, free: float) -> float:
        """Send `data` no faster than the baud rate; returns when the line is idle again."""
        if not data:
            return free
        if self.baud is None:
            sock.sendall(data)
            return free
        per_byte = 10.0 / self.baud  # 8N1: start + 8 data + stop bits
        now = time.monotonic()
        # Behind by a little (a sleep overshot on a busy host): keep the line's own schedule so the
        # average rate stays the baud rate; idle for longer: the line starts afresh now.
        t = free if now - free < 0.02 else now
        for i in range(0, len(data), 16):  # 16-byte slices: ~1.4 ms at 115200, close to a byte stream
            piece = data[i : i + 16]
            t += len(piece) * per_byte
            delay = t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sock.sendall(piece)
        return t

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        with contextlib.suppress(OSError):
            self._server.close()

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
        # Pacing: each direction is its own UART, free again at `*_free` (monotonic seconds).
        free = {"up": 0.0, "down": 0.0}
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([client, upstream], [], [], 0.1)
                if client in ready:
                    data = client.recv(4096)
                    if not data:
                        return
                    self._pace(upstream, self._filter(data), free, "up")
                if upstream in ready:
                    data = upstream.recv(4096)
                    if not data:
                        return
                    self.device_bytes += len(data)
                    self._pace(client, data, free, "down")
        except OSError:
            return
        finally:
            for s in (client, upstream):
                with contextlib.suppress(OSError):
                    s.close()

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

    def _pace(self, sock: socket.socket, data: bytes, free: dict[str, float], way: str) -> None:
        if not data:
            return
        if self.baud is None:
            sock.sendall(data)
            return
        per_byte = 10.0 / self.baud  # 8N1: start + 8 data + stop bits
        for i in range(0, len(data), 16):  # 16-byte slices: ~1.4 ms at 115200, close to a byte stream
            piece = data[i : i + 16]
            start = max(free[way], time.monotonic())
            free[way] = start + len(piece) * per_byte
            delay = free[way] - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sock.sendall(piece)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        with contextlib.suppress(OSError):
            self._server.close()

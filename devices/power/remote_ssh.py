"""A `RemoteReader` over an SSH connection (devices/ssh_connect.py), for sensors on a board.

It opens its own connection with the SSH device's settings (same host keys, same ~/.ssh/config),
so the meter never disturbs the device's agent session; `from_connection` wraps an existing one.
Programs run through `exec` channels, several at a time if need be (the sampler runs in one while
the host stops it through SFTP); files are read with `cat`, so sysfs behaves as it does locally, and
written over SFTP: no remote shell starts, so the write takes a round trip, not a login's worth of
rc files — the ina2xx meter aligns the board's clock on that write.
"""

from __future__ import annotations

import errno
import shlex
import time
from collections.abc import Sequence
from typing import Any

from devices.ssh_connect import Connection, connect


class SshReader:
    same_clock = False

    def __init__(self, conn: Connection, description: str, *, owned: bool = False) -> None:
        self.conn = conn
        self.description = description
        self._owned = owned
        self._sftp: Any = None

    @classmethod
    def connect(cls, device: str, settings: Any) -> SshReader:
        """A new connection using an `SshSettings` (the [[devices]] entry of the board)."""
        s = settings
        conn = connect(s.target(device), s.auth(), timeout=s.connect_timeout, attempts=s.connect_attempts,
                       keepalive=s.keepalive, device=device)  # fmt: skip
        return cls(conn, f"ssh {device} ({conn.hop.user}@{conn.hop.hostname}:{conn.hop.port})", owned=True)

    @classmethod
    def from_connection(cls, conn: Connection, device: str) -> SshReader:
        return cls(conn, f"ssh {device}")

    def _exec(self, argv: Sequence[str], timeout: float | None) -> tuple[int, bytes, bytes]:
        chan = self.conn.transport.open_session()
        try:
            chan.exec_command(shlex.join(argv))
            out, err = bytearray(), bytearray()
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                busy = False
                if chan.recv_ready():
                    out += chan.recv(1 << 16)
                    busy = True
                if chan.recv_stderr_ready():
                    err += chan.recv_stderr(1 << 16)
                    busy = True
                if not busy:
                    if chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
                        break
                    if deadline is not None and time.monotonic() > deadline:
                        raise TimeoutError(f"{argv[0]} did not finish within {timeout:g} s")
                    time.sleep(0.002)
            while chunk := chan.recv(1 << 16):  # data still in flight after the exit status
                out += chunk
            return chan.recv_exit_status(), bytes(out), bytes(err)
        finally:
            chan.close()

    def run(self, argv: Sequence[str], *, timeout: float | None = None) -> str:
        rc, out, err = self._exec(argv, timeout)
        if rc != 0:
            tail = (err or out).decode("utf-8", "replace").strip()[-500:]
            raise RuntimeError(f"{argv[0]} exited with {rc} on {self.description}: {tail}")
        return out.decode("utf-8", "replace")

    def read_file(self, path: str) -> str:
        rc, out, err = self._exec(["cat", "--", path], 30)
        if rc != 0:
            text = err.decode("utf-8", "replace").strip()
            code = errno.ENOENT if "No such file" in text else errno.EIO
            raise OSError(code, text or f"cat exited with {rc}", path)
        return out.decode("utf-8", "replace")

    def write_file(self, path: str, text: str) -> None:
        if self._sftp is None:
            self._sftp = self.conn.client.open_sftp()
        with self._sftp.open(path, "w") as f:
            f.write(text)

    def close(self) -> None:
        if self._sftp is not None:
            self._sftp.close()
            self._sftp = None
        if self._owned:
            self.conn.close()

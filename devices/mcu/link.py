"""Opening a serial link by URL, exclusively.

Every link goes through `serial.serial_for_url`, so a tty, a /dev/serial/by-id symlink, socket://,
rfc2217:// and loop:// share one code path. Exclusivity is two locks: pyserial's `exclusive=True`
(flock on the tty itself) for local paths, and an advisory lock file named after the port for every
URL, so a second bench process gets "board busy: held by pid N" instead of interleaved frames.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
from pathlib import Path

import serial

from benchcore.errors import DeviceBusyError, DeviceError

_URL_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


def is_local_path(port: str) -> bool:
    return not _URL_SCHEME.match(port)


def lock_key(port: str) -> str:
    """One key per physical port: symlinks (by-id paths) resolve to the tty they name."""
    if is_local_path(port):
        return os.path.realpath(port)
    # Drop options (?logging=debug) so two spellings of one socket share a lock.
    return port.split("?", 1)[0].rstrip("/").lower()


def lock_dir() -> Path:
    run_lock = Path("/run/lock")
    if run_lock.is_dir() and os.access(run_lock, os.W_OK):
        return run_lock
    return Path("/tmp")


def lock_path(port: str) -> Path:
    key = lock_key(port)
    readable = re.sub(r"[^A-Za-z0-9]+", "_", key).strip("_")[-40:]
    digest = hashlib.sha1(key.encode()).hexdigest()[:10]
    return lock_dir() / f"bench-serial-{readable}-{digest}.lock"


class PortLock:
    """An flock held for as long as the link is open; the holder's pid is written inside."""

    def __init__(self, device: str, port: str) -> None:
        self.device = device
        self.port = port
        self.path = lock_path(port)
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            raise DeviceBusyError(
                self.device, "open",
                f"board busy: held by pid {holder} ({self.port}; lock file {self.path}).",
                hint="Wait for the other bench run to finish, or stop that process.",
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        os.close(self._fd)  # closing drops the flock
        self._fd = None


def _read_pid(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode().strip()
    except OSError:
        return "unknown"
    return text if text.isdigit() else "unknown"


def open_link(device: str, port: str, baud: int) -> serial.SerialBase:
    """Open `port` (already locked by the caller) with a short read timeout for polling."""
    kwargs: dict = {"baudrate": baud, "timeout": 0.05, "write_timeout": 10}
    if is_local_path(port):
        kwargs["exclusive"] = True
    try:
        return serial.serial_for_url(port, **kwargs)
    except serial.SerialException as exc:
        text = str(exc)
        if is_local_path(port) and ("lock" in text.lower() or "resource temporarily" in text.lower()):
            raise DeviceBusyError(
                device, "open", f"board busy: {port} is open in another process ({text})."
            ) from None
        raise DeviceError(
            device, "open", f"cannot open {port}: {text}",
            hint="Check the port in bench.toml (a tty path, /dev/serial/by-id/..., socket://host:port, "
            "rfc2217://host:port or loop://) and that the board is connected.",
        ) from None

"""Where a sensor's files live: this machine, or a board reached through a device's SSH connection.

A `RemoteReader` reads a file and runs a program to completion. The ina2xx meter needs nothing
else, so the same meter code runs against a local directory (tests, or bench running on the Pi
itself) and over SSH. An adapter over the SSH device's connection sets `same_clock = False`: the
board's monotonic clock is then aligned to the host's from a stop handshake (devices/power/ina2xx.py).
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable


@runtime_checkable
class RemoteReader(Protocol):
    #: True when programs run here share the host's time.monotonic_ns() clock.
    same_clock: bool

    def read_file(self, path: str) -> str:
        """The file's text; raises OSError (FileNotFoundError when it does not exist)."""
        ...

    def write_file(self, path: str, text: str) -> None:
        """Create or replace a file. Must not start a shell: the ina2xx meter times it to align clocks."""
        ...

    def run(self, argv: Sequence[str], *, timeout: float | None = None) -> str:
        """Run `argv` to completion and return its stdout; raises RuntimeError on a non-zero exit."""
        ...


class LocalReader:
    """Files and programs on this machine."""

    same_clock = True
    description = "local"

    def read_file(self, path: str) -> str:
        return Path(path).read_text()

    def write_file(self, path: str, text: str) -> None:
        Path(path).write_text(text)

    def run(self, argv: Sequence[str], *, timeout: float | None = None) -> str:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip()[-500:]
            raise RuntimeError(f"{argv[0]} exited with {proc.returncode}: {tail}")
        return proc.stdout

"""A real PostgreSQL 15 server in a temporary directory, for tests and benchmarks (Debian's binaries)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def missing_reason() -> str | None:
    if not (PG_BIN / "initdb").exists():
        return "PostgreSQL 15 server binaries missing: scripts/install --test installs Debian's postgresql"
    return None


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start a server on a Unix socket (no TCP listener) and yield its SQLAlchemy URL; stop and remove it after."""
    # Not under pytest's basetemp: that is 0700 root's, and the server runs as another user.
    base = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    # initdb refuses to run as root: run the server as Debian's postgres user when we are root.
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        shutil.chown(base, "postgres")
        shutil.chown(sock, "postgres")
    port = _free_port()
    try:
        subprocess.run([*as_user, str(PG_BIN / "initdb"), "-D", str(data), "-U", "bench", "--auth=trust", "-E",
                        "UTF8"], check=True, capture_output=True)
        # -t: how long `-w` waits for the server (default 60 s), generous for a busy machine: only a hang costs it.
        subprocess.run([*as_user, str(PG_BIN / "pg_ctl"), "-D", str(data), "-w", "-t", "300", "-l", str(base / "log"),
                        "-o", f"-k {sock} -p {port} -c listen_addresses=''", "start"], check=True, capture_output=True)
        yield f"postgresql+psycopg://bench@/postgres?host={sock}&port={port}"
    finally:
        if data.exists():
            subprocess.run([*as_user, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                           check=False, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)

"""Host keys for `kind = "ssh"`: known_hosts lookups, fingerprints, and trusting a new board.

Strict by default: a host whose key is not in known_hosts is refused with its fingerprint and the
command that trusts it; a changed key is refused, and `bench devices trust` will not replace it.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import paramiko

DEFAULT_PORT = 22


def host_entry(hostname: str, port: int) -> str:
    """The name known_hosts files use: `host` on port 22, `[host]:port` otherwise (as OpenSSH writes)."""
    return hostname if port == DEFAULT_PORT else f"[{hostname}]:{port}"


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's SHA256 fingerprint, as `ssh-keygen -lf` prints it."""
    return key.fingerprint


def describe(key: paramiko.PKey) -> str:
    return f"{key.get_name()} {fingerprint(key)}"


def load_known_hosts(path: Path) -> paramiko.HostKeys:
    """The file's keys; a missing file is an empty set (every host unknown), not an error."""
    keys = paramiko.HostKeys()
    if path.exists():
        keys.load(str(path))
    return keys


def known_keys(path: Path, entry: str) -> dict[str, paramiko.PKey]:
    """key type -> key recorded for `entry` (hashed entries included); empty when unknown."""
    found = load_known_hosts(path).lookup(entry)
    return dict(found) if found is not None else {}


class UnknownHost(paramiko.SSHException):
    """The server's key is not in known_hosts; carries the key so the user can be shown its fingerprint."""

    def __init__(self, entry: str, key: paramiko.PKey) -> None:
        super().__init__(f"{entry} presents {describe(key)}, which is not in known_hosts")
        self.entry = entry
        self.key = key


class RecordingRejectPolicy(paramiko.MissingHostKeyPolicy):
    """paramiko's RejectPolicy, but the refusal carries the presented key for the error message."""

    def missing_host_key(self, client: Any, hostname: str, key: paramiko.PKey) -> None:
        raise UnknownHost(hostname, key)


def fetch_host_key(hostname: str, port: int, *, timeout: float, sock: Any = None,
                   preferred: list[str] | None = None) -> paramiko.PKey:
    """The key a server presents, from a key exchange without authentication (nothing is trusted here).

    Key types in `preferred` (those already recorded) are asked for first, as a real login would.
    """
    own_sock = sock is None
    if own_sock:
        sock = socket.create_connection((hostname, port), timeout=timeout)
    transport = paramiko.Transport(sock)
    try:
        if preferred:
            options = transport.get_security_options()
            options.key_types = [*(t for t in options.key_types if t in preferred),
                                 *(t for t in options.key_types if t not in preferred)]
        transport.start_client(timeout=timeout)
        return transport.get_remote_server_key()
    finally:
        transport.close()
        if own_sock:
            sock.close()


def append_known_host(path: Path, entry: str, key: paramiko.PKey) -> None:
    """Append one line in OpenSSH's format; a new file (and ~/.ssh) gets owner-only permissions."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a") as f:
        if f.tell() > 0 and not _ends_with_newline(path):
            f.write("\n")
        f.write(f"{entry} {key.get_name()} {key.get_base64()}\n")


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"

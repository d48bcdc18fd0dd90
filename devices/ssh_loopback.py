"""A real OpenSSH server on 127.0.0.1 with its own host key, config and authorized key: the fake
beside the ssh driver, used by the tests and benchmarks/ssh_overhead.py. The "board" is this machine,
so the board's python is the interpreter running bench (it has ai-edge-litert).

Needs Debian's openssh-server (scripts/install --test installs it) and root or an sshd-capable user.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SSHD = Path("/usr/sbin/sshd")
SSH_KEYGEN = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"


@dataclass
class SshServer:
    port: int
    base: Path
    key_file: Path
    host_key_pub: str
    known_hosts: Path
    remote_dir: Path
    process: subprocess.Popen

    def device(self, name: str = "pi", **settings: Any) -> dict[str, Any]:
        """A [[devices]] entry for this server, isolated from the user's ~/.ssh."""
        entry = {
            "name": name, "kind": "ssh", "host": "127.0.0.1", "port": self.port, "key_file": str(self.key_file),
            "known_hosts": str(self.known_hosts), "ssh_config": "", "agent": False, "python": sys.executable,
            "remote_dir": str(self.remote_dir), "connect_timeout": 5.0, "command_timeout": 60.0,
        }
        entry.update(settings)
        return entry

    def drop_connections(self) -> int:
        """Kill the per-connection sshd processes (not the listener, not the sessions' programs): to
        both ends it looks like a dropped link."""
        children = _sshd_descendants(self.process.pid)
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return len(children)

    def remote_leftovers(self, wait: float = 3.0) -> list[str]:
        """What is left in the remote working-directory parent, after giving cleanups `wait` seconds."""
        deadline = time.monotonic() + wait
        while True:
            left = sorted(os.listdir(self.remote_dir))
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.05)


def _sshd_descendants(root: int) -> list[int]:
    parent_of: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        comm, _, rest = text.partition(" (")[2].rpartition(")")
        if comm == "sshd":
            parent_of[int(stat.parent.name)] = int(rest.split()[1])
    found, frontier = [], {root}
    while frontier:
        frontier = {pid for pid, ppid in parent_of.items() if ppid in frontier}
        found.extend(frontier)
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _keygen(path: Path) -> str:
    subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", "bench-test", "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text().strip()


def write_known_hosts(path: Path, port: int, public_key: str) -> None:
    key_type, key_b64 = public_key.split()[:2]
    path.write_text(f"[127.0.0.1]:{port} {key_type} {key_b64}\n")


class LoopbackError(RuntimeError):
    """The private sshd could not be started."""


@contextmanager
def loopback_sshd() -> Iterator[SshServer]:
    if not SSHD.exists():
        raise LoopbackError("OpenSSH server missing: scripts/install --test installs Debian's openssh-server")
    base = Path(tempfile.mkdtemp(prefix="bench-sshd-"))
    host_pub = _keygen(base / "host_ed25519")
    client_pub = _keygen(base / "id_ed25519")
    (base / "authorized_keys").write_text(client_pub + "\n")
    remote_dir = base / "remote"
    remote_dir.mkdir()
    port = _free_port()
    config = base / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {base / 'host_ed25519'}\nPidFile {base / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {base / 'authorized_keys'}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "UsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\nAllowTcpForwarding yes\n"
        "Subsystem sftp internal-sftp\nPrintMotd no\nLogLevel ERROR\n"
    )
    Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)  # privilege separation directory
    log = (base / "sshd.log").open("wb")
    proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT)
    known_hosts = base / "known_hosts"
    write_known_hosts(known_hosts, port, host_pub)
    try:
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None:
                raise LoopbackError(f"sshd exited at start: {(base / 'sshd.log').read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise LoopbackError("sshd did not listen within 10 s") from None
                time.sleep(0.05)
        yield SshServer(port=port, base=base, key_file=base / "id_ed25519", host_key_pub=host_pub,
                        known_hosts=known_hosts, remote_dir=remote_dir, process=proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        shutil.rmtree(base, ignore_errors=True)

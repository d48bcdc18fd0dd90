"""Getting an authenticated, host-key-checked SSH connection to a board, the way `ssh` would.

~/.ssh/config is honoured (Host aliases, HostName, User, Port, IdentityFile, ProxyJump); bench.toml's
keys win over it, as `ssh -p` wins over `Port`. Host keys are checked against known_hosts with a
rejecting policy. Network trouble is retried with backoff; a refused key or login is not, because
retrying cannot fix it.
"""

from __future__ import annotations

import getpass
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paramiko

from benchcore.errors import DeviceError
from devices.ssh_hostkeys import DEFAULT_PORT, RecordingRejectPolicy, UnknownHost, describe, host_entry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Hop:
    """One machine to log in to: a jump host or the board itself."""

    alias: str
    hostname: str
    port: int
    user: str
    key_files: tuple[str, ...] = ()


@dataclass(frozen=True)
class Target:
    board: Hop
    jumps: tuple[Hop, ...] = ()

    @property
    def chain(self) -> tuple[Hop, ...]:
        return (*self.jumps, self.board)


@dataclass(frozen=True)
class Auth:
    """How to authenticate, from the device's settings (never a password)."""

    key_file: str | None = None
    passphrase_env: str | None = None
    agent: bool = True
    known_hosts: Path = field(default_factory=lambda: Path("~/.ssh/known_hosts").expanduser())


def _ssh_config(path: str) -> paramiko.SSHConfig:
    if path:
        expanded = Path(path).expanduser()
        if expanded.is_file():
            return paramiko.SSHConfig.from_path(str(expanded))
    return paramiko.SSHConfig()


def _parse_hop_spec(spec: str) -> tuple[str | None, str, int | None]:
    """`[user@]host[:port]` as ProxyJump writes a hop (ssh:// URLs are not accepted)."""
    user, _, rest = spec.rpartition("@")
    host, port = rest, None
    if rest.startswith("["):  # [v6addr]:port
        host, _, tail = rest[1:].partition("]")
        port = int(tail[1:]) if tail.startswith(":") else None
    elif rest.count(":") == 1:
        host, _, p = rest.partition(":")
        port = int(p)
    return (user or None), host, port


def _hop(config: paramiko.SSHConfig, alias: str, *, user: str | None, port: int | None,
         key_file: str | None, device: str) -> Hop:
    entry = config.lookup(alias)
    if "proxycommand" in entry and entry["proxycommand"].lower() != "none":
        raise DeviceError(device, "connect", f"~/.ssh/config gives {alias!r} a ProxyCommand, which bench does not run.",
                          hint="Use ProxyJump for jump hosts.")
    keys = [key_file] if key_file else entry.get("identityfile", [])
    existing = tuple(str(Path(k).expanduser()) for k in keys if Path(k).expanduser().exists())
    return Hop(
        alias=alias,
        hostname=entry.get("hostname", alias),
        port=port or int(entry.get("port", DEFAULT_PORT)),
        user=user or entry.get("user") or getpass.getuser(),
        key_files=existing,
    )


def resolve(host: str, *, port: int | None, user: str | None, key_file: str | None, ssh_config: str,
            device: str) -> Target:
    """Settings + ~/.ssh/config -> where to connect, through which jump hosts."""
    config = _ssh_config(ssh_config)
    board = _hop(config, host, user=user, port=port, key_file=key_file, device=device)
    jump_spec = config.lookup(host).get("proxyjump", "")
    jumps = []
    if jump_spec and jump_spec.lower() != "none":
        for spec in jump_spec.split(","):
            j_user, j_host, j_port = _parse_hop_spec(spec.strip())
            # Jump hosts take their own config entries; bench.toml's user/port/key belong to the board.
            jumps.append(_hop(config, j_host, user=j_user, port=j_port, key_file=None, device=device))
    return Target(board=board, jumps=tuple(jumps))


class Connection:
    """An authenticated client to the board, and the jump-host clients its socket runs through."""

    def __init__(self, client: paramiko.SSHClient, jumps: list[paramiko.SSHClient], hop: Hop) -> None:
        self.client = client
        self.jumps = jumps
        self.hop = hop

    @property
    def transport(self) -> paramiko.Transport:
        transport = self.client.get_transport()
        assert transport is not None
        return transport

    def alive(self) -> bool:
        transport = self.client.get_transport()
        return transport is not None and transport.is_active()

    def close(self) -> None:
        self.client.close()
        for jump in reversed(self.jumps):
            jump.close()


def _passphrase(auth: Auth, device: str) -> str | None:
    if not auth.passphrase_env:
        return None
    value = os.environ.get(auth.passphrase_env)
    if value is None:
        raise DeviceError(device, "connect", f"passphrase_env names ${auth.passphrase_env}, which is not set.",
                          hint=f"export {auth.passphrase_env}=... before running bench, or load the key into "
                               "ssh-agent and drop passphrase_env.")
    return value


def login(hop: Hop, auth: Auth, *, sock: Any, timeout: float, device: str) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    if auth.known_hosts.exists():
        client.load_host_keys(str(auth.known_hosts))
    client.set_missing_host_key_policy(RecordingRejectPolicy())
    key_files = list(hop.key_files)
    try:
        client.connect(
            hop.hostname, port=hop.port, username=hop.user, key_filename=key_files or None,
            passphrase=_passphrase(auth, device), allow_agent=auth.agent,
            # Like ssh: the default identities only when none was named.
            look_for_keys=not key_files, timeout=timeout, banner_timeout=timeout, auth_timeout=timeout,
            channel_timeout=timeout, sock=sock,
        )
    except BaseException:
        client.close()
        raise
    return client


def _refusal(exc: Exception, hop: Hop, auth: Auth, device: str) -> DeviceError | None:
    """A DeviceError for what retrying cannot fix; None for what it might (network trouble)."""
    entry = host_entry(hop.hostname, hop.port)
    if isinstance(exc, UnknownHost):
        return DeviceError(
            device, "connect",
            f"host {entry} is not in {auth.known_hosts}; it presents {describe(exc.key)}. Not connecting.",
            hint=f"If that is your board's key, trust it with `bench devices trust {device}` "
                 "(it shows the fingerprint and asks before writing).")
    if isinstance(exc, paramiko.BadHostKeyException):
        return DeviceError(
            device, "connect",
            f"HOST KEY CHANGED for {entry}: {auth.known_hosts} has {describe(exc.expected_key)}, the server now "
            f"presents {describe(exc.key)}. This can be an attack; not connecting.",
            hint=f"If you know why it changed (a re-imaged board), remove the old key with "
                 f"`ssh-keygen -R '{entry}' -f {auth.known_hosts}`, then `bench devices trust {device}`.")
    if isinstance(exc, paramiko.PasswordRequiredException):
        return DeviceError(device, "connect", f"the key for {hop.user}@{entry} is encrypted: {exc}",
                           hint="Load it into ssh-agent, or name an environment variable holding its passphrase "
                                "with passphrase_env (never the passphrase itself).")
    if isinstance(exc, paramiko.AuthenticationException):
        return DeviceError(device, "connect", f"{hop.user}@{entry} refused the login: {exc}",
                           hint="Check user and key_file (or IdentityFile in ~/.ssh/config) and that the public "
                                "key is in the board's ~/.ssh/authorized_keys; passwords are not supported.")
    if isinstance(exc, DeviceError):
        return exc
    return None


def connect(target: Target, auth: Auth, *, timeout: float, attempts: int, keepalive: int,
            device: str) -> Connection:
    """Log in through every hop; network errors are retried `attempts` times with doubling delays."""
    delay = 0.5
    for attempt in range(1, attempts + 1):
        clients: list[paramiko.SSHClient] = []
        hop = target.board
        try:
            sock = None
            for hop in target.chain:
                if clients:  # tunnel to this hop through the previous one, as ProxyJump does
                    sock = clients[-1].get_transport().open_channel(  # type: ignore[union-attr]
                        "direct-tcpip", (hop.hostname, hop.port), ("127.0.0.1", 0), timeout=timeout)
                clients.append(login(hop, auth, sock=sock, timeout=timeout, device=device))
            board = clients.pop()
            if keepalive:
                board.get_transport().set_keepalive(keepalive)  # type: ignore[union-attr]
            return Connection(board, clients, target.board)
        except (OSError, EOFError, paramiko.SSHException, DeviceError) as exc:
            for client in reversed(clients):
                client.close()
            refusal = _refusal(exc, hop, auth, device)
            if refusal is not None:
                raise refusal from None
            if attempt == attempts:
                raise DeviceError(
                    device, "connect",
                    f"could not reach {hop.user}@{host_entry(hop.hostname, hop.port)} after {attempts} attempts: "
                    f"{type(exc).__name__}: {exc}",
                    hint="Is the board on, on the network, and running sshd? (host/port in bench.toml or "
                         "~/.ssh/config)") from None
            log.warning("%s: connect attempt %d/%d failed (%s); retrying in %.1f s",
                        device, attempt, attempts, exc, delay)
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")

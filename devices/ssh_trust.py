"""`bench devices trust NAME`: record an SSH board's host key (and its jump hosts') in known_hosts.

The key is fetched by a key exchange, shown as OpenSSH's SHA256 fingerprint and written only after the
caller's `confirm` says yes. A key that differs from the recorded one is refused: replacing it is a
deliberate act (`ssh-keygen -R`), not something a prompt should make easy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import paramiko

from benchcore.errors import DeviceError
from devices.ssh_connect import Auth, Hop, Target, login
from devices.ssh_hostkeys import append_known_host, describe, fetch_host_key, fingerprint, host_entry, known_keys

Status = Literal["added", "already trusted", "declined"]


@dataclass(frozen=True)
class TrustOutcome:
    entry: str
    key_type: str
    fingerprint: str
    status: Status


def trust(target: Target, auth: Auth, *, device: str, confirm: Callable[[str], bool],
          timeout: float = 10.0) -> list[TrustOutcome]:
    """Each hop in order (jump hosts first); later hops are reached by logging in to the earlier ones."""
    outcomes: list[TrustOutcome] = []
    clients: list[paramiko.SSHClient] = []
    try:
        for i, hop in enumerate(target.chain):
            entry = host_entry(hop.hostname, hop.port)
            known = known_keys(auth.known_hosts, entry)
            sock = _tunnel(clients, hop, timeout) if clients else None
            try:
                key = fetch_host_key(hop.hostname, hop.port, preferred=list(known), sock=sock, timeout=timeout)
            except (OSError, EOFError, paramiko.SSHException) as exc:
                raise DeviceError(device, "trust", f"could not fetch the host key of {entry}: {exc}") from None
            recorded = known.get(key.get_name())
            if recorded is not None and recorded != key:
                raise DeviceError(
                    device, "trust",
                    f"HOST KEY CHANGED for {entry}: {auth.known_hosts} has {describe(recorded)}, the server now "
                    f"presents {describe(key)}. Not trusting it.",
                    hint=f"If you know why (a re-imaged board), remove the old key with "
                         f"`ssh-keygen -R '{entry}' -f {auth.known_hosts}` and run this again.")
            if recorded is not None:
                status: Status = "already trusted"
            elif confirm(f"{entry} presents {describe(key)}"):
                append_known_host(auth.known_hosts, entry, key)
                status = "added"
            else:
                status = "declined"
            outcomes.append(TrustOutcome(entry, key.get_name(), fingerprint(key), status))
            if status == "declined":
                break
            if i < len(target.chain) - 1:
                # The tunnel used for the key exchange is spent: open a fresh one to log in through.
                tunnel = _tunnel(clients, hop, timeout) if clients else None
                clients.append(login(hop, auth, sock=tunnel, timeout=timeout, device=device))
    finally:
        for client in reversed(clients):
            client.close()
    return outcomes


def _tunnel(clients: list[paramiko.SSHClient], hop: Hop, timeout: float) -> Any:
    """A direct-tcpip channel to `hop` through the last logged-in hop, as ProxyJump makes."""
    return clients[-1].get_transport().open_channel(  # type: ignore[union-attr]
        "direct-tcpip", (hop.hostname, hop.port), ("127.0.0.1", 0), timeout=timeout)

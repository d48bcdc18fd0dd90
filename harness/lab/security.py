"""Who may talk to the lab: plain TCP on loopback only; anywhere else Dask's mutual TLS, from files.

Dask's TLS checks both ends against the lab's CA (the server asks for the client's certificate), so
a host without a certificate the CA signed can neither submit work nor pose as a worker. bench.toml
names the files; their contents (the private key above all) never enter the config or the store.
"""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness.config import ClusterConfig
from harness.errors import ConfigError

CERTS_HINT = "Make a lab CA and host certificates with `bench lab certs` (README.md, 'Lab')."


def address_host(address: str) -> str:
    """The host of a Dask address (tcp://h:p, tls://h:p, h:p)."""
    if "://" not in address:
        address = "tcp://" + address
    host = urlsplit(address).hostname
    if not host:
        raise ConfigError(f"cluster address {address!r} names no host.",
                          hint="Write it as tcp://127.0.0.1:8786 or tls://scheduler.lab:8786.")
    return host


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def scheme(address: str) -> str:
    return address.split("://", 1)[0] if "://" in address else "tcp"


def tls_files(cluster: ClusterConfig, base_dir: Path) -> dict[str, Path] | None:
    """The three TLS files, resolved against the config's directory and checked; None when none is set."""
    given = {"tls_ca_file": cluster.tls_ca_file, "tls_cert_file": cluster.tls_cert_file,
             "tls_key_file": cluster.tls_key_file}
    if not any(given.values()):
        return None
    missing = [k for k, v in given.items() if v is None]
    if missing:
        raise ConfigError(f"[cluster] sets some TLS files but not {', '.join(missing)}.",
                          hint="Mutual TLS needs the CA, this host's certificate and its key. " + CERTS_HINT)
    files = {k: (v if v.is_absolute() else base_dir / v) for k, v in given.items() if v is not None}
    for key, path in files.items():
        if not path.is_file():
            raise ConfigError(f"[cluster] {key} {str(path)!r} does not exist.", hint=CERTS_HINT)
    return files


def check_address(address: str, tls: dict[str, Path] | None, role: str) -> None:
    """Refuse plain TCP beyond loopback, and TLS without certificates: the lab's wire is never open."""
    kind = scheme(address)
    if kind not in ("tcp", "tls"):
        raise ConfigError(f"{role} address {address!r}: protocol {kind!r} is not supported.",
                          hint="Use tcp:// on loopback, tls:// anywhere else.")
    host = address_host(address)
    if kind == "tcp" and not _all_loopback(host):
        raise ConfigError(
            f"{role} address {address!r} is plain TCP to a host that is not loopback; the lab requires mutual TLS "
            "beyond this machine.",
            hint="Use tls://HOST:PORT with [cluster] tls_ca_file, tls_cert_file and tls_key_file. " + CERTS_HINT)
    if kind == "tls" and tls is None:
        raise ConfigError(f"{role} address {address!r} is TLS but [cluster] names no certificates.", hint=CERTS_HINT)


def _all_loopback(host: str) -> bool:
    """A name counts as loopback only if every address it resolves to is (0.0.0.0 and '' are not)."""
    if is_loopback(host):
        return True
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(is_loopback(str(info[4][0])) for info in infos)


def security(tls: dict[str, Path] | None) -> Any:
    """A distributed.Security for these files (or None for loopback TCP)."""
    if tls is None:
        return None
    from distributed import Security

    ca, cert, key = (str(tls[k]) for k in ("tls_ca_file", "tls_cert_file", "tls_key_file"))
    return Security(tls_ca_file=ca, tls_client_cert=cert, tls_client_key=key, tls_scheduler_cert=cert,
                    tls_scheduler_key=key, tls_worker_cert=cert, tls_worker_key=key, require_encryption=True)


def connection(cluster: ClusterConfig, base_dir: Path, address: str | None, role: str) -> tuple[str, Any]:
    """The checked address (flag over [cluster] address) and its Security."""
    address = address or cluster.address
    if not address:
        raise ConfigError(f"{role}: no scheduler address.",
                          hint="Pass --scheduler/--cluster ADDR or set [cluster] address in bench.toml.")
    tls = tls_files(cluster, base_dir)
    check_address(address, tls, role)
    return address, security(tls)

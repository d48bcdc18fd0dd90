"""The loopback OpenSSH server as a session fixture for the ssh driver's tests.

Import it into a test module: `from tests.ssh_fixtures import sshd` (and list it in `__all__`).
A machine without openssh-server errors here with the install command, rather than skipping.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from devices.ssh_loopback import SshServer, loopback_sshd


class RoomySshServer(SshServer):
    """The loopback server, whose device entries give a login the time a busy machine needs: sshd forks
    and re-executes itself per connection, and the 5 s of `SshServer.device` only guard against a hang."""

    def device(self, name: str = "pi", **settings: Any) -> dict[str, Any]:
        return super().device(name, **{"connect_timeout": 60.0, **settings})


@pytest.fixture(scope="session")
def sshd() -> Iterator[SshServer]:
    with loopback_sshd() as server:
        yield RoomySshServer(**{f.name: getattr(server, f.name) for f in dataclasses.fields(server)})

"""The loopback OpenSSH server as a session fixture for the ssh driver's tests.

Import it into a test module: `from tests.ssh_fixtures import sshd` (and list it in `__all__`).
A machine without openssh-server errors here with the install command, rather than skipping.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devices.ssh_loopback import SshServer, loopback_sshd


@pytest.fixture(scope="session")
def sshd() -> Iterator[SshServer]:
    with loopback_sshd() as server:
        yield server

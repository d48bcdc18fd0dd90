"""Conformance of a device to firmware/PROTOCOL.md.

By default every test runs against the simulated MCU, once per transport (pty, tcp) and target
profile. Point it at anything else that speaks the protocol (the C firmware under QEMU, a board):

    pytest tests/conformance --mcu-port socket://127.0.0.1:4444
    BENCH_MCU_PORT=/dev/ttyUSB0 pytest tests/conformance

(`--mcu-port` is registered here, so it works when tests/conformance is on the command line; the
environment variable works from anywhere.)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest

from devices.mcu import messages as m
from devices.mcu.client import McuClient
from devices.mcu.link import PortLock, open_link
from devices.sim import SimProcess, SimSettings

#: Both transports and every profile, without the full cross product (2 cores run this suite).
TARGETS = [
    ("tcp", "cortex-m4@80MHz"),
    ("pty", "cortex-m4@80MHz"),
    ("tcp", "cortex-m7@216MHz"),
    ("pty", "esp32s3@240MHz"),
    ("qemu", "mps2-an386"),  # the C firmware itself, when QEMU and the image (or its toolchain) are here
]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--mcu-port", default=None, help="URL of a device to test instead of the simulator")
    parser.addoption("--mcu-baud", default=921600, type=int, help="baud rate for --mcu-port")


def external_port(config: pytest.Config) -> str | None:
    try:
        port = config.getoption("--mcu-port")
    except ValueError:
        port = None
    return port or os.environ.get("BENCH_MCU_PORT") or None


@pytest.fixture(scope="session", params=TARGETS, ids=[f"{t}-{p}" for t, p in TARGETS])
def mcu_url(request: pytest.FixtureRequest) -> Iterator[str]:
    port = external_port(request.config)
    if port:
        if request.param != TARGETS[0]:
            pytest.skip("an external device is tested once")
        yield port
        return
    transport, profile = request.param
    if transport == "qemu":
        yield from _qemu_url()
        return
    sim = SimProcess(f"sim-{transport}-{profile}", SimSettings(transport=transport, profile=profile),
                     logging.getLogger("bench.conformance.sim"))
    url = sim.start()
    yield url
    sim.stop()


def _qemu_url() -> Iterator[str]:
    from devices import qemu

    reason = qemu.unavailable_reason()
    if reason:
        pytest.skip(f"qemu: {reason}")
    settings = qemu.QemuSettings()
    proc = qemu.QemuProcess("qemu", settings, qemu.locate_image(settings), logging.getLogger("bench.conformance.qemu"))
    url = proc.start()
    yield url
    proc.stop()


@pytest.fixture
def is_sim(request: pytest.FixtureRequest) -> bool:
    return external_port(request.config) is None


@pytest.fixture(scope="session")
def _connection(mcu_url: str, request: pytest.FixtureRequest) -> Iterator[McuClient]:
    # One connection per target: pyserial's socket:// close sleeps 0.3 s on purpose.
    lock = PortLock("dut", mcu_url)
    lock.acquire()
    try:
        baud = request.config.getoption("--mcu-baud", default=921600)
        link = open_link("dut", mcu_url, baud)
        client = McuClient(link, device="dut", logger=logging.getLogger("bench.device.dut"), timeout=0.5,
                           retries=3, baud=None if mcu_url.startswith("socket://") else baud)
        yield client
        link.close()
    finally:
        lock.release()


@pytest.fixture
def mcu(_connection: McuClient) -> McuClient:
    """A client that has just said HELLO to the device under test, with nothing left over."""
    _connection.versions = (m.PROTOCOL_VERSION, m.PROTOCOL_VERSION)
    _connection.link.reset_input_buffer()
    _connection.poll(0)  # drain the client's own backlog
    _connection.hello()
    return _connection

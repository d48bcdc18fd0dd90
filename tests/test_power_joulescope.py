"""The Joulescope meter against a fake `pyjoulescope_driver` (same Driver methods), and the real package."""

from __future__ import annotations

import sys
import time

import pytest

from devices.power import measure_energy
from devices.power.base import WindowInfo
from devices.power.errors import DroppedSamplesError, MeterNotFoundError, MissingExtraError
from devices.power.fake_dut import FakeDut
from devices.power.fake_joulescope import FakeJoulescopeBackend, fake_module
from devices.power.joulescope import JoulescopeMeter, JoulescopeSettings
from devices.power.registry import create

FS = 100_000


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch) -> FakeJoulescopeBackend:
    be = FakeJoulescopeBackend(dut=FakeDut(idle_a=0.002, active_a=0.015, voltage_v=3.3))
    monkeypatch.setitem(sys.modules, "pyjoulescope_driver", fake_module(be))
    return be


def window(dut: FakeDut, n: int = 200, seconds: float = 0.12):
    def run() -> WindowInfo:
        start = time.monotonic_ns()
        with dut.active():
            time.sleep(seconds)
        stop = time.monotonic_ns()
        return WindowInfo(inferences=n, host_start_ns=start, host_stop_ns=stop, device_busy_s=dut.last_interval_s)

    return run


def expected_uj(dut: FakeDut, n: int) -> list[float]:
    return [dut.voltage_v * dut.active_a * (b - a) / 1e9 / n * 1e6 for a, b in dut.intervals]


def test_marker_on_gpi_gives_the_known_energy(backend: FakeJoulescopeBackend) -> None:
    meter = create("js", "joulescope", {"sample_rate": FS, "topics": {"s/io/voltage": "3.3V"}})
    meter.open()
    try:
        r = measure_energy(meter, window(backend.dut), windows=3, min_window_s=0.1, marker_input="gpi0", idle_s=0.05)
    finally:
        meter.close()
    want = sorted(expected_uj(backend.dut, 200))[1]
    assert r.method == "marker" and r.windows == 3
    assert r.energy_uj == pytest.approx(want, rel=2e-3)
    assert r.active_power_w == pytest.approx(3.3 * 0.015, rel=1e-4)
    assert r.idle_before_w == pytest.approx(3.3 * 0.002, rel=1e-4)
    assert r.meter.model == "JS220" and r.meter.serial == "000415" and r.sample_rate == FS
    topics = [t for t, _ in backend.published]
    assert "u/js220/000415/h/fs" in topics and "u/js220/000415/s/gpi/0/ctrl" in topics
    assert "u/js220/000415/s/io/voltage" in topics


def test_without_marker_falls_back_to_host_timestamps(backend: FakeJoulescopeBackend) -> None:
    meter = JoulescopeMeter("js", JoulescopeSettings(sample_rate=FS))
    meter.open()
    try:
        r = measure_energy(meter, window(backend.dut), windows=3, min_window_s=0.1, idle_s=0.05)
    finally:
        meter.close()
    want = sorted(expected_uj(backend.dut, 200))[1]
    assert r.method == "host timestamps"
    # The alignment is as good as the block arrival times; the figure still lands within 2 %.
    assert r.energy_uj == pytest.approx(want, rel=2e-2)
    assert r.uncertainty_uj > 0 and "host timestamps" in r.uncertainty_note


def test_a_lost_block_is_interpolated_or_refused(backend: FakeJoulescopeBackend) -> None:
    backend.block_s = 0.002
    backend.drop_blocks = {30}  # ~2 ms lost, during the idle lead-in
    meter = JoulescopeMeter("js", JoulescopeSettings(sample_rate=FS))
    meter.open()
    try:
        with pytest.raises(DroppedSamplesError, match="power meter 'js'"):
            measure_energy(meter, window(backend.dut), windows=1, min_window_s=0.1, marker_input="gpi0", idle_s=0.1)
        from devices.power.dropped import DropPolicy

        backend.drop_blocks = {30}
        r = measure_energy(meter, window(backend.dut), windows=1, min_window_s=0.1, marker_input="gpi0", idle_s=0.1,
                           drop_policy=DropPolicy(max_fraction=0.05, max_gap_s=0.01))  # fmt: skip
        assert r.dropped_samples > 0 and "interpolated" in r.dropped_handling
    finally:
        meter.close()


def test_meter_not_connected_names_what_the_driver_sees(backend: FakeJoulescopeBackend) -> None:
    meter = JoulescopeMeter("js", JoulescopeSettings(serial_number="999999"))
    with pytest.raises(MeterNotFoundError) as e:
        meter.open()
    assert "'js'" in str(e.value) and "999999" in str(e.value) and "u/js220/000415" in str(e.value)


def test_missing_vendor_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyjoulescope_driver", None)  # import now raises ImportError
    with pytest.raises(MissingExtraError) as e:
        JoulescopeMeter("js", JoulescopeSettings()).open()
    assert "pyjoulescope_driver" in str(e.value) and "hilbench[power]" in str(e.value)


def test_real_package_imports_and_finds_no_joulescope_here() -> None:
    real = pytest.importorskip("pyjoulescope_driver", reason="the power extra is not installed")
    for name in ("device_paths", "open", "close", "publish", "subscribe", "unsubscribe", "finalize"):
        assert callable(getattr(real.Driver, name)), name
    drv = real.Driver()
    try:
        if drv.device_paths(timeout=2):
            pytest.skip("a Joulescope is attached to this machine")
    finally:
        drv.finalize()
    meter = JoulescopeMeter("js", JoulescopeSettings(timeout_s=2))
    with pytest.raises(MeterNotFoundError, match="no Joulescope is connected"):
        meter.open()

"""The PPK2 meter against a fake `ppk2_api` (same PPK2_API methods), and the real package."""

from __future__ import annotations

import sys
import time

import pytest

from devices.power import measure_energy
from devices.power.base import WindowInfo
from devices.power.errors import MarkerError, MeterNotFoundError, MissingExtraError
from devices.power.fake_dut import FakeDut
from devices.power.fake_ppk2 import FakePpk2Backend, fake_modules
from devices.power.ppk2 import Ppk2Meter, Ppk2Settings


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch) -> FakePpk2Backend:
    be = FakePpk2Backend(dut=FakeDut(idle_a=0.003, active_a=0.012, voltage_v=1.8), marker_bit=3)
    for name, mod in fake_modules(be).items():
        monkeypatch.setitem(sys.modules, name, mod)
    return be


def window(dut: FakeDut, n: int = 150, seconds: float = 0.12):
    def run() -> WindowInfo:
        start = time.monotonic_ns()
        with dut.active():
            time.sleep(seconds)
        return WindowInfo(inferences=n, host_start_ns=start, host_stop_ns=time.monotonic_ns(),
                          device_busy_s=dut.last_interval_s, marker_pin="P0.13")  # fmt: skip

    return run


def test_source_mode_marker_on_d3(backend: FakePpk2Backend) -> None:
    meter = Ppk2Meter("ppk", Ppk2Settings(voltage_mv=1800))
    meter.open()
    try:
        r = measure_energy(meter, window(backend.dut), windows=3, min_window_s=0.1, marker_input="d3", idle_s=0.05)
    finally:
        meter.close()
    want = sorted(1.8 * 0.012 * (b - a) / 1e9 / 150 * 1e6 for a, b in backend.dut.intervals)[1]
    assert r.method == "marker"
    assert r.energy_uj == pytest.approx(want, rel=2e-3)
    assert r.idle_before_w == pytest.approx(1.8 * 0.003, rel=1e-4)
    assert not r.voltage_measured and "not measured" in r.uncertainty_note
    names = [c for c, _ in backend.calls]
    assert names.index("use_source_meter") < names.index("set_source_voltage") < names.index("start_measuring")
    assert ("toggle_DUT_power", ("ON",)) in backend.calls and ("toggle_DUT_power", ("OFF",)) in backend.calls


def test_ampere_mode_does_not_switch_the_supply(backend: FakePpk2Backend) -> None:
    meter = Ppk2Meter("ppk", Ppk2Settings(mode="ampere", voltage_mv=1800))
    meter.open()
    try:
        r = measure_energy(meter, window(backend.dut), windows=1, min_window_s=0.1, marker_input="d3", idle_s=0.05)
    finally:
        meter.close()
    assert r.active_power_w == pytest.approx(1.8 * 0.012, rel=1e-4)
    assert ("use_ampere_meter", ()) in backend.calls
    assert not any(c == "toggle_DUT_power" for c, _ in backend.calls)


def test_marker_on_the_wrong_input_names_input_and_pin(backend: FakePpk2Backend) -> None:
    meter = Ppk2Meter("ppk", Ppk2Settings(voltage_mv=1800))
    meter.open()
    try:
        with pytest.raises(MarkerError) as e:
            measure_energy(meter, window(backend.dut), windows=1, min_window_s=0.1, marker_input="d5", idle_s=0.05)
    finally:
        meter.close()
    assert "'d5'" in str(e.value) and "P0.13" in str(e.value) and "power meter 'ppk'" in str(e.value)


def test_no_ppk2_connected(backend: FakePpk2Backend) -> None:
    backend.ports = []
    with pytest.raises(MeterNotFoundError, match="no PPK2 is connected"):
        Ppk2Meter("ppk", Ppk2Settings()).open()


def test_configured_port_missing(backend: FakePpk2Backend) -> None:
    with pytest.raises(MeterNotFoundError, match="/dev/ttyACM7"):
        Ppk2Meter("ppk", Ppk2Settings(port="/dev/ttyACM7")).open()


def test_missing_vendor_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ppk2_api", None)
    monkeypatch.delitem(sys.modules, "ppk2_api.ppk2_api", raising=False)
    with pytest.raises(MissingExtraError, match=r"ppk2-api.*hilbench\[power\]"):
        Ppk2Meter("ppk", Ppk2Settings()).open()


def test_real_package_imports_with_the_method_names_we_call() -> None:
    real = pytest.importorskip("ppk2_api.ppk2_api", reason="the power extra is not installed")
    for name in ("list_devices", "get_modifiers", "use_source_meter", "use_ampere_meter", "set_source_voltage",
                 "toggle_DUT_power", "start_measuring", "stop_measuring", "get_data", "get_samples"):  # fmt: skip
        assert callable(getattr(real.PPK2_API, name)), name
    if real.PPK2_API.list_devices():
        pytest.skip("a PPK2 is attached to this machine")
    with pytest.raises(MeterNotFoundError, match="no PPK2 is connected"):
        Ppk2Meter("ppk", Ppk2Settings()).open()

"""The meter registry and [[meters]] binding, the sim meter on a digits variant, the replay meter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from devices.power import bind_meters, create_meter, measure_energy
from devices.power.base import Trace, WindowInfo
from devices.power.errors import MeterNotFoundError, UnknownMeterKindError, WindowTooShortError
from devices.power.registry import create, kinds, meter_spec
from devices.power.replay import ReplayMeter, ReplaySettings, save_trace
from devices.power.sim import sim_meter_for
from harness.errors import ConfigError

DIGITS = Path(__file__).resolve().parents[1] / "harness" / "models" / "data" / "digits"


def test_every_builtin_kind_loads_with_strict_settings() -> None:
    assert {"joulescope", "ppk2", "ina2xx", "replay", "sim"} <= set(kinds())
    for kind in kinds():
        spec = meter_spec(kind)
        assert spec.kind == kind
        assert spec.settings.model_config.get("extra") == "forbid"


def test_unknown_kind_names_the_known_ones() -> None:
    with pytest.raises(UnknownMeterKindError, match=r"'joulescpe'.*joulescope"):
        create("x", "joulescpe", {})


def test_bind_meters_checks_what_a_config_can_get_wrong() -> None:
    ok = bind_meters([{"name": "js", "kind": "joulescope", "device": "nucleo", "marker_input": "gpi1",
                       "serial_number": "000415"}], ["nucleo", "host"])  # fmt: skip
    assert ok[0].device == "nucleo" and ok[0].settings == {"serial_number": "000415"}
    cases = [
        ({"name": "js", "kind": "joulescope", "device": "nucelo"}, "device 'nucelo', which is not configured"),
        ({"name": "js", "kind": "joulescope", "device": "nucleo", "serial": "1"}, "unknown key 'meters[0].serial'"),
        ({"name": "js", "kind": "joulescope", "device": "nucleo", "marker_input": "gpi9"}, "no such input"),
        ({"name": "js", "kind": "nope", "device": "nucleo"}, "unknown power meter kind 'nope'"),
        ({"kind": "joulescope", "device": "nucleo"}, "missing key meters[0].'name'"),
        ({"name": "p", "kind": "ppk2", "device": "nucleo", "voltage_mv": 9000}, "meters[0].voltage_mv"),
    ]
    for entry, message in cases:
        with pytest.raises(ConfigError) as e:
            bind_meters([entry], ["nucleo"], "bench.toml")
        assert message in str(e.value), (entry, str(e.value))
    with pytest.raises(ConfigError, match="measured by two meters"):
        bind_meters([{"name": "a", "kind": "sim", "device": "nucleo", "active_power_w": 0.1},
                     {"name": "b", "kind": "sim", "device": "nucleo", "active_power_w": 0.1}], ["nucleo"])  # fmt: skip


def test_sim_meter_estimates_energy_for_a_digits_variant() -> None:
    from devices.sim_costmodel import PROFILES, model_ops, op_cycles

    target = PROFILES["cortex-m4@80MHz"]
    cycles = sum(op_cycles(model_ops((DIGITS / "digits_dense.tflite").read_bytes()), target))
    latency_s = cycles / target.clock_hz
    n = 2000
    meter = sim_meter_for("sim-m4", profile=target.name, latency_s=latency_s)
    meter.open()
    calls = []

    def run_window() -> WindowInfo:  # what the sim device would report; the meter only needs n
        calls.append(1)
        return WindowInfo(inferences=n, host_start_ns=0, host_stop_ns=1_000_000, device_busy_s=n * latency_s)

    r = measure_energy(meter, run_window, windows=3, min_window_s=n * latency_s * 0.9)
    assert len(calls) == 3
    assert r.estimated and r.meter.estimated and "ESTIMATED" in r.uncertainty_note
    # The cost model's own energy figure (profile power x latency), through the whole trace pipeline.
    want = target.active_power_w * latency_s * 1e6
    assert r.energy_uj == pytest.approx(want, rel=1e-3)
    assert r.dynamic_uj == pytest.approx(0.9 * want, rel=1e-3)  # idle assumed 10 % of active
    assert any("idle power assumed" in note for note in r.notes)


def test_window_shorter_than_minimum_is_refused() -> None:
    meter = sim_meter_for("sim", active_power_w=0.03, latency_s=0.001)
    info = WindowInfo(inferences=100, host_start_ns=0, host_stop_ns=1)
    with pytest.raises(WindowTooShortError) as e:
        measure_energy(meter, lambda: info, windows=2, min_window_s=10.0)
    assert "0.100 s" in str(e.value) and "10 s" in str(e.value) and "at least 10000 inferences" in str(e.value)


def _trace_file(tmp_path: Path, name: str, scale: float = 1.0, fmt: str = "npz") -> Path:
    fs, n = 10_000.0, 30_000
    t = np.arange(n) / fs
    on = (t >= 1.0) & (t < 2.0)
    cur = np.where(on, 0.010 * scale, 0.001)
    path = tmp_path / f"{name}.{fmt}"
    if fmt == "npz":
        meter = sim_meter_for("x", active_power_w=1).identity()
        save_trace(path, Trace(time=t, current=cur, voltage=np.full(n, 3.0), sample_rate=fs, meter=meter,
                               marker=on.astype(np.uint8)))  # fmt: skip
    else:
        rows = (f"{a:.6f},{b:.6g},3.0,{int(c)}" for a, b, c in zip(t, cur, on, strict=True))
        lines = ["time,current,voltage,marker", *rows]
        path.write_text("\n".join(lines) + "\n")
    return path


def test_replay_meter_reads_csv_and_npz_window_by_window(tmp_path: Path) -> None:
    paths = [_trace_file(tmp_path, "w1"), _trace_file(tmp_path, "w2", 1.1, "csv"), _trace_file(tmp_path, "w3", 0.9)]
    meter = create_meter(bind_meters([{"name": "rec", "kind": "replay", "device": "d", "marker_input": "marker",
                                       "paths": [str(p) for p in paths]}], ["d"])[0])  # fmt: skip
    meter.open()
    r = measure_energy(meter, lambda: WindowInfo(1000, 0, 0), windows=3, min_window_s=0.5,
                       marker_input="marker")  # fmt: skip
    assert r.energy_uj == pytest.approx(3.0 * 0.010 * 1.0 / 1000 * 1e6, rel=1e-6)  # 30 µJ, the median
    assert r.energy_max_uj == pytest.approx(33.0, rel=1e-6) and r.energy_min_uj == pytest.approx(27.0, rel=1e-6)
    assert len(r.meter.details["sha256"]) == 3


def test_replay_missing_file_and_column(tmp_path: Path) -> None:
    with pytest.raises(MeterNotFoundError, match=r"nope\.csv"):
        ReplayMeter("rec", ReplaySettings(paths=[tmp_path / "nope.csv"])).open()
    bad = tmp_path / "bad.csv"
    bad.write_text("time,amps,voltage\n0,1,1\n1,1,1\n")
    meter = ReplayMeter("rec", ReplaySettings(paths=[bad]))
    meter.open()
    meter.start(None)
    with pytest.raises(Exception, match="no column 'current'"):
        meter.stop()

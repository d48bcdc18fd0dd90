"""The simulator's cost model: MACs read from real models, and estimates that move the right way."""

from __future__ import annotations

from pathlib import Path

import pytest

from devices import sim_costmodel as cm

MODELS = Path(__file__).resolve().parents[1].parent / "shared" / "models"


def _ops(name: str) -> list[cm.OpInfo]:
    path = MODELS / f"{name}.tflite"
    if not path.exists():
        pytest.skip(f"{path} not available")
    return cm.model_ops(path.read_bytes())


def test_macs_of_known_models() -> None:
    # hello_world: FC 1->16, 16->16, 16->1.
    assert [op.macs for op in _ops("hello_world_int8")] == [16, 256, 16]
    ops = _ops("micro_speech_quantized")
    assert [op.name for op in ops] == ["RESHAPE", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "SOFTMAX"]
    assert ops[1].macs == 25 * 20 * 8 * 10 * 8 and ops[2].macs == 4 * 4000


def test_faster_cores_estimate_fewer_seconds() -> None:
    ops = _ops("person_detect")
    seconds = {p.name: sum(cm.op_cycles(ops, p)) / p.clock_hz for p in cm.PROFILES.values()}
    assert seconds["cortex-m4@80MHz"] > seconds["cortex-m7@216MHz"] > seconds["esp32s3@240MHz"]
    # Rough but plausible: tens to hundreds of milliseconds for a 7 M-MAC network.
    assert 0.01 < seconds["esp32s3@240MHz"] < 1.0


def test_energy_is_power_times_time() -> None:
    p = cm.profile("cortex-m4@80MHz")
    assert cm.energy_uj(p.clock_hz, p) == pytest.approx(p.active_power_w * 1e6)


def test_unreadable_model_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="TFL3"):
        cm.model_ops(b"not a model at all")
    with pytest.raises(ValueError, match="unknown sim profile"):
        cm.profile("z80@4MHz")

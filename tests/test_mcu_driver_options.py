"""The serial driver's own options — the arena search and output replay QEMU turns on — work over any
link: here the plain `McuDevice` over the simulator's `LinkProvider`, no subclass in between."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import pytest

from devices.base import ModelBinary, RunSpec
from devices.mcu.driver import McuDevice, ProtocolSettings
from devices.mcu.errors import ArenaTooSmallError
from devices.sim import SimProcess, SimSettings

MODELS = Path(__file__).resolve().parents[1].parent / "shared" / "models"


def binary(name: str) -> ModelBinary:
    path = MODELS / f"{name}.tflite"
    if not path.exists():
        pytest.skip(f"{path} not available")
    data = path.read_bytes()
    return ModelBinary(name, hashlib.sha256(data).hexdigest(), data)


def device(**options: object) -> McuDevice:
    link = SimProcess("plain", SimSettings(), logging.getLogger("test.plain"))
    return McuDevice("plain", ProtocolSettings(timeout_s=30.0, **options), link=link)  # type: ignore[arg-type]


def test_the_arena_search_finds_the_smallest_limit_allocate_accepts() -> None:
    model = binary("hello_world_int8")
    dev = device(arena_search=True)
    dev.open()
    try:
        dep = dev.deploy(model)
        minimum, capacity = dep.details["arena_min_bytes"], dep.details["arena_capacity"]
        assert minimum is not None and minimum % 16 == 0 and 0 < minimum <= capacity
        assert dep.details["arena_search_probes"] >= 2
        client = dev.client
        assert client is not None
        # the minimum works, 16 bytes less does not: asked of the device itself
        client.allocate(minimum)
        with pytest.raises(ArenaTooSmallError):
            client.allocate(minimum - 16)
        # and the search left the model allocated as configured: it runs
        dev.deploy(model)
        assert len(dev.run(RunSpec(warmup=0, iterations=3)).latency_ns) == 3
    finally:
        dev.close()


def test_without_the_option_there_is_no_search() -> None:
    dev = device()
    dev.open()
    try:
        dep = dev.deploy(binary("hello_world_int8"))
        assert "arena_min_bytes" not in dep.details
    finally:
        dev.close()


def test_replayed_outputs_are_flagged_and_equal_to_the_fetched_ones() -> None:
    model = binary("hello_world_int8")
    samples = np.arange(-8, 8, dtype=np.int8).reshape(16, 1, 1)
    dev = device(replay_outputs=True, op_profile=False)
    dev.open()
    try:
        dev.deploy(model)
        first = dev.run(RunSpec(warmup=0, iterations=1, samples=samples))
        again = dev.run(RunSpec(warmup=0, iterations=1, samples=samples))
        other = dev.run(RunSpec(warmup=0, iterations=1, samples=samples[:4]))
    finally:
        dev.close()
    assert first.details["outputs_replayed"] is False and again.details["outputs_replayed"] is True
    assert other.details["outputs_replayed"] is False  # other samples: fetched, not replayed
    assert first.outputs is not None and again.outputs is not None and np.array_equal(first.outputs, again.outputs)
    assert len(np.unique(first.outputs)) > 1  # real outputs, not a constant

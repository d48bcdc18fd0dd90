"""A stand-in for `ppk2_api.ppk2_api` with the same `PPK2_API` methods, driven by a `FakeDut`.

Put the two entries of `fake_modules(backend)` into `sys.modules` (monkeypatch.setitem) and the real
`Ppk2Meter` runs against it unchanged. Samples are produced at 100 kHz against the host clock between
`get_data()` calls; the fake's byte format is its own (float32 µA + one logic byte) since only `get_samples` reads it.
"""

from __future__ import annotations

import time
import types
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from devices.power.fake_dut import FakeDut

RATE = 100_000
_DTYPE = np.dtype([("ua", "<f4"), ("bits", "u1")])


@dataclass
class FakePpk2Backend:
    ports: list[str] = field(default_factory=lambda: ["/dev/ttyACM0"])
    dut: FakeDut = field(default_factory=FakeDut)
    marker_bit: int = 0
    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    modifiers_ok: bool = True


def fake_modules(backend: FakePpk2Backend) -> dict[str, types.ModuleType]:
    pkg = types.ModuleType("ppk2_api")
    mod = types.ModuleType("ppk2_api.ppk2_api")

    class PPK2_API(_FakePpk2):
        def __init__(self, port: str, **kwargs: Any) -> None:
            super().__init__(backend, port, kwargs)

        @staticmethod
        def list_devices() -> list[str]:
            return list(backend.ports)

    mod.PPK2_API = PPK2_API  # type: ignore[attr-defined]
    pkg.ppk2_api = mod  # type: ignore[attr-defined]
    return {"ppk2_api": pkg, "ppk2_api.ppk2_api": mod}


class _FakePpk2:
    def __init__(self, backend: FakePpk2Backend, port: str, kwargs: dict[str, Any]) -> None:
        if port not in backend.ports:
            raise OSError(f"[Errno 2] could not open port {port}: No such file or directory")
        self.backend = backend
        self.ser = types.SimpleNamespace(close=lambda: backend.calls.append(("ser.close", ())))
        self._t0: int | None = None
        self._done = 0
        self._pending = b""
        self.current_vdd: int | None = None
        backend.calls.append(("__init__", (port,)))

    def _call(self, name: str, *args: Any) -> None:
        self.backend.calls.append((name, args))

    def get_modifiers(self) -> bool | None:
        self._call("get_modifiers")
        return True if self.backend.modifiers_ok else None

    def use_source_meter(self) -> None:
        self._call("use_source_meter")

    def use_ampere_meter(self) -> None:
        self._call("use_ampere_meter")

    def set_source_voltage(self, mV: int) -> None:
        self._call("set_source_voltage", mV)
        self.current_vdd = mV

    def toggle_DUT_power(self, state: str) -> None:
        self._call("toggle_DUT_power", state)

    def start_measuring(self) -> None:
        if not self.current_vdd:
            raise Exception("Output voltage not set!")
        self._call("start_measuring")
        self._t0, self._done = time.monotonic_ns(), 0

    def stop_measuring(self) -> None:
        self._call("stop_measuring")
        if self._t0 is not None:
            self._pending = self.get_data()  # what was sampled up to the stop
        self._t0 = None

    def get_data(self) -> bytes:
        if self._t0 is None:
            pending, self._pending = self._pending, b""
            return pending
        upto = int((time.monotonic_ns() - self._t0) / 1e9 * RATE)
        k = np.arange(self._done, upto)
        self._done = upto
        on = self.backend.dut.state(self._t0 + (k * (1e9 / RATE)).astype(np.int64))
        out = np.empty(len(k), dtype=_DTYPE)
        out["ua"] = self.backend.dut.current(on) * 1e6
        out["bits"] = on.astype(np.uint8) << self.backend.marker_bit
        return out.tobytes()

    def get_samples(self, buf: bytes) -> tuple[list[float], list[int]]:
        arr = np.frombuffer(buf, dtype=_DTYPE)
        return arr["ua"].astype(float).tolist(), arr["bits"].astype(int).tolist()

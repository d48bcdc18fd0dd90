"""A stand-in for the `pyjoulescope_driver` module, with the same `Driver` methods and stream format.

`fake_module(backend)` returns a module object to put into `sys.modules["pyjoulescope_driver"]`; the
real `JoulescopeMeter` then runs against it unchanged. Streams are generated on a thread from a
`FakeDut`, block by block like the real driver (sample_id at twice the output rate with a decimate
factor of 2, GPI packed one bit per sample, LSB first). `drop_blocks` loses chosen blocks.
"""

from __future__ import annotations

import threading
import time
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from devices.power.fake_dut import FakeDut


@dataclass
class FakeJoulescopeBackend:
    paths: list[str] = field(default_factory=lambda: ["u/js220/000415"])
    dut: FakeDut = field(default_factory=FakeDut)
    block_s: float = 0.005
    drop_blocks: set[int] = field(default_factory=set)
    #: Topics published, in order (tests assert on configuration).
    published: list[tuple[str, Any]] = field(default_factory=list)
    open_error: str | None = None


def fake_module(backend: FakeJoulescopeBackend) -> types.ModuleType:
    mod = types.ModuleType("pyjoulescope_driver")

    class Driver(_FakeDriver):
        def __init__(self, timeout: float | None = None) -> None:
            super().__init__(backend)

    mod.Driver = Driver  # type: ignore[attr-defined]
    mod.__version__ = "0.0-fake"  # type: ignore[attr-defined]
    return mod


_SIGNALS = {"s/i/": "i", "s/v/": "v", "s/gpi/0/": "g", "s/gpi/1/": "g", "s/gpi/2/": "g", "s/gpi/3/": "g",
            "s/gpi/7/": "g"}  # fmt: skip


class _FakeDriver:
    def __init__(self, backend: FakeJoulescopeBackend) -> None:
        self.backend = backend
        self.fs = 1_000_000
        self.open_paths: set[str] = set()
        self.subs: dict[str, list[Callable[[str, Any], None]]] = {}
        self.enabled: set[str] = set()  # full ctrl prefixes, e.g. "u/js220/000415/s/i/"
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def device_paths(self, timeout: float | None = None) -> list[str]:
        return list(self.backend.paths)

    def open(self, device_prefix: str, mode: str | None = None, timeout: float | None = None) -> None:
        if self.backend.open_error:
            raise RuntimeError(self.backend.open_error)
        if device_prefix not in self.backend.paths:
            raise RuntimeError(f"device not found: {device_prefix}")
        self.open_paths.add(device_prefix)

    def close(self, device_prefix: str, timeout: float | None = None) -> None:
        self._halt()
        self.open_paths.discard(device_prefix)

    def finalize(self, timeout: float | None = None) -> None:
        self._halt()

    def publish(self, topic: str, value: Any, timeout: float | None = None) -> None:
        self.backend.published.append((topic, value))
        if topic.endswith("/h/fs"):
            self.fs = int(value)
        elif topic.endswith("ctrl"):
            prefix = topic[: -len("ctrl")]
            with self._lock:
                (self.enabled.add if int(value) else self.enabled.discard)(prefix)
            if self.enabled and self._thread is None:
                self._start()
            elif not self.enabled:
                self._halt()

    def subscribe(self, topic: str, flags: Any, fn: Callable[[str, Any], None], timeout: float | None = None) -> None:
        self.subs.setdefault(topic, []).append(fn)

    def unsubscribe(self, topic: str, fn: Callable[[str, Any], None], timeout: float | None = None) -> None:
        if fn in self.subs.get(topic, []):
            self.subs[topic].remove(fn)

    def _start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._stream, name="fake-joulescope", daemon=True)
        self._thread.start()

    def _halt(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join(timeout=5)

    def _stream(self) -> None:
        t0 = time.monotonic_ns()
        done = 0
        block = 0
        dut = self.backend.dut
        while not self._stop.wait(self.backend.block_s):
            upto = int((time.monotonic_ns() - t0) / 1e9 * self.fs)
            if upto <= done:
                continue
            k = np.arange(done, upto)
            on = dut.state(t0 + (k * (1e9 / self.fs)).astype(np.int64))
            payload = {"i": dut.current(on).astype(np.float32), "v": np.full(len(k), dut.voltage_v, np.float32),
                       "g": np.packbits(on.astype(np.uint8), bitorder="little")}  # fmt: skip
            if block not in self.backend.drop_blocks:
                with self._lock:
                    enabled = list(self.enabled)
                for prefix in enabled:
                    kind = next(v for s, v in _SIGNALS.items() if prefix.endswith(s))
                    value = {"sample_id": done * 2, "sample_rate": self.fs * 2, "decimate_factor": 2,
                             "data": payload[kind], "utc": 0, "field_id": 0, "index": 0}  # fmt: skip
                    for fn in list(self.subs.get(prefix + "!data", [])):
                        fn(prefix + "!data", value)
            done = upto
            block += 1

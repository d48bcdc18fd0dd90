"""`kind = "joulescope"`: a Joulescope JS220 (or JS110) through Jetperch's `pyjoulescope_driver`.

The driver is a publish/subscribe tree of topics under a device path such as `u/js220/001234`:
`h/fs` sets the output sample rate, `s/i/ctrl`, `s/v/ctrl` and `s/gpi/N/ctrl` switch the current,
voltage and general-purpose-input streams on, and each stream arrives on `.../!data` as blocks
`{sample_id, sample_rate, decimate_factor, data}` (sample_id counts at the device's base rate; GPI
data are packed one bit per sample, least significant bit first). We place every block by its
sample_id, so a lost block becomes a NaN gap the energy code finds, never a silent shift.

    [[meters]]
    name = "js"
    kind = "joulescope"
    device = "nucleo"
    marker_input = "gpi0"            # gpi0..gpi3, or trigger_in
    serial_number = "001234"         # optional when one Joulescope is attached
    sample_rate = 1000000
    topics = { "s/io/voltage" = "3.3V" }   # extra driver topics published after open (GPI logic level)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
from pydantic import Field

from devices.power.base import MeterIdentity, Trace
from devices.power.clock import ArrivalClock
from devices.power.errors import MeterError, MeterNotFoundError
from devices.power.registry import MeterSettings, MeterSpec
from devices.power.vendor import import_vendor, vendor_available

log = logging.getLogger(__name__)

VENDOR_MODULE = "pyjoulescope_driver"
#: Marker input name -> stream topic prefix.
GPI_TOPICS = {"gpi0": "s/gpi/0/", "gpi1": "s/gpi/1/", "gpi2": "s/gpi/2/", "gpi3": "s/gpi/3/", "trigger_in": "s/gpi/7/"}
MARKER_INPUTS = tuple(GPI_TOPICS)
CURRENT, VOLTAGE, MARKER = "current", "voltage", "marker"


class JoulescopeSettings(MeterSettings):
    serial_number: str | None = None
    model: Literal["any", "js220", "js110"] = "any"
    sample_rate: int = Field(1_000_000, gt=0)
    #: Extra topics to publish after open, relative to the device path.
    topics: dict[str, str | int | float] = Field(default_factory=dict)
    timeout_s: float = Field(2.0, gt=0)


class JoulescopeMeter:
    kind = "joulescope"
    marker_inputs = MARKER_INPUTS

    def __init__(self, name: str, settings: JoulescopeSettings) -> None:
        self.name = name
        self.settings = settings
        self._vendor: Any = None
        self._drv: Any = None
        self._path: str | None = None
        self._lock = threading.Lock()
        self._blocks: dict[str, list[tuple[int, np.ndarray]]] = {}
        self._topics: dict[str, str] = {}  # full data topic -> signal
        self._rate: float = float(settings.sample_rate)
        self._clock = ArrivalClock()
        self._marker_input: str | None = None

    # --- open/close ----------------------------------------------------------------------------

    def open(self) -> None:
        self._vendor = import_vendor(VENDOR_MODULE, meter_kind=self.kind, package="pyjoulescope_driver")
        s = self.settings
        self._drv = self._vendor.Driver()
        try:
            self._path = self._select(list(self._drv.device_paths(timeout=s.timeout_s)))
            self._drv.open(self._path, mode="defaults", timeout=s.timeout_s)
            self._configure()
        except MeterError:
            self._finalize()
            raise
        except Exception as exc:  # the vendor raises its own types; name the step and the device
            self._finalize()
            raise MeterError(self.name, "open", f"opening Joulescope {self._path or '?'} failed: {exc}.",
                             hint="Unplug and replug it; close the Joulescope UI, which holds the device.") from exc

    def _select(self, paths: list[str]) -> str:
        s = self.settings
        found = [p for p in paths if s.model == "any" or f"/{s.model}/" in p.lower()]
        if s.serial_number:
            found = [p for p in found if p.lower().rstrip("/").endswith("/" + s.serial_number.lower())]
        if not found:
            want = " ".join(x for x in ("Joulescope", s.model if s.model != "any" else "", s.serial_number or "") if x)
            raise MeterNotFoundError(
                self.name, "open", f"no {want} is connected (the driver sees: {', '.join(paths) or 'none'}).",
                hint="Check the USB cable and power; on Linux, install Jetperch's udev rules.",
            )
        if len(found) > 1:
            raise MeterError(self.name, "open", f"several Joulescopes match: {', '.join(found)}.",
                             hint="Set serial_number in [[meters]].")
        return found[0]

    def _configure(self) -> None:
        p, s = self._path, self.settings
        self._drv.publish(f"{p}/h/fs", int(s.sample_rate))
        if "/js110/" in str(p):
            self._drv.publish(f"{p}/s/i/range/select", "auto")
            self._drv.publish(f"{p}/s/v/range/select", "15 V")
        else:
            self._drv.publish(f"{p}/s/i/range/mode", "auto")
            self._drv.publish(f"{p}/s/v/range/mode", "auto")
        for topic, value in s.topics.items():
            self._drv.publish(f"{p}/{topic.lstrip('/')}", value)

    def identity(self) -> MeterIdentity:
        path = self._path or ""
        parts = path.split("/")
        model = parts[1].upper() if len(parts) > 2 else "Joulescope"
        serial = parts[2] if len(parts) > 2 else self.settings.serial_number
        version = getattr(self._vendor, "__version__", None)
        return MeterIdentity(name=self.name, kind=self.kind, model=model, serial=serial,
                             driver=f"pyjoulescope_driver {version}" if version else "pyjoulescope_driver",
                             details={"device_path": path, "sample_rate": self.settings.sample_rate})  # fmt: skip

    def close(self) -> None:
        if self._drv is not None and self._path is not None:
            try:
                self._drv.close(self._path)
            except Exception as exc:  # closing must not mask the error that led here
                log.warning("%s: closing %s failed: %s", self.name, self._path, exc)
        self._finalize()

    def _finalize(self) -> None:
        drv, self._drv = self._drv, None
        if drv is not None:
            try:
                drv.finalize()
            except Exception as exc:
                log.warning("%s: driver finalize failed: %s", self.name, exc)

    # --- streaming -----------------------------------------------------------------------------

    def start(self, marker_input: str | None = None) -> None:
        if self._drv is None or self._path is None:
            raise MeterError(self.name, "start", "the meter is not open.", hint="Call open() first.")
        if marker_input is not None and marker_input not in GPI_TOPICS:
            raise MeterError(self.name, "start", f"no input {marker_input!r}; inputs: {', '.join(MARKER_INPUTS)}.")
        self._marker_input = marker_input
        streams = {CURRENT: "s/i/", VOLTAGE: "s/v/"}
        if marker_input is not None:
            streams[MARKER] = GPI_TOPICS[marker_input]
        with self._lock:
            self._blocks = {sig: [] for sig in streams}
            self._topics = {f"{self._path}/{prefix}!data": sig for sig, prefix in streams.items()}
            self._clock = ArrivalClock()
        for topic in self._topics:
            self._drv.subscribe(topic, "pub", self._on_data)
        for prefix in streams.values():
            self._drv.publish(f"{self._path}/{prefix}ctrl", 1)

    def _on_data(self, topic: str, value: Any) -> None:
        # Runs on the driver's thread: store and return quickly; assembly happens in stop().
        sig = self._topics.get(topic)
        if sig is None or not isinstance(value, dict) or value.get("data") is None:
            return
        decimate = int(value.get("decimate_factor") or 1)
        rate = float(value["sample_rate"]) / decimate
        start = int(value["sample_id"]) // decimate
        data = np.asarray(value["data"])
        if sig == MARKER:
            data = np.unpackbits(data.astype(np.uint8, copy=False), bitorder="little")
        with self._lock:
            self._rate = rate
            self._blocks.setdefault(sig, []).append((start, data))
        if sig == CURRENT:
            self._clock.block(start + len(data), rate)

    def stop(self) -> Trace:
        if self._drv is None or self._path is None:
            raise MeterError(self.name, "stop", "the meter is not open.")
        prefixes = {t[len(self._path) + 1 : -len("!data")] for t in self._topics}
        for prefix in prefixes:
            try:
                self._drv.publish(f"{self._path}/{prefix}ctrl", 0, timeout=self.settings.timeout_s)
            except Exception as exc:
                log.warning("%s: stopping stream %s failed: %s", self.name, prefix, exc)
        for topic in self._topics:
            self._drv.unsubscribe(topic, self._on_data)
        with self._lock:
            blocks, self._blocks = self._blocks, {}
            rate = self._rate
        return self._assemble(blocks, rate)

    def _assemble(self, blocks: dict[str, list[tuple[int, np.ndarray]]], rate: float) -> Trace:
        empty = [sig for sig, b in blocks.items() if not b]
        if empty:
            raise MeterError(self.name, "stop", f"no {empty[0]} samples arrived while streaming.",
                             hint="Check the USB link; another program may hold the Joulescope.")
        lo = max(min(s for s, _ in b) for b in blocks.values())
        hi = min(max(s + len(d) for s, d in b) for sig, b in blocks.items() if sig != MARKER)
        if hi - lo < 2:
            raise MeterError(self.name, "stop", "the current and voltage streams do not overlap.")
        n = hi - lo
        arrays: dict[str, np.ndarray] = {}
        for sig in (CURRENT, VOLTAGE):
            out = np.full(n, np.nan, dtype=np.float32)
            for start, data in blocks[sig]:
                a, b = max(start, lo), min(start + len(data), hi)
                if a < b:
                    out[a - lo : b - lo] = data[a - start : b - start]
            arrays[sig] = out
        marker = None
        if MARKER in blocks:
            marker = np.zeros(n, dtype=np.uint8)
            seen = np.zeros(n, dtype=bool)
            for start, data in blocks[MARKER]:
                a, b = max(start, lo), min(start + len(data), hi)
                if a < b:
                    marker[a - lo : b - lo] = data[a - start : b - start]
                    seen[a - lo : b - lo] = True
            if not seen.all():
                # Hold the last seen level across a lost GPI block; the I/V gap there is counted anyway.
                idx = np.where(seen, np.arange(n), 0)
                np.maximum.accumulate(idx, out=idx)
                marker = marker[idx]
        t0_ns, unc = self._clock.align(lo, rate)
        return Trace(time=np.arange(n, dtype=np.float64) / rate, current=arrays[CURRENT], voltage=arrays[VOLTAGE],
                     sample_rate=rate, meter=self.identity(), marker=marker, marker_input=self._marker_input,
                     host_t0_ns=t0_ns, host_clock_uncertainty_s=unc)  # fmt: skip


def _create(name: str, settings: JoulescopeSettings, resources: Mapping[str, Any]) -> JoulescopeMeter:
    return JoulescopeMeter(name, settings)


METER = MeterSpec(
    kind="joulescope",
    summary="Joulescope JS220/JS110 via pyjoulescope_driver: current, voltage, GPI marker.",
    settings=JoulescopeSettings,
    create=_create,
    unavailable_reason=lambda: vendor_available(VENDOR_MODULE),
    marker_inputs=lambda s: MARKER_INPUTS,
)

"""`kind = "ppk2"`: Nordic's Power Profiler Kit II through the `ppk2-api` package.

The PPK2 streams 100 kHz samples of current over USB serial; each sample also carries the levels
of its eight logic inputs D0-D7, so the marker is sampled on the same clock as the current. In
source-meter mode the PPK2 powers the device at `voltage_mv`; in ampere-meter mode it sits in series
with the device's own supply, whose voltage must be given (`voltage_mv`). Either way the voltage is
a set value, not a measurement, and results say so.

`ppk2-api` decodes samples in Python (`get_samples`, with the vendor's calibration and spike
filter); we call it from a reader thread as data arrive so stop() stays quick.

    [[meters]]
    name = "ppk"
    kind = "ppk2"
    device = "nrf52"
    marker_input = "d0"
    mode = "source"          # or "ampere"
    voltage_mv = 3300
    port = "/dev/serial/by-id/usb-Nordic_Semiconductor_PPK2_..."   # optional with one PPK2 attached
"""

from __future__ import annotations

import logging
import threading
import time
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

VENDOR_MODULE = "ppk2_api.ppk2_api"
SAMPLE_RATE = 100_000.0
MARKER_INPUTS = tuple(f"d{k}" for k in range(8))


class Ppk2Settings(MeterSettings):
    port: str | None = None
    mode: Literal["source", "ampere"] = "source"
    voltage_mv: int = Field(3300, ge=800, le=5000)
    #: Source mode: switch the device's supply on at open (and off at close).
    power_dut: bool = True
    poll_s: float = Field(0.01, gt=0, le=0.5)


class Ppk2Meter:
    kind = "ppk2"
    marker_inputs = MARKER_INPUTS

    def __init__(self, name: str, settings: Ppk2Settings) -> None:
        self.name = name
        self.settings = settings
        self._vendor: Any = None
        self._ppk: Any = None
        self._port: str | None = None
        self._thread: threading.Thread | None = None
        self._halt = threading.Event()
        self._current: list[np.ndarray] = []
        self._bits: list[np.ndarray] = []
        self._count = 0
        self._clock = ArrivalClock()
        self._marker: str | None = None
        self._started_ns = 0
        self._error: BaseException | None = None

    def open(self) -> None:
        self._vendor = import_vendor(VENDOR_MODULE, meter_kind=self.kind, package="ppk2-api")
        api = self._vendor.PPK2_API
        s = self.settings
        port = s.port
        if port is None:
            ports = list(api.list_devices())
            if not ports:
                raise MeterNotFoundError(self.name, "open", "no PPK2 is connected (no serial port reports product "
                                         "'PPK2').", hint="Check the USB cable (the PPK2 has two USB ports: use the "
                                         "one marked DATA/POWER) and that the kit is switched on.")  # fmt: skip
            if len(ports) > 1:
                raise MeterError(self.name, "open", f"several PPK2s are connected: {', '.join(ports)}.",
                                 hint="Set port in [[meters]].")
            port = ports[0]
        try:
            self._ppk = api(port, timeout=1, write_timeout=1, exclusive=True)
        except Exception as exc:  # pyserial's SerialException, or the port vanished
            raise MeterNotFoundError(self.name, "open", f"cannot open PPK2 port {port!r}: {exc}.",
                                     hint="Is another program (nRF Connect Power Profiler) using it?") from None
        self._port = port
        try:
            if not self._ppk.get_modifiers():
                raise MeterError(self.name, "open", f"{port!r} did not send PPK2 calibration data.",
                                 hint="Is this port really a PPK2? Replug it and retry.")
            if s.mode == "source":
                self._ppk.use_source_meter()
            else:
                self._ppk.use_ampere_meter()
            # The API needs the voltage in both modes (its calibration uses it).
            self._ppk.set_source_voltage(s.voltage_mv)
            if s.mode == "source" and s.power_dut:
                self._ppk.toggle_DUT_power("ON")
        except BaseException:
            self._release()
            raise

    def identity(self) -> MeterIdentity:
        version = None
        try:
            from importlib.metadata import version as dist_version

            version = dist_version("ppk2-api")
        except Exception:  # a fake module has no distribution
            version = getattr(self._vendor, "__version__", None)
        return MeterIdentity(name=self.name, kind=self.kind, model="Nordic PPK2", serial=self._port,
                             driver=f"ppk2-api {version}" if version else "ppk2-api",
                             details={"mode": self.settings.mode, "voltage_mv": self.settings.voltage_mv})  # fmt: skip

    def start(self, marker_input: str | None = None) -> None:
        if self._ppk is None:
            raise MeterError(self.name, "start", "the meter is not open.", hint="Call open() first.")
        if marker_input is not None and marker_input not in MARKER_INPUTS:
            raise MeterError(self.name, "start", f"no input {marker_input!r}; inputs: {', '.join(MARKER_INPUTS)}.")
        self._marker = marker_input
        self._current, self._bits, self._count = [], [], 0
        self._clock = ArrivalClock()
        self._error = None
        self._halt.clear()
        self._ppk.start_measuring()
        self._started_ns = time.monotonic_ns()
        self._thread = threading.Thread(target=self._read_loop, name=f"ppk2-{self.name}", daemon=True)
        self._thread.start()

    def _read_loop(self) -> None:
        try:
            while not self._halt.wait(self.settings.poll_s):
                self._read_once()
        except BaseException as exc:  # surfaced by stop(); a reader thread must not die silently
            self._error = exc

    def _read_once(self) -> None:
        buf = self._ppk.get_data()
        if not buf:
            return
        arrived = time.monotonic_ns()
        samples, bits = self._ppk.get_samples(buf)
        n = min(len(samples), len(bits))  # the API skips a sample it cannot range in both lists
        if n:
            self._current.append(np.asarray(samples[:n], dtype=np.float64))
            self._bits.append(np.asarray(bits[:n], dtype=np.uint8))
            self._count += n
            self._clock.block(self._count, SAMPLE_RATE, arrived)

    def stop(self) -> Trace:
        if self._ppk is None or self._thread is None:
            raise MeterError(self.name, "stop", "the meter is not streaming.", hint="Call start() first.")
        self._halt.set()
        self._thread.join(timeout=10)
        self._thread = None
        elapsed_s = (time.monotonic_ns() - self._started_ns) / 1e9
        self._ppk.stop_measuring()
        if self._error is not None:
            raise MeterError(self.name, "stream", f"reading the PPK2 failed: {self._error}.") from self._error
        self._read_once()  # what arrived before the stop took effect
        if self._count < 2:
            raise MeterError(self.name, "stop", "no samples arrived while streaming.",
                             hint="Check the USB link and that the PPK2 is in the selected mode.")
        current = np.concatenate(self._current) * 1e-6  # the API reports µA
        bits = np.concatenate(self._bits)
        n = len(current)
        marker = None
        if self._marker is not None:
            marker = (bits >> int(self._marker[1:])) & 1
        s = self.settings
        notes = [f"voltage is the {'source' if s.mode == 'source' else 'configured supply'} setting "
                 f"{s.voltage_mv} mV, not measured"]  # fmt: skip
        expected = elapsed_s * SAMPLE_RATE
        if n < 0.98 * expected:
            notes.append(f"received {n} samples in {elapsed_s:.3f} s, {n / expected:.1%} of the nominal 100 kHz: "
                         "the PPK2 stream has no sample counter, so losses cannot be placed")  # fmt: skip
        t0_ns, unc = self._clock.align(0, SAMPLE_RATE)
        return Trace(time=np.arange(n, dtype=np.float64) / SAMPLE_RATE, current=current,
                     voltage=np.full(n, s.voltage_mv / 1000.0), sample_rate=SAMPLE_RATE, meter=self.identity(),
                     marker=marker, marker_input=self._marker, host_t0_ns=t0_ns, host_clock_uncertainty_s=unc,
                     voltage_measured=False, notes=tuple(notes))  # fmt: skip

    def close(self) -> None:
        if self._thread is not None:
            self._halt.set()
            self._thread.join(timeout=10)
            self._thread = None
        self._release()

    def _release(self) -> None:
        ppk, self._ppk = self._ppk, None
        if ppk is None:
            return
        try:
            ppk.stop_measuring()
            if self.settings.mode == "source" and self.settings.power_dut:
                ppk.toggle_DUT_power("OFF")
        except Exception as exc:  # releasing must not mask the error that led here
            log.warning("%s: releasing the PPK2 failed: %s", self.name, exc)
        ser = getattr(ppk, "ser", None)
        if ser is not None:
            try:
                ser.close()
            except Exception as exc:
                log.warning("%s: closing %s failed: %s", self.name, self._port, exc)


def _create(name: str, settings: Ppk2Settings, resources: Mapping[str, Any]) -> Ppk2Meter:
    return Ppk2Meter(name, settings)


METER = MeterSpec(
    kind="ppk2",
    summary="Nordic PPK2 via ppk2-api: current at 100 kHz, logic inputs D0-D7 for the marker.",
    settings=Ppk2Settings,
    create=_create,
    unavailable_reason=lambda: vendor_available(VENDOR_MODULE),
    marker_inputs=lambda s: MARKER_INPUTS,
)

"""`kind = "ina2xx"`: an INA219/INA226/INA260-class sensor read through Linux hwmon (the `ina2xx` driver).

The sensor usually sits on a Raspberry Pi's I²C bus in series with the measured device's supply.
The kernel exposes `curr1_input` (mA), `in1_input` (bus voltage, mV) and `power1_input` (µW) under
`/sys/class/hwmon/hwmonN/`. A small sampler (ina2xx_sampler.py) runs beside the sensor through a
`RemoteReader` — locally, or over the SSH device's connection — re-reading those files as fast as
I²C allows, optionally with a Pi GPIO wired to the device's marker pin, until told to stop.

Limits, said plainly: hwmon reports integers (1 mA, 1 mV steps), the sensor converts every
`update_interval` ms, and polling gives irregular sample times (≈1 kHz at best). That suits boards
drawing tens of mA or more and windows of seconds; for µA-level MCUs use a Joulescope or PPK2.

    [[meters]]
    name = "ina"
    kind = "ina2xx"
    device = "pi4"            # the measured device
    via = "device"            # read through a device's SSH connection (resources["reader"]); or "local"
    marker_gpios = [17]       # Pi GPIOs wired to a marker pin; marker_input = "gpio17"
    marker_input = "gpio17"
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from benchcore.errors import ConfigError
from devices.power import ina2xx_sampler
from devices.power.base import MeterIdentity, Trace
from devices.power.errors import MeterError, MeterNotFoundError
from devices.power.registry import MeterSettings, MeterSpec
from devices.power.remote import LocalReader, RemoteReader

log = logging.getLogger(__name__)

CHIPS = ("ina219", "ina220", "ina226", "ina230", "ina231", "ina260")


class Ina2xxSettings(MeterSettings):
    via: Literal["local", "device"] = "local"
    #: The hwmon directory (e.g. /sys/class/hwmon/hwmon2), or "auto": the first whose `name` is a chip below.
    hwmon: str = "auto"
    hwmon_root: str = "/sys/class/hwmon"
    chips: list[str] = Field(default_factory=lambda: list(CHIPS))
    current_file: str = "curr1_input"
    current_scale: float = 1e-3  # A per unit read
    voltage_file: str = "in1_input"
    voltage_scale: float = 1e-3  # V per unit read
    marker_gpios: list[int] = Field(default_factory=list)
    gpio_root: str = "/sys/class/gpio"
    python: str = "python3"
    interval_s: float = Field(0.0, ge=0)
    #: The sampler stops by itself after this long, should the host vanish.
    max_window_s: float = Field(300.0, gt=0)
    temp_dir: str = "/tmp"
    startup_timeout_s: float = Field(10.0, gt=0)


def _marker_inputs(s: Ina2xxSettings) -> tuple[str, ...]:
    return tuple(f"gpio{n}" for n in s.marker_gpios)


class Ina2xxMeter:
    kind = "ina2xx"

    def __init__(self, name: str, settings: Ina2xxSettings, reader: RemoteReader | None = None) -> None:
        self.name = name
        self.settings = settings
        self.marker_inputs = _marker_inputs(settings)
        self.reader = reader
        self._dir: str | None = None
        self._chip = "?"
        self._thread: threading.Thread | None = None
        self._output: str | None = None
        self._error: BaseException | None = None
        self._paths: tuple[str, str] | None = None
        self._marker: str | None = None

    def open(self) -> None:
        if self.reader is None:
            raise MeterError(self.name, "open", "no remote reader: this meter reads its sensor through a device "
                             "(via = \"device\") and none was given.", hint="Pass resources={'reader': ...} "
                             "built from the SSH device's connection, or set via = \"local\".")  # fmt: skip
        s = self.settings
        if s.hwmon != "auto":
            self._dir = s.hwmon
            try:
                self._chip = self.reader.read_file(f"{s.hwmon}/name").strip()
            except OSError as exc:
                raise MeterNotFoundError(
                    self.name, "open", f"hwmon directory {s.hwmon!r} has no readable name ({exc}).",
                    hint="ls /sys/class/hwmon/*/name on the board.",
                ) from None
        else:
            self._dir, self._chip = self._discover()
        for f in (s.current_file, s.voltage_file):
            try:
                int(self.reader.read_file(f"{self._dir}/{f}").strip())
            except (OSError, ValueError) as exc:
                raise MeterNotFoundError(self.name, "open", f"{self._dir}/{f} is not readable as a number ({exc}).",
                                         hint="Is the ina2xx driver bound (dtoverlay / new_device)?") from None

    def _discover(self) -> tuple[str, str]:
        s, reader = self.settings, self.reader
        assert reader is not None
        script = f'for d in "{s.hwmon_root}"/hwmon*; do [ -r "$d/name" ] && echo "$d $(cat "$d/name")"; done; true'
        try:
            listing = reader.run(["sh", "-c", script], timeout=10)
        except Exception as exc:
            raise MeterNotFoundError(self.name, "open", f"listing {s.hwmon_root} failed: {exc}.") from None
        seen = [line.split(maxsplit=1) for line in listing.splitlines() if line.strip()]
        for entry in seen:
            if len(entry) == 2 and entry[1].strip() in s.chips:
                return entry[0], entry[1].strip()
        names = ", ".join(f"{Path(d).name}={n}" for d, n in (e for e in seen if len(e) == 2)) or "none"
        raise MeterNotFoundError(self.name, "open", f"no INA2xx sensor under {s.hwmon_root} (found: {names}).",
                                 hint="Enable it, e.g. `dtoverlay=i2c-sensor,ina226` or echo ina226 0x40 > "
                                 "/sys/bus/i2c/devices/i2c-1/new_device; check i2cdetect -y 1.")  # fmt: skip

    def identity(self) -> MeterIdentity:
        return MeterIdentity(name=self.name, kind=self.kind, model=self._chip.upper(), serial=self._dir,
                             driver="linux hwmon ina2xx",
                             details={"reader": getattr(self.reader, "description", type(self.reader).__name__),
                                      "current_file": self.settings.current_file,
                                      "voltage_file": self.settings.voltage_file})  # fmt: skip

    def start(self, marker_input: str | None = None) -> None:
        if self._dir is None or self.reader is None:
            raise MeterError(self.name, "start", "the meter is not open.", hint="Call open() first.")
        if marker_input is not None and marker_input not in self.marker_inputs:
            raise MeterError(self.name, "start", f"no input {marker_input!r}; wired GPIOs: "
                             f"{', '.join(self.marker_inputs) or 'none (set marker_gpios)'}.")  # fmt: skip
        s = self.settings
        self._marker = marker_input
        tag = f"{s.temp_dir}/bench-ina-{uuid.uuid4().hex[:12]}"
        ready, stop = f"{tag}.ready", f"{tag}.stop"
        self._paths = (ready, stop)
        argv = [s.python, "-c", Path(ina2xx_sampler.__file__).read_text(), self._dir, s.current_file, s.voltage_file,
                ready, stop, str(s.max_window_s), str(s.interval_s)]  # fmt: skip
        if marker_input is not None:
            argv.append(f"{s.gpio_root}/gpio{marker_input[4:]}/value")
        self._output, self._error = None, None
        self._thread = threading.Thread(target=self._sample, args=(argv,), name=f"ina2xx-{self.name}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + s.startup_timeout_s
        while time.monotonic() < deadline:
            if self._error is not None:
                raise MeterError(self.name, "start", f"the sampler failed: {self._error}.") from self._error
            try:
                self.reader.read_file(ready)
                return
            except Exception:  # not there yet (any reader's "missing file" error)
                time.sleep(0.01)
        raise MeterError(self.name, "start", f"the sampler did not start within {s.startup_timeout_s:g} s.",
                         hint=f"Run `{s.python} -V` on the board; is Python 3 installed?")

    def _sample(self, argv: list[str]) -> None:
        assert self.reader is not None
        try:
            self._output = self.reader.run(argv, timeout=self.settings.max_window_s + 60)
        except BaseException as exc:  # surfaced by start()/stop()
            self._error = exc

    def stop(self) -> Trace:
        if self._thread is None or self._paths is None or self.reader is None:
            raise MeterError(self.name, "stop", "the meter is not sampling.", hint="Call start() first.")
        ready, stop = self._paths
        before = time.monotonic_ns()
        self.reader.write_file(stop, "")
        after = time.monotonic_ns()
        self._thread.join(timeout=60)
        self._thread = None
        try:
            self.reader.run(["rm", "-f", ready, stop], timeout=30)
        except Exception as exc:
            log.warning("%s: removing %s failed: %s", self.name, stop, exc)
        if self._error is not None or self._output is None:
            raise MeterError(self.name, "stop", f"the sampler failed: {self._error}.") from self._error
        return self._parse(self._output, before, after)

    def _parse(self, text: str, touch_before: int, touch_after: int) -> Trace:
        lines = text.splitlines()
        stop_line = next((ln for ln in reversed(lines) if ln.startswith("# stop")), None)
        rows = [ln for ln in lines if ln and not ln.startswith("#")]
        if stop_line is None or len(rows) < 2:
            raise MeterError(self.name, "stop", f"the sampler returned {len(rows)} samples.",
                             hint="Check that the hwmon files are readable by the SSH user.")
        _, _, stop_ns, reason = stop_line.split()
        if reason != "stopfile":
            raise MeterError(self.name, "stop", f"the sampler stopped by itself after max_window_s="
                             f"{self.settings.max_window_s:g} s, before the host's stop.",
                             hint="Raise max_window_s.")  # fmt: skip
        data = np.array([r.split() for r in rows], dtype=np.float64)
        ts = data[:, 0].astype(np.int64)
        s = self.settings
        current, voltage = data[:, 1] * s.current_scale, data[:, 2] * s.voltage_scale
        marker = None
        if self._marker is not None:
            raw = data[:, 3]
            # A failed GPIO read holds the previous level (the I/V read of that sample still counts).
            idx = np.where(np.isnan(raw), 0, np.arange(len(raw)))
            np.maximum.accumulate(idx, out=idx)
            marker = np.nan_to_num(raw[idx]).astype(np.uint8)
        if getattr(self.reader, "same_clock", False):
            t0, unc = int(ts[0]), 1e-4
        else:
            # The stop file appeared, on the host's clock, during the write call (a round trip, no remote
            # shell); on the board's, between the sampler's last check that missed it (just after the
            # next-to-last sample) and the check that saw it (just before `stop`). Align the middles; the
            # two half-widths bound the error. A sampler descheduled on a busy board widens its interval,
            # so the stated uncertainty grows with the load instead of the figure drifting silently.
            seen_after = int(ts[-2]) if len(ts) > 1 else int(ts[-1])
            board_mid = (seen_after + int(stop_ns)) // 2
            offset = board_mid - (touch_before + touch_after) // 2
            t0 = int(ts[0]) - offset
            unc = ((touch_after - touch_before) + (int(stop_ns) - seen_after)) / 2e9
            log.debug("%s: board clock offset %.3f ms (stop seen within %.3f ms, write took %.3f ms)",
                      self.name, offset / 1e6, (int(stop_ns) - seen_after) / 1e6, (touch_after - touch_before) / 1e6)
        span = (ts[-1] - ts[0]) / 1e9
        rate = (len(ts) - 1) / span if span > 0 else 1.0
        unc = max(unc, 1.0 / rate)
        return Trace(time=(ts - ts[0]) / 1e9, current=current, voltage=voltage, sample_rate=rate, meter=self.identity(),
                     marker=marker, marker_input=self._marker, host_t0_ns=t0, host_clock_uncertainty_s=unc,
                     regular_sampling=False,
                     notes=(f"polled hwmon at {rate:.0f} Sa/s mean; integer mA/mV resolution",))  # fmt: skip

    def close(self) -> None:
        if self._thread is not None and self._paths is not None and self.reader is not None:
            try:
                self.reader.write_file(self._paths[1], "")
                self._thread.join(timeout=60)
                self.reader.run(["rm", "-f", *self._paths], timeout=30)
            except Exception as exc:
                log.warning("%s: stopping the sampler failed: %s", self.name, exc)
        self._thread = None
        self._dir = None


def _create(name: str, settings: Ina2xxSettings, resources: Mapping[str, Any]) -> Ina2xxMeter:
    reader = resources.get("reader")
    if reader is None and settings.via == "local":
        reader = LocalReader()
    if reader is None:
        raise ConfigError(
            f"power meter {name!r} (ina2xx) reads through a device (via = \"device\") but was given no reader.",
            hint="The sweep passes resources={'reader': ...} from the SSH device.",
        )
    return Ina2xxMeter(name, settings, reader)


METER = MeterSpec(
    kind="ina2xx",
    summary="INA219/INA226/INA260 via Linux hwmon, locally or through an SSH device; optional GPIO marker.",
    settings=Ina2xxSettings,
    create=_create,
    marker_inputs=_marker_inputs,
)

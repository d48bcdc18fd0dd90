"""Errors of the power-meter layer.

Measuring failures are `DeviceError`s so the sweep stores them against the cell and goes on; a
missing package or an unknown meter kind is a `ConfigError` because every cell would fail alike.
Each names the meter, the step and what to do next.
"""

from __future__ import annotations

from benchcore.errors import BenchError, ConfigError, DeviceError


class MeterError(DeviceError):
    """A power meter failed at a named step."""

    def __init__(self, meter: str, step: str, message: str, *, hint: str | None = None) -> None:
        BenchError.__init__(self, f"power meter {meter!r}, {step}: {message}", hint=hint)
        self.device = meter
        self.meter = meter
        self.step = step


class MeterNotFoundError(MeterError):
    """The instrument is not connected, not powered, or not the one configured."""


class MarkerError(MeterError):
    """The timed-window marker was not seen as expected (never toggled, stuck, cut off)."""


class WindowTooShortError(MeterError):
    """A measured window is shorter than the configured minimum."""


class DroppedSamplesError(MeterError):
    """The trace lost more samples than may be interpolated."""


class MissingExtraError(ConfigError):
    """A meter's vendor package is not installed."""


class UnknownMeterKindError(ConfigError):
    """A `kind` in [[meters]] has no registered meter."""

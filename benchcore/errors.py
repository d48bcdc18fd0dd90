"""Error types shared by the harness and the drivers.

Every error a user can cause carries what went wrong, where (file, key, device, step) and what to do
next. Which exit code each kind means is the CLI's business (harness.errors), not the error's.
"""

from __future__ import annotations


class BenchError(Exception):
    """Base of every error bench reports to a user."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}" if self.hint else self.message


class ConfigError(BenchError):
    """bench.toml (or a flag standing in for it) is wrong."""


class ModelError(BenchError):
    """A model file or manifest is missing, unreadable or not what it claims to be."""


class DatasetError(BenchError):
    """A labelled dataset (.npz) is missing keys or does not fit the model."""


class StoreError(BenchError):
    """The results store cannot be opened, written or does not hold what was asked for."""


class DeviceError(BenchError):
    """A device failed at a named step; the sweep records it against the cell and goes on."""

    def __init__(self, device: str, step: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(f"device {device!r}, {step}: {message}", hint=hint)
        self.device = device
        self.step = step


class DeviceBusyError(DeviceError):
    """Another process holds the device (for example a serial port locked by a second bench)."""


class DeviceTimeoutError(DeviceError):
    """The device did not answer in time; the message names what was awaited and the bytes seen."""


class UnknownDeviceKindError(ConfigError):
    """A `kind` in bench.toml has no registered driver."""

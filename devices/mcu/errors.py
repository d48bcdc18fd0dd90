"""Errors of the MCU link, each a `DeviceError` naming the device, the step and what to do next."""

from __future__ import annotations

from benchcore.errors import DeviceError


class ProtocolError(DeviceError):
    """The device answered with an error status; `status` is the protocol's code name."""

    def __init__(self, device: str, step: str, message: str, *, status: str, hint: str | None = None) -> None:
        super().__init__(device, step, message, hint=hint)
        self.status = status


class DeviceResetError(DeviceError):
    """A HELLO banner arrived while a request was outstanding: the device rebooted and lost its model."""


class VersionMismatchError(ProtocolError):
    """Host and device share no protocol version."""


class ModelTooLargeError(ProtocolError):
    """The model exceeds the device's `max_model_size`."""


class ArenaTooSmallError(ProtocolError):
    """The tensor arena cannot hold the model; `required` is the bytes the device says it needs."""

    def __init__(self, device: str, step: str, message: str, *, required: int, capacity: int) -> None:
        super().__init__(device, step, message, status="E_ARENA_TOO_SMALL",
                         hint="Use a board with more RAM, a smaller model, or a larger arena in the firmware.")
        self.required = required
        self.capacity = capacity


class UnsupportedOpError(ProtocolError):
    """The firmware's op resolver lacks an operator the model uses; `op` is its name."""

    def __init__(self, device: str, step: str, message: str, *, op: str) -> None:
        super().__init__(device, step, message, status="E_UNSUPPORTED_OP",
                         hint=f"Add {op} to the firmware's op resolver, or use a model without it.")
        self.op = op

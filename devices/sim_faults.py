"""Faults the simulated MCU injects on demand, as settings (bench.toml `[devices.X.faults]`)."""

from __future__ import annotations

from pydantic import Field

from devices.registry import DeviceSettings


class SimFaults(DeviceSettings):
    #: Probability that any byte on the link (either direction) is bit-flipped / dropped.
    corrupt_rate: float = Field(0.0, ge=0.0, le=0.5)
    drop_rate: float = Field(0.0, ge=0.0, le=0.5)
    #: The first N uploads are cut by a device reset halfway through (banner sent, model forgotten).
    reset_during_upload: int = Field(0, ge=0)
    #: The first N INVOKEs reset the device instead of answering.
    reset_during_invoke: int = Field(0, ge=0)
    #: Stop answering (keep reading) after this many requests were answered.
    silent_after: int | None = Field(None, ge=0)
    #: Shrink the tensor arena to this many bytes.
    arena_bytes: int | None = Field(None, ge=0)
    #: Refuse models larger than this (default: the profile's flash budget).
    max_model_bytes: int | None = Field(None, ge=1)
    #: Builtin op names the firmware's resolver has (None: all TFLM supports).
    supported_ops: list[str] | None = None
    #: Protocol versions the device speaks, [min, max].
    versions: tuple[int, int] | None = None

"""One cell of a sweep: a model variant measured once on one device.

`measure_cell` takes an open device and plain, picklable inputs and returns a typed `Measurement`
(benchcore.record), so the same function can run in a lane thread here or on a worker of a
distributed engine; the failure paths build the same record.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from benchcore.record import Measurement, utcnow
from devices.base import Device, ModelBinary, RunSpec
from devices.power import PowerMeter, device_window, measure_energy
from harness.errors import BenchError
from harness.models.variant import ModelVariant
from harness.stats import summarize_ns

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cell:
    device: str
    variant: ModelVariant
    repeat: int

    @property
    def key(self) -> str:
        return f"{self.device}|{self.variant.name}|{self.variant.sha256[:12]}|r{self.repeat}"


@dataclass(frozen=True)
class CellInputs:
    """What every cell of one variant needs, prepared once per sweep."""

    model: ModelBinary
    timing_input: np.ndarray
    samples: np.ndarray | None = None
    labels: np.ndarray | None = None
    #: The TFLM runtime's outputs for `samples`: the reference for output agreement.
    reference_outputs: np.ndarray | None = None


@dataclass(frozen=True)
class Timing:
    warmup: int
    iterations: int
    min_seconds: float = 0.0


@dataclass(frozen=True)
class EnergyPlan:
    """An open power meter on the cell's device, and how to cut its windows."""

    meter: PowerMeter
    marker_input: str | None
    windows: int
    min_window_s: float
    idle_s: float


def measure_cell(device: Device, cell: Cell, inputs: CellInputs, timing: Timing,
                 energy: EnergyPlan | None = None) -> Measurement:
    """Deploy, run, and measure energy when a meter is attached; a failure at any step becomes a
    failed record with its reason (keeping whatever was already measured), never an exception."""
    base = Measurement(cell_key=cell.key, device_name=cell.device, variant_sha256=cell.variant.sha256,
                       variant_name=cell.variant.name, repeat=cell.repeat, status="failed", started_at=utcnow(),
                       finished_at="", warmup=timing.warmup, metrics={"model_bytes": len(inputs.model.data)})
    spec = RunSpec(warmup=timing.warmup, iterations=timing.iterations, min_seconds=timing.min_seconds,
                   timing_input=inputs.timing_input, samples=inputs.samples)
    try:
        deployment = device.deploy(inputs.model)
        result = device.run(spec)
    except Exception as exc:
        return _failed(base, cell, exc)

    details = {**deployment.details, **{k: v for k, v in result.details.items() if k != "iteration_cap"},
               **({"ram_noise_bytes": deployment.ram_noise_bytes} if deployment.ram_noise_bytes else {}),
               "iterations": _iterations(timing, len(result.latency_ns), result.details)}
    record = replace(
        base,
        status="ok",
        finished_at=utcnow(),
        latency_ns=tuple(float(x) for x in result.latency_ns),
        estimated=result.source == "estimated",
        latency_source=result.source,
        timing_method=result.timing_method,
        op_profile=result.op_profile,
        histogram=result.histogram,
        thermal=result.thermal,
        details=details or None,
        metrics={**base.metrics, **summarize_ns(result.latency_ns).as_dict(),
                 "load_time_ms": deployment.load_time_ms, "ram_bytes": deployment.ram_bytes,
                 "arena_bytes": deployment.arena_bytes, "energy_uj": result.energy_uj,
                 **_accuracy(result.outputs, inputs)},
    )
    if energy is not None:
        try:
            figure = measure_energy(energy.meter, device_window(device, spec, min_window_s=energy.min_window_s),
                                    windows=energy.windows, min_window_s=energy.min_window_s,
                                    marker_input=energy.marker_input, idle_s=energy.idle_s)
        except Exception as exc:
            return _failed(record, cell, exc, step="energy")
        record = replace(record.with_metrics(energy_uj=figure.energy_uj),
                         estimated=record.estimated or figure.estimated,
                         details={**(record.details or {}), "energy": figure.as_dict()}, finished_at=utcnow())
    return record


def _failed(record: Measurement, cell: Cell, exc: Exception, step: str | None = None) -> Measurement:
    if isinstance(exc, BenchError):
        log.warning("cell %s failed: %s", cell.key, exc)
        error = str(exc)
    else:  # a driver bug must not end the sweep: record it against the cell
        log.error("cell %s raised:\n%s", cell.key, traceback.format_exc())
        error = f"{type(exc).__name__}: {exc} (unexpected; see the log)"
    if step:
        error = f"{step}: {error}"
    return record.failed(error, utcnow())


def failed_record(cell: Cell, inputs: CellInputs, timing: Timing, error: str) -> Measurement:
    """The record of a cell that never ran (its device did not open): built like any other."""
    now = utcnow()
    return Measurement(cell_key=cell.key, device_name=cell.device, variant_sha256=cell.variant.sha256,
                       variant_name=cell.variant.name, repeat=cell.repeat, status="failed", error=error,
                       started_at=now, finished_at=now, warmup=timing.warmup,
                       metrics={"model_bytes": len(inputs.model.data)})


def _iterations(timing: Timing, performed: int, details: dict[str, Any]) -> dict[str, Any]:
    """Timed inferences asked for and run; a driver that runs fewer says why in `iteration_cap`
    ({cap, reason}), so `n` is never silently smaller than what the user typed."""
    cap = details.get("iteration_cap") if isinstance(details.get("iteration_cap"), dict) else {}
    return {"requested": timing.iterations, "performed": int(performed), **cap}


def _accuracy(outputs: np.ndarray | None, inputs: CellInputs) -> dict[str, Any]:
    if outputs is None or inputs.labels is None:
        return {}
    outputs = np.asarray(outputs).reshape(len(inputs.labels), -1)
    fields: dict[str, Any] = {
        "accuracy": float(np.mean(outputs.argmax(axis=1) == inputs.labels)),
        "accuracy_n": len(inputs.labels),
    }
    if inputs.reference_outputs is not None:
        ref = inputs.reference_outputs.reshape(outputs.shape)
        diff = np.abs(outputs.astype(np.int64) - ref.astype(np.int64))
        fields["output_agreement"] = float(np.mean(diff.max(axis=1) == 0))
        fields["output_max_lsb"] = int(diff.max())
    return fields

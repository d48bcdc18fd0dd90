"""`kind = "local"`: the host CPU, running the model with LiteRT.

Latency is perf_counter_ns around `Interpreter.invoke()` and nothing else, so the harness adds
no overhead to the figure (benchmarks/harness_overhead.py checks that).
"""

from __future__ import annotations

import contextlib
import time
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Literal

import numpy as np
from pydantic import Field

from benchcore.errors import DeviceError
from devices import hostinfo
from devices.base import Deployment, DeviceInfo, ModelBinary, RunResult, RunSpec
from devices.local_memory import RSS_NOISE_BYTES, fresh_process_peak_growth
from devices.registry import DeviceSettings, DriverSpec

Kernels = Literal["default", "builtin", "reference"]


class LocalSettings(DeviceSettings):
    threads: int = Field(default=1, ge=1, le=256)
    #: default: LiteRT's choice (XNNPACK); builtin: built-in kernels without delegates; reference: reference kernels.
    kernels: Kernels = "default"


def _resolver(kernels: Kernels) -> Any:
    from ai_edge_litert.interpreter import OpResolverType

    return {
        "default": OpResolverType.AUTO,
        "builtin": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        "reference": OpResolverType.BUILTIN_REF,
    }[kernels]


def _litert_version() -> str:
    try:
        return version("ai-edge-litert")
    except PackageNotFoundError:
        return "unknown"


class LocalDevice:
    kind = "local"

    def __init__(self, name: str, settings: LocalSettings) -> None:
        self.name = name
        self.settings = settings
        self._interpreter: Any = None
        self._model: ModelBinary | None = None
        self._peak_ram: dict[str, int | None] = {}

    def open(self) -> None:
        try:
            import ai_edge_litert.interpreter  # noqa: F401
        except ImportError as exc:
            raise DeviceError(self.name, "open", f"LiteRT is not importable ({exc}).",
                              hint="pip install ai-edge-litert") from None

    def info(self) -> DeviceInfo:
        return DeviceInfo(
            name=self.name,
            kind=self.kind,
            runtime="ai-edge-litert",
            runtime_version=_litert_version(),
            cpu=hostinfo.cpu_model(),
            details={**hostinfo.host_summary(), "threads": self.settings.threads, "kernels": self.settings.kernels},
        )

    def _new_interpreter(self, data: bytes) -> Any:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter(
            model_content=data,
            num_threads=self.settings.threads,
            experimental_op_resolver_type=_resolver(self.settings.kernels),
        )

    def deploy(self, model: ModelBinary) -> Deployment:
        self._interpreter = None
        if not self._peak_ram:
            # The first interpreter in a process pays LiteRT's one-time set-up (~1 ms); pay it untimed
            # so the first variant's load time is comparable with the others'.
            with contextlib.suppress(ValueError, RuntimeError):
                self._new_interpreter(model.data).allocate_tensors()
        t0 = time.perf_counter_ns()
        try:
            interpreter = self._new_interpreter(model.data)
            interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise DeviceError(self.name, f"deploy {model.name}", f"LiteRT rejected the model: {exc}") from None
        load_ms = (time.perf_counter_ns() - t0) / 1e6
        self._interpreter, self._model = interpreter, model
        if model.sha256 not in self._peak_ram:
            self._peak_ram[model.sha256] = fresh_process_peak_growth(
                model.data, threads=self.settings.threads, resolver=_resolver(self.settings.kernels).name)
        return Deployment(
            load_time_ms=load_ms,
            ram_bytes=self._peak_ram[model.sha256],
            ram_noise_bytes=RSS_NOISE_BYTES,
            details={"ram_method": "peak RSS growth (VmHWM) of a fresh process loading and running the model, "
                                   "LiteRT set-up included"},
        )

    def run(self, spec: RunSpec) -> RunResult:
        if self._interpreter is None or self._model is None:
            raise DeviceError(self.name, "run", "no model deployed")
        interp = self._interpreter
        inp = interp.get_input_details()[0]
        x = spec.timing_input if spec.timing_input is not None else np.zeros(inp["shape"], inp["dtype"])
        interp.set_tensor(inp["index"], x.reshape(inp["shape"]).astype(inp["dtype"], copy=False))
        invoke = interp.invoke
        for _ in range(spec.warmup):
            invoke()
        overhead = timer_overhead_ns()
        samples = _timed_loop(invoke, spec)
        outputs = self._classify(spec.samples) if spec.samples is not None else None
        return RunResult(
            latency_ns=np.maximum(samples - overhead, 1.0),
            source="measured",
            timing_method="time.perf_counter_ns around Interpreter.invoke(), minus the median clock-pair cost",
            outputs=outputs,
            details={"timer_overhead_ns": overhead},
        )

    def _classify(self, samples: np.ndarray) -> np.ndarray:
        """Run every sample once, batched on a second interpreter so the timed one keeps its shape."""
        assert self._model is not None
        interp = self._new_interpreter(self._model.data)
        inp = interp.get_input_details()[0]
        out = interp.get_output_details()[0]
        batch = samples.reshape((len(samples), *inp["shape"][1:])).astype(inp["dtype"], copy=False)
        try:
            interp.resize_tensor_input(inp["index"], list(batch.shape))
            interp.allocate_tensors()
            interp.set_tensor(inp["index"], batch)
            interp.invoke()
            return interp.get_tensor(out["index"]).reshape(len(samples), -1).copy()
        except (ValueError, RuntimeError):
            # Some graphs bake the batch size into a RESHAPE; fall back to one sample at a time.
            interp = self._new_interpreter(self._model.data)
            interp.allocate_tensors()
            results = []
            for row in batch:
                interp.set_tensor(inp["index"], row.reshape(inp["shape"]))
                interp.invoke()
                results.append(interp.get_tensor(out["index"]).reshape(-1).copy())
            return np.stack(results)

    def close(self) -> None:
        self._interpreter = None
        self._model = None


def timer_overhead_ns(clock: Any = time.perf_counter_ns, n: int = 1000) -> float:
    """Median cost of the clock read pair that brackets each inference, measured now.

    On a ~2 µs model the two reads are ~2-4 % of the interval; subtracting their median makes the
    figure the inference's own, and the subtracted amount is stored with the cell.
    """
    samples = []
    for _ in range(n):
        t0 = clock()
        samples.append(clock() - t0)
    return float(np.median(samples))


def _timed_loop(invoke: Any, spec: RunSpec) -> np.ndarray:
    # `min_seconds` counts measured inference time, not wall time: on a busy host the time the loop
    # spends descheduled between clock pairs would otherwise end it short of the figure it promised.
    clock = time.perf_counter_ns
    samples: list[int] = []
    append = samples.append
    want_ns, spent_ns = int(spec.min_seconds * 1e9), 0
    while True:
        t0 = clock()
        invoke()
        dt = clock() - t0
        append(dt)
        spent_ns += dt
        if len(samples) >= spec.iterations and (spent_ns >= want_ns or len(samples) >= spec.max_iterations):
            break
    return np.asarray(samples, dtype=np.float64)


DRIVER = DriverSpec(
    kind="local",
    summary="the host CPU, with LiteRT (threads and kernels configurable)",
    settings=LocalSettings,
    create=LocalDevice,
    unavailable_reason=lambda: None,
    default_settings=lambda: {},
    times_on_host=True,
)

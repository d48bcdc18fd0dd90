"""The board's TFLite runtime: find it, load a model, time invoke() exactly as the host's `local` driver does.

Runs on the board under its own python3 (3.7+). The timing loop, the timer-overhead correction and the
batched classification mirror devices/local.py, so a board's figure and the host's are comparable.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from typing import Any

#: Tried in this order: the maintained LiteRT wheel, the frozen tflite-runtime many images carry,
#: then full TensorFlow.
RUNTIMES = ("ai_edge_litert", "tflite_runtime", "tensorflow")

_XNNPACK_MARK = b"XNNPACK delegate"


class RuntimeMissing(Exception):
    """No TFLite runtime is importable; the message lists what each import said."""


class Runtime:
    """One imported runtime and the interpreter class and resolver types it offers."""

    def __init__(self, name: str, version: str, interpreter_cls: Any, resolver: Any) -> None:
        self.name = name
        self.version = version
        self.interpreter_cls = interpreter_cls
        self.resolver = resolver  # OpResolverType, or None on runtimes too old to have it
        #: TFLite logs the XNNPACK creation once per process, so remember having seen it.
        self.xnnpack_seen = False

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "module": self.interpreter_cls.__module__}


def _dist_version(dist: str, module: Any) -> str:
    try:
        from importlib.metadata import version  # Python 3.8+

        return version(dist)
    except Exception:  # 3.7, or not installed as a distribution
        return str(getattr(module, "__version__", "unknown"))


def find_runtime() -> Runtime:
    errors = []
    try:
        import ai_edge_litert
        from ai_edge_litert import interpreter as litert

        return Runtime("ai-edge-litert", _dist_version("ai-edge-litert", ai_edge_litert), litert.Interpreter,
                       getattr(litert, "OpResolverType", None))
    except Exception as exc:  # ImportError, or a broken wheel raising anything at import
        errors.append(f"ai_edge_litert: {exc}")
    try:
        import tflite_runtime
        from tflite_runtime import interpreter as tflr

        return Runtime("tflite-runtime", _dist_version("tflite-runtime", tflite_runtime), tflr.Interpreter,
                       getattr(tflr, "OpResolverType", None))
    except Exception as exc:
        errors.append(f"tflite_runtime: {exc}")
    try:
        import tensorflow as tf

        resolver = getattr(getattr(tf.lite, "experimental", None), "OpResolverType", None)
        return Runtime("tensorflow", str(tf.__version__), tf.lite.Interpreter, resolver)
    except Exception as exc:
        errors.append(f"tensorflow.lite: {exc}")
    raise RuntimeMissing("; ".join(errors))


def install_hint() -> str:
    """The command that gives this board a runtime, for the harness to show the user."""
    machine = os.uname().machine
    py = sys.version_info[:2]
    if py >= (3, 9) and machine in ("aarch64", "x86_64"):
        cmd = "python3 -m pip install ai-edge-litert"
    else:
        # 32-bit Raspberry Pi OS and old Pythons have no ai-edge-litert wheel; tflite-runtime needs numpy < 2.
        cmd = "python3 -m pip install tflite-runtime 'numpy<2'"
    return (f"Install a TFLite runtime on the board: `{cmd}` (on images that refuse system-wide pip, make a venv: "
            "`python3 -m venv ~/bench-venv && ~/bench-venv/bin/pip install ...`, and set the device's "
            "`python = \"~/bench-venv/bin/python\"` as an absolute path).")


class _CaptureStderr:
    """Route fd 2 to a temporary file while the runtime sets up, so its C++ log lines can be read.

    The captured text is written back to the real stderr afterwards, where the harness keeps a tail.
    """

    def __enter__(self) -> _CaptureStderr:
        sys.stderr.flush()
        self._saved = os.dup(2)
        self._file = tempfile.TemporaryFile()
        os.dup2(self._file.fileno(), 2)
        self.text = b""
        return self

    def __exit__(self, *exc: Any) -> None:
        sys.stderr.flush()
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._file.seek(0)
        self.text = self._file.read()
        self._file.close()
        if self.text:
            os.write(2, self.text)


class Model:
    """A loaded model on one interpreter; `kernels` as in the local driver."""

    def __init__(self, runtime: Runtime, data: bytes, threads: int, kernels: str) -> None:
        self.runtime = runtime
        self.data = data
        self.threads = threads
        self.kernels = kernels
        #: Seconds the last interpreter took to construct and allocate (the model's load time).
        self.setup_seconds = 0.0
        self.interpreter = self.new_interpreter()

    def new_interpreter(self) -> Any:
        kwargs: dict[str, Any] = {"model_content": self.data, "num_threads": self.threads}
        if self.kernels != "default":
            if self.runtime.resolver is None:
                raise ValueError(f"kernels = {self.kernels!r} needs a runtime with OpResolverType "
                                 f"({self.runtime.name} {self.runtime.version} has none); use 'default'")
            kwargs["experimental_op_resolver_type"] = {
                "builtin": self.runtime.resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
                "reference": self.runtime.resolver.BUILTIN_REF,
            }[self.kernels]
        with _CaptureStderr() as log:
            t0 = time.perf_counter_ns()
            interpreter = self.runtime.interpreter_cls(**kwargs)
            interpreter.allocate_tensors()
            self.setup_seconds = (time.perf_counter_ns() - t0) / 1e9
        if _XNNPACK_MARK in log.text:
            self.runtime.xnnpack_seen = True
        return interpreter

    def delegate(self) -> str:
        return "XNNPACK" if self.kernels == "default" and self.runtime.xnnpack_seen else "none"


def timer_overhead_ns(n: int = 1000) -> float:
    """Median cost of the clock read pair that brackets each inference (as devices/local.py)."""
    clock = time.perf_counter_ns
    samples = []
    for _ in range(n):
        t0 = clock()
        samples.append(clock() - t0)
    samples.sort()
    mid = len(samples) // 2
    return float(samples[mid]) if len(samples) % 2 else (samples[mid - 1] + samples[mid]) / 2.0


def timed_loop(invoke: Any, iterations: int, min_seconds: float, max_iterations: int) -> list[int]:
    """The same loop as devices/local.py: one clock pair around each invoke(), nothing else inside."""
    clock = time.perf_counter_ns
    samples: list[int] = []
    append = samples.append
    want_ns, spent_ns = int(min_seconds * 1e9), 0  # inference time, not wall time (a busy board)
    while True:
        t0 = clock()
        invoke()
        dt = clock() - t0
        append(dt)
        spent_ns += dt
        if len(samples) >= iterations and (spent_ns >= want_ns or len(samples) >= max_iterations):
            break
    return samples


def time_model(model: Model, x: Any, warmup: int, iterations: int, min_seconds: float,
               max_iterations: int) -> tuple[list[int], float]:
    import numpy as np

    interp = model.interpreter
    inp = interp.get_input_details()[0]
    if x is None:
        x = np.zeros(inp["shape"], inp["dtype"])
    interp.set_tensor(inp["index"], x.reshape(inp["shape"]).astype(inp["dtype"], copy=False))
    invoke = interp.invoke
    for _ in range(warmup):
        invoke()
    overhead = timer_overhead_ns()
    return timed_loop(invoke, iterations, min_seconds, max_iterations), overhead


def classify(model: Model, samples: Any) -> Any:
    """Every sample once, batched on a second interpreter so the timed one keeps its shape."""
    import numpy as np

    interp = model.new_interpreter()
    inp = interp.get_input_details()[0]
    out = interp.get_output_details()[0]
    batch = samples.reshape((len(samples), *tuple(inp["shape"][1:]))).astype(inp["dtype"], copy=False)
    try:
        interp.resize_tensor_input(inp["index"], list(batch.shape))
        interp.allocate_tensors()
        interp.set_tensor(inp["index"], batch)
        interp.invoke()
        return interp.get_tensor(out["index"]).reshape(len(samples), -1).copy()
    except (ValueError, RuntimeError):
        # Some graphs bake the batch size into a RESHAPE; fall back to one sample at a time.
        interp = model.new_interpreter()
        rows = []
        for row in batch:
            interp.set_tensor(inp["index"], row.reshape(inp["shape"]))
            interp.invoke()
            rows.append(interp.get_tensor(out["index"]).reshape(-1).copy())
        return np.stack(rows)


def optional_array(spec: dict[str, Any] | None) -> Any:
    """{"b64", "dtype", "shape"} from the harness -> numpy array (None stays None)."""
    if spec is None:
        return None
    import base64

    import numpy as np

    raw = base64.b64decode(spec["b64"])
    return np.frombuffer(raw, dtype=np.dtype(spec["dtype"])).reshape(spec["shape"])


def encode_array(array: Any) -> dict[str, Any]:
    import base64

    return {"b64": base64.b64encode(array.tobytes()).decode("ascii"), "dtype": array.dtype.str,
            "shape": list(array.shape)}

"""The `mlperf` device: a board running MLPerf Tiny (EEMBC) benchmark firmware, in performance mode.

Such firmware holds one model, fixed at build time, and reports which (`profile%` → m-model-[ic01]).
deploy() therefore uploads nothing: it checks that the sweep's variant is the one the firmware holds
(by `models`, a user mapping of model ids to variant names/sha256 prefixes, else by the variant's name
being the model id) and fails the cell clearly otherwise. run() downloads the timing input
with hex `db` commands and measures latency the MLPerf way: windows of `infer N 0`, each at least
`min_seconds` long by the DUT's own m-lap-us clock, the figure being their median. With
`mlperf_rules` that is 5 windows of >= 10 s, as the MLCommons runner requires for a submission.

With `image` set, the DUT is that firmware on QEMU's mps2-an386 (started like the `qemu` kind), and
its figures are flagged emulated (QEMU's -icount time); on a real board they are measured.
"""

from __future__ import annotations

import contextlib
import logging
import math
import statistics
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field, field_validator

from benchcore.errors import BenchError, DeviceError
from benchcore.tflite_model import graph_io
from devices.base import Deployment, DeviceInfo, ModelBinary, RunResult, RunSpec
from devices.mcu.link import PortLock, open_link
from devices.mlperf.client import CHUNK_BYTES, MAX_CHUNK_BYTES, Identity, MlperfClient
from devices.registry import DeviceSettings, DriverSpec

#: What --mlperf-rules means (MLCommons Tiny rules, as benchmark/runner checks them).
RULES_WINDOWS = 5
RULES_MIN_SECONDS = 10.0


class MlperfSettings(DeviceSettings):
    #: A pyserial URL (/dev/ttyACM0, /dev/serial/by-id/..., socket://, rfc2217://); or set `image`.
    port: str | None = None
    #: MLPerf Tiny firmware ELF to run on QEMU mps2-an386 instead of a board on `port`.
    image: Path | None = None
    icount_shift: int = Field(5, ge=0, le=10)
    baud: int = Field(115_200, gt=0)
    #: Seconds to wait for m-ready after an ordinary command; inference windows get their own budget.
    timeout_s: float = Field(5.0, gt=0)
    retries: int = Field(2, ge=0)
    #: Bytes per `db` command (the DUT's 80-character command buffer allows at most 38).
    chunk_bytes: int = Field(CHUNK_BYTES, ge=1, le=MAX_CHUNK_BYTES)
    #: Read every download back with `db print` and compare.
    verify: bool = True
    #: model id the firmware reports -> variant names or sha256 prefixes it stands for.
    models: dict[str, list[str]] = Field(default_factory=dict)
    #: Timed windows and the shortest DUT-clock duration of each (None: the sweep's min_seconds).
    windows: int = Field(5, ge=1)
    min_seconds: float | None = Field(None, ge=0)
    #: 5 windows of >= 10 s each (the MLCommons rules; overrides windows/min_seconds).
    mlperf_rules: bool = False
    #: Answer budget of one window beyond its expected duration.
    window_timeout_s: float = Field(60.0, gt=0)
    trace: bool = False

    @field_validator("models", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {k: [x] if isinstance(x, str) else x for k, x in v.items()}
        return v


def matches(model_id: str, model: ModelBinary, mapping: dict[str, list[str]]) -> str | None:
    """How `model` is the firmware's `model_id`, or None when it is not."""
    for key in mapping.get(model_id, []):
        if key and (model.sha256.startswith(key.lower()) or model.name == key):
            return f"models[{model_id!r}] = {key!r}"
    if not mapping.get(model_id) and model.name.lower() == model_id.lower():
        return f"variant name is the firmware's model id {model_id!r}"
    return None


class MlperfDevice:
    kind = "mlperf"

    def __init__(self, name: str, settings: MlperfSettings) -> None:
        if (settings.port is None) == (settings.image is None):
            raise DeviceError(name, "config", "set exactly one of `port` (a board) and `image` (QEMU)")
        self.name = name
        self.settings = settings
        self.log = logging.getLogger(f"bench.device.{name}")
        self._lock: PortLock | None = None
        self._link = None
        self._qemu = None
        self.url: str | None = settings.port
        self.client: MlperfClient | None = None
        self.identity: Identity | None = None
        self._model: ModelBinary | None = None
        self._io: dict[str, Any] | None = None

    # --- lifecycle --------------------------------------------------------------------------------

    def open(self) -> None:
        s = self.settings
        try:
            if s.image is not None:
                self.url = self._start_qemu(s.image)
            assert self.url is not None
            self._lock = PortLock(self.name, self.url)
            self._lock.acquire()
            self._link = open_link(self.name, self.url, s.baud)
            self.client = MlperfClient(self._link, device=self.name, logger=self.log, timeout=s.timeout_s,
                                       retries=s.retries, chunk=s.chunk_bytes, trace=s.trace)  # fmt: skip
            boot = self.client.drain()
            self.identity = self.client.identify(boot)
        except BaseException:
            self.close()
            raise
        ident = self.identity
        self.log.info("connected to %s on %s: %s, model %s, %s mode", self.name, self.url, ident.profile,
                      ident.model, ident.mode)

    def _start_qemu(self, image: Path) -> str:
        from devices.qemu import QemuProcess, QemuSettings  # only when QEMU is wanted

        if not image.is_file():
            raise DeviceError(self.name, "open", f"MLPerf firmware image {image} does not exist.",
                              hint="Build it with `bench firmware mlperf --model M.tflite` (see README).")
        # sleep=on: between commands the DUT idles in WFI; letting QEMU warp virtual time there burns a
        # core and, on a loaded host, delayed its answers past the official runner's fixed 5 s timeout.
        qs = QemuSettings(image=image, icount_shift=self.settings.icount_shift, icount_sleep=True)
        self._qemu = QemuProcess(self.name, qs, image, self.log)
        return self._qemu.start()

    def close(self) -> None:
        self.client = None
        if self._link is not None:
            with contextlib.suppress(Exception):
                self._link.close()
            self._link = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        if self._qemu is not None:
            self._qemu.stop()
            self._qemu = None

    def _client(self, step: str) -> MlperfClient:
        if self.client is None or self.identity is None:
            raise DeviceError(self.name, step, "device is not open", hint="Call open() first.")
        return self.client

    @property
    def emulated(self) -> bool:
        return self.settings.image is not None

    def info(self) -> DeviceInfo:
        self._client("info")
        ident = self.identity
        assert ident is not None
        return DeviceInfo(
            name=self.name, kind=self.kind, runtime="mlperf-tiny", runtime_version=ident.profile,
            cpu="cortex-m4 (QEMU, -icount)" if self.emulated else None,
            details={"protocol": "MLPerf Tiny (EEMBC) serial, performance mode", "dut_name": ident.name,
                     "vendor": ident.vendor, "model_id": ident.model, "timestamp_mode": ident.mode,
                     "port": self.url, "baud": self.settings.baud, "emulated": self.emulated,
                     "image": str(self.settings.image) if self.settings.image else None,
                     "latency_source": "emulated" if self.emulated else "measured"},
        )  # fmt: skip

    # --- deploy: the firmware holds its model; check it is the one asked for ----------------------

    def deploy(self, model: ModelBinary) -> Deployment:
        self._client("deploy")
        ident = self.identity
        assert ident is not None
        how = matches(ident.model, model, self.settings.models)
        if how is None:
            known = ", ".join(f"{k} -> {v}" for k, v in self.settings.models.items()) or "none"
            raise DeviceError(
                self.name, f"deploy {model.name}",
                f"the firmware holds model {ident.model!r} ({ident.profile}); the sweep asks for {model.name} "
                f"(sha256 {model.sha256[:12]}). MLPerf Tiny firmware cannot load another model. "
                f"Mappings in bench.toml: {known}.",
                hint=f"Flash firmware built with {model.name}, or map it: models = {{ {ident.model} = "
                f"[\"{model.name}\"] }} in this device's settings, if it is the same model.",
            )  # fmt: skip
        self._model = model
        self._io = _tensor_io(self.name, model)
        self.log.info("variant %s is the firmware's %s (%s)", model.name, ident.model, how)
        return Deployment(details={"model_id": ident.model, "matched_by": how, "uploaded": False,
                                   "load_method": "none: the model is built into the MLPerf Tiny firmware"})

    # --- run ----------------------------------------------------------------------------------------

    def run(self, spec: RunSpec) -> RunResult:
        client = self._client("run")
        if self._model is None or self._io is None:
            raise DeviceError(self.name, "run", "no model deployed", hint="Call deploy() first.")
        s, io = self.settings, self._io
        windows = RULES_WINDOWS if s.mlperf_rules else s.windows
        min_s = RULES_MIN_SECONDS if s.mlperf_rules else (s.min_seconds if s.min_seconds is not None
                                                          else spec.min_seconds)  # fmt: skip
        x = spec.timing_input if spec.timing_input is not None else np.zeros(io["in_shape"], io["in_dtype"])
        download = client.load(self._input_bytes(x), verify=s.verify)

        # Size the windows: one calibration window, then N so that each lasts >= min_seconds.
        calib = client.infer(1, min(spec.warmup, 1000), timeout=s.window_timeout_s)
        per_us = max(calib.elapsed_us, 1)
        n = min(max(spec.iterations, 1), max(spec.max_iterations, 1))
        if min_s > 0:
            n = max(n, math.ceil(min_s * 1e6 / per_us * 1.05))
        rows: list[dict[str, Any]] = []
        while len(rows) < windows:
            budget = s.window_timeout_s + n * per_us / 1e6 * 3
            r = client.infer(n, 0, timeout=budget)
            if r.elapsed_us <= 0:
                raise DeviceError(self.name, "run", f"`infer {n} 0` took {r.elapsed_us} µs by the DUT's clock; "
                                  f"its timer does not advance. Last lines: {client.tail()}")  # fmt: skip
            if r.elapsed_us < min_s * 1e6:  # the calibration guessed short: grow N and redo this window
                n = math.ceil(n * min_s * 1e6 / r.elapsed_us * 1.05)
                continue
            rows.append({"iterations": n, "elapsed_us": r.elapsed_us, "runtime_s": r.elapsed_us / 1e6,
                         "throughput_inf_s": n / (r.elapsed_us / 1e6), "latency_us": r.elapsed_us / n})
            per_us = r.elapsed_us / n
        latency_ns = np.array([row["latency_us"] * 1e3 for row in rows])
        median_tp = statistics.median(row["throughput_inf_s"] for row in rows)
        outputs = self._classify(client, spec.samples) if spec.samples is not None else None
        source = "emulated" if self.emulated else "measured"
        details = {
            "mlperf": {
                "mode": "performance", "rules": "MLCommons Tiny (5 windows >= 10 s)" if s.mlperf_rules else None,
                "windows": rows, "min_seconds": min_s, "median_throughput_inf_s": median_tp,
                "median_latency_us": 1e6 / median_tp, "units": "inf./sec.", "model_id": self.identity.model
                if self.identity else None, "valid_for_submission": bool(s.mlperf_rules and not self.emulated),
            },
            "download": vars(download).copy(), "warmup": min(spec.warmup, 1000),
            "iterations_total": sum(row["iterations"] for row in rows),
        }  # fmt: skip
        return RunResult(
            latency_ns=latency_ns, source=source,
            timing_method=f"MLPerf Tiny m-lap-us: {len(rows)} windows of `infer N 0` (N={rows[-1]['iterations']}),"
            f" each >= {min_s:g} s of DUT time; one figure per window (window time / N)"
            + (", QEMU -icount time" if self.emulated else ""),
            outputs=outputs, details=details,
        )  # fmt: skip

    def _input_bytes(self, x: np.ndarray) -> bytes:
        io = self._io
        assert io is not None
        arr = np.ascontiguousarray(x, dtype=io["in_dtype"])
        if arr.size != int(np.prod(io["in_shape"])):
            raise DeviceError(self.name, "run", f"input has {arr.size} elements; the model's input takes "
                              f"{int(np.prod(io['in_shape']))} ({io['in_dtype']} {io['in_shape']})")  # fmt: skip
        return arr.tobytes()

    def _classify(self, client: MlperfClient, samples: np.ndarray) -> np.ndarray:
        """One download and `infer 1 0` per labelled input; results (fp32) back to the output dtype."""
        io = self._io
        assert io is not None
        rows = []
        for sample in samples:
            client.load(self._input_bytes(sample), verify=self.settings.verify)
            r = client.infer(1, 0, timeout=self.settings.window_timeout_s)
            if len(r.results) != io["out_size"]:
                raise DeviceError(self.name, "classify", f"m-results has {len(r.results)} values; the model has "
                                  f"{io['out_size']} outputs. Last lines: {client.tail()}")  # fmt: skip
            rows.append(_requantize(np.array(r.results), io))
        return np.stack(rows) if rows else np.zeros((0, io["out_size"]))


def _tensor_io(device: str, model: ModelBinary) -> dict[str, Any]:
    try:
        inputs, outputs = graph_io(model.data, model.name)
    except BenchError as exc:
        raise DeviceError(device, f"deploy {model.name}", f"cannot read the variant's model: {exc}") from None
    i, o = inputs[0], outputs[0]
    return {"in_shape": list(i.shape), "in_dtype": np.dtype(i.dtype.lower()), "out_size": int(np.prod(o.shape)),
            "out_dtype": np.dtype(o.dtype.lower()), "out_scale": o.scale, "out_zero": o.zero_point}  # fmt: skip


def _requantize(values: np.ndarray, io: dict[str, Any]) -> np.ndarray:
    dt = io["out_dtype"]
    if not np.issubdtype(dt, np.integer) or not io["out_scale"]:
        return values.astype(dt)
    q = np.round(values / io["out_scale"]) + io["out_zero"]
    info = np.iinfo(dt)
    return np.clip(q, info.min, info.max).astype(dt)


def unavailable_reason() -> str | None:
    return "needs an MLPerf Tiny board (or an `image` for QEMU)"


DRIVER = DriverSpec(
    kind="mlperf",
    summary="A board running MLPerf Tiny (EEMBC) benchmark firmware, performance mode, over a serial link.",
    settings=MlperfSettings,
    create=MlperfDevice,
    unavailable_reason=unavailable_reason,
)


"""The `serial` device: a board running the bench firmware, driven over the wire protocol.

Latency comes from the device's cycle counter (`cycles × 1e9 / clock_hz`) and is labelled by the
device's cycle source: measured on a board, estimated on the simulator, emulated under QEMU.
A device reset (HELLO banner mid-command) is survived once per step by re-deploying and retrying.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import numpy as np
from pydantic import Field

from benchcore import arena
from benchcore.errors import DeviceError
from benchcore.record import LatencyHistogram, OpProfile
from benchcore.tflite_model import OPERATOR_NAMES as OP_NAMES
from devices.base import Deployment, DeviceInfo, ModelBinary, RunResult, RunSpec
from devices.mcu import messages as m
from devices.mcu.client import McuClient
from devices.mcu.errors import ArenaTooSmallError, DeviceResetError
from devices.mcu.link import PortLock, open_link
from devices.registry import DeviceSettings, DriverSpec

T = TypeVar("T")


class ProtocolSettings(DeviceSettings):
    """How to talk the wire protocol, wherever the link comes from."""

    baud: int = Field(921_600, gt=0)
    #: Seconds to wait for an answer before retransmitting (plus the frames' wire time).
    timeout_s: float = Field(1.0, gt=0)
    retries: int = Field(4, ge=0)
    #: Log a hex dump of every frame (logger bench.device.<name>, DEBUG).
    trace: bool = False
    #: Cap on upload chunk size / frames in flight (default: what the device announces).
    chunk_bytes: int | None = Field(None, ge=1)
    window: int | None = Field(None, ge=1)
    #: Cap the tensor arena below the device's capacity (0: all of it).
    arena_limit: int = Field(0, ge=0)
    #: Fetch a per-operator cycle profile after each run (one extra inference, untimed).
    op_profile: bool = True
    #: Drive the timed-window GPIO line so a power meter can cut its trace.
    marker: bool = True
    #: After each deploy, find the smallest arena limit ALLOCATE accepts (16 B resolution) by a search over
    #: ALLOCATE with a limit, then allocate again as configured. The backend's own figure can sit either
    #: side of that minimum (TFLM plans head and tail apart). A few round trips per probe.
    arena_search: bool = False
    #: Reuse the outputs of a model on the same samples, once fetched this session, for further repeats
    #: (flagged `outputs_replayed`): for deterministic targets (an emulator), where classifying again only
    #: costs time.
    replay_outputs: bool = False


class SerialSettings(ProtocolSettings):
    """A board on a serial link the user names."""

    #: A pyserial URL: /dev/ttyUSB0, /dev/serial/by-id/..., socket://host:port, rfc2217://host:port, loop://
    port: str


class LinkProvider(Protocol):
    """Starts what serves the wire protocol (the simulator, QEMU) and hands back its URL for
    serial_for_url; stopped when the device closes. `baud` budgets wire time (None: no baud, socket://)."""

    baud: int | None

    def start(self) -> str: ...

    def stop(self) -> None: ...


def _numpy_dtype(desc: m.TensorDesc) -> np.dtype:
    return np.dtype(desc.dtype)


class McuDevice:
    kind = "serial"

    def __init__(self, name: str, settings: ProtocolSettings, *, link: LinkProvider | None = None) -> None:
        if link is None and not isinstance(settings, SerialSettings):
            raise TypeError("a serial-protocol device needs a port (SerialSettings) or a link provider")
        self.name = name
        self.settings = settings
        self.link_provider = link
        self.url: str | None = settings.port if isinstance(settings, SerialSettings) else None
        self.log = logging.getLogger(f"bench.device.{name}")
        self._lock: PortLock | None = None
        self._link = None
        self.client: McuClient | None = None
        self._model: ModelBinary | None = None
        self._alloc: m.Allocation | None = None
        self._outputs: dict[tuple[str, str], np.ndarray] = {}
        self._replayed = False
        self.resets = 0

    # --- lifecycle --------------------------------------------------------------------------

    def _link_baud(self, port: str) -> int | None:
        """Baud for wire-time budgets; None where the link has no baud (socket://)."""
        if self.link_provider is not None:
            return self.link_provider.baud
        return None if port.startswith("socket://") else self.settings.baud

    def open(self) -> None:
        if self.link_provider is not None:
            self.url = self.link_provider.start()
        port = self.url
        assert port is not None
        lock = PortLock(self.name, port)
        try:
            lock.acquire()
        except BaseException:
            if self.link_provider is not None:
                self.link_provider.stop()
            raise
        self._lock = lock
        try:
            self._link = open_link(self.name, port, self.settings.baud)
            s = self.settings
            self.client = McuClient(
                self._link, device=self.name, logger=self.log, timeout=s.timeout_s, retries=s.retries,
                baud=self._link_baud(port), trace=s.trace, chunk=s.chunk_bytes, window=s.window,
            )  # fmt: skip
            info = self.client.hello()
        except BaseException:
            self.close()
            raise
        self.log.info("connected to %s on %s: %s %s, %s %s, protocol %d", self.name, port, info.board, info.cpu,
                      info.backend, info.backend_version, info.version)

    def close(self) -> None:
        self.client = None
        try:
            if self._link is not None:
                try:
                    self._link.close()
                finally:
                    self._link = None
            if self._lock is not None:
                self._lock.release()
                self._lock = None
        finally:
            if self.link_provider is not None:
                self.link_provider.stop()

    def _client(self, step: str) -> McuClient:
        if self.client is None or self.client.info is None:
            raise DeviceError(self.name, step, "device is not open", hint="Call open() first.")
        return self.client

    def info(self) -> DeviceInfo:
        hi = self._client("info").info
        assert hi is not None
        return DeviceInfo(
            name=self.name, kind=self.kind, runtime=hi.backend, runtime_version=hi.backend_version,
            cpu=hi.cpu, clock_hz=hi.clock_hz,
            details={
                "board": hi.board, "firmware": hi.firmware_version, "protocol": hi.version,
                "arena_capacity": hi.arena_capacity, "max_model_size": hi.max_model_size,
                "cycle_source": _cycle_source_name(hi.cycle_source),
                "latency_source": m.LATENCY_SOURCE.get(hi.cycle_source, "measured"),
                "marker_pin": None if hi.marker_pin == m.NO_PIN else hi.marker_pin,
                "port": self.url, "baud": self.settings.baud,
            },
        )  # fmt: skip

    # --- deploy and run ---------------------------------------------------------------------

    def deploy(self, model: ModelBinary) -> Deployment:
        self._model = model
        return self._surviving_reset(f"deploy {model.name}", lambda: self._deploy(model), redeploy=False)

    def _deploy(self, model: ModelBinary) -> Deployment:
        client = self._client("deploy")
        t0 = time.perf_counter()
        up = client.upload(model.data)
        alloc = client.allocate(self.settings.arena_limit)
        self._alloc = alloc
        load_ms = (time.perf_counter() - t0) * 1e3
        self.log.info("deployed %s: %d bytes in %.0f ms, arena %d of %d bytes", model.name, up.size, load_ms,
                      alloc.arena_used, alloc.arena_capacity)
        details: dict[str, Any] = {
            "arena_capacity": alloc.arena_capacity, "upload_s": up.seconds, "upload_rewinds": up.rewinds,
            "upload_resumed_from": up.resumed_from, "chunk_bytes": up.chunk, "window": up.window,
            "load_method": "wire upload + ALLOCATE, host wall clock",
        }  # fmt: skip
        if self.settings.arena_search:
            found = self._search_arena(client, model, alloc)
            details.update(arena_used_bytes=alloc.arena_used, arena_min_bytes=found.minimum,
                           arena_search_probes=found.probes,
                           arena_method="ALLOCATE with a limit, binary search to 16 B on the target")  # fmt: skip
        return Deployment(load_time_ms=load_ms, arena_bytes=alloc.arena_used, details=details)

    def _search_arena(self, client: McuClient, model: ModelBinary, alloc: m.Allocation) -> arena.Search:
        """The smallest arena limit ALLOCATE accepts, searched on the target from the backend's own figure;
        the model is allocated as configured again afterwards. A probe that resets the firmware (TFLM's
        planner can fault just above its arena_used_bytes()) counts as too small: reload, go on."""

        def fits(limit: int) -> arena.Outcome:
            try:
                client.allocate(limit)
                return arena.Outcome.OK
            except ArenaTooSmallError:
                return arena.Outcome.SMALL
            except DeviceResetError:
                client.hello()
                client.upload(model.data)
                return arena.Outcome.CRASH

        start = max(16, (alloc.arena_used + 15) // 16 * 16)
        found = arena.find_minimum(fits, lo=0, hi=max(start, alloc.arena_capacity), granularity=16, start=start)
        self._alloc = client.allocate(self.settings.arena_limit)
        return found

    def run(self, spec: RunSpec) -> RunResult:
        if self._model is None:
            raise DeviceError(self.name, "run", "no model deployed", hint="Call deploy() first.")
        return self._surviving_reset("run", lambda: self._run(spec), redeploy=True)

    def _surviving_reset(self, step: str, fn: Callable[[], T], *, redeploy: bool) -> T:
        try:
            return fn()
        except DeviceResetError as first:
            self.resets += 1
            self.log.warning("%s: device reset; renegotiating, re-deploying and retrying once", step)
            client = self._client(step)
            client.hello()
            if redeploy and self._model is not None:
                self._deploy(self._model)
            try:
                return fn()
            except DeviceResetError as second:
                self.resets += 1
                raise DeviceError(
                    self.name, step,
                    f"the device reset again after a retry ({first.message}; then: {second.message}).",
                    hint="The board is rebooting repeatedly: check its power supply, watchdog and firmware log.",
                ) from None

    def _alloc_or_fail(self) -> m.Allocation:
        if self._alloc is None or not self._alloc.inputs or not self._alloc.outputs:
            raise DeviceError(self.name, "run", "the model has no input or output tensor")
        return self._alloc

    def _input_bytes(self, x: np.ndarray, desc: m.TensorDesc) -> bytes:
        arr = np.ascontiguousarray(x, dtype=_numpy_dtype(desc))
        if arr.nbytes != desc.nbytes:
            raise DeviceError(self.name, "run", f"input has {arr.nbytes} bytes; the model's input takes "
                              f"{desc.nbytes} ({desc.dtype} {list(desc.shape)})")  # fmt: skip
        return arr.tobytes()

    def _run(self, spec: RunSpec) -> RunResult:
        client = self._client("run")
        info = client.info
        assert info is not None
        alloc = self._alloc_or_fail()
        inp, out = alloc.inputs[0], alloc.outputs[0]
        x = spec.timing_input if spec.timing_input is not None else np.zeros(inp.shape, _numpy_dtype(inp))
        client.set_input(0, self._input_bytes(x, inp))
        cycles, clock_hz, source, summaries = self._timed(client, info, spec)
        latency_ns = np.asarray(cycles, dtype=np.float64) * (1e9 / clock_hz)
        self._replayed = False
        details: dict[str, Any] = {
            "clock_hz": clock_hz, "cycle_source": _cycle_source_name(source), "batches": len(summaries),
            "marker_pin": None if summaries[0].marker_pin == m.NO_PIN else summaries[0].marker_pin,
            "link": vars(client.stats).copy(), "resets": self.resets,
        }  # fmt: skip
        latency_source = m.LATENCY_SOURCE.get(source, "measured")
        profile = self._op_profile(client, clock_hz, latency_source) if self.settings.op_profile else None
        outputs = self._classify(client, spec.samples, inp, out) if spec.samples is not None else None
        if self.settings.replay_outputs:
            details["outputs_replayed"] = self._replayed
        energy = None
        if info.active_power_uw and latency_source == "estimated":
            energy = float(np.mean(latency_ns)) * 1e-9 * info.active_power_uw  # µW·s = µJ
            details["energy_method"] = "estimated: mean latency x the profile's nominal active power"
        return RunResult(
            latency_ns=latency_ns, source=latency_source,  # type: ignore[arg-type]
            timing_method=f"device cycle counter ({_cycle_source_name(source)}) per inference / {clock_hz} Hz",
            outputs=outputs, energy_uj=energy, details=details, op_profile=profile,
            histogram=LatencyHistogram(base=summaries[0].hist_base, width=summaries[0].hist_width,
                                       counts=tuple(int(c) for c in summaries[0].histogram)),
        )  # fmt: skip

    def _timed(self, client: McuClient, info: m.HelloInfo, spec: RunSpec):
        per_batch = info.max_cycle_log or 1
        cycles: list[int] = []
        summaries: list[m.InvokeSummary] = []
        want = max(1, spec.iterations)
        clock_hz = info.clock_hz
        while len(cycles) < want:
            batch = min(per_batch, want - len(cycles), max(1, spec.max_iterations - len(cycles)))
            s = client.invoke(batch, spec.warmup if not summaries else 0, marker=self.settings.marker)
            summaries.append(s)
            clock_hz = s.clock_hz or clock_hz
            cycles.extend(client.get_cycles(s.n) if s.all_logged else [s.min] * s.n)
            if len(cycles) >= want and spec.min_seconds > 0 and len(cycles) < spec.max_iterations:
                spent = sum(cycles) / clock_hz
                if spent < spec.min_seconds:
                    mean = spent / len(cycles)
                    more = int((spec.min_seconds - spent) / mean) + 1 if mean > 0 else spec.max_iterations
                    want = min(spec.max_iterations, len(cycles) + more)
        if not clock_hz:
            raise DeviceError(self.name, "run", "the device reports a clock of 0 Hz; cannot convert cycles")
        return cycles, clock_hz, summaries[0].cycle_source, summaries

    def _op_profile(self, client: McuClient, clock_hz: int, latency_source: str) -> OpProfile:
        """GET_PROFILE after one profiled (untimed) inference: cycles per operator, typed."""
        client.invoke(1, 0, profile=True)
        n, ops = client.get_profile()
        entries = [{"op": OP_NAMES.get(op.builtin_code, str(op.builtin_code)), "index": op.op_index,
                    "cycles": op.cycles_total / max(n, 1)} for op in ops]  # fmt: skip
        unit = {"measured": "cycles", "emulated": "emulated cycles"}.get(latency_source, f"{latency_source} cycles")
        return OpProfile.from_entries(entries, unit=unit, clock_hz=clock_hz, n=max(n, 1))

    def _classify(self, client: McuClient, samples: np.ndarray, inp: m.TensorDesc, out: m.TensorDesc) -> np.ndarray:
        if not self.settings.replay_outputs:
            return self._fetch_outputs(client, samples, inp, out)
        key = (self._model.sha256 if self._model else "", hashlib.sha256(np.ascontiguousarray(samples)).hexdigest())
        self._replayed = key in self._outputs
        if not self._replayed:
            self._outputs[key] = self._fetch_outputs(client, samples, inp, out)
        return self._outputs[key].copy()

    def _fetch_outputs(self, client: McuClient, samples: np.ndarray, inp: m.TensorDesc,
                       out: m.TensorDesc) -> np.ndarray:
        rows = []
        for sample in samples:
            client.set_input(0, self._input_bytes(sample, inp))
            client.invoke(1, 0)
            raw = client.get_output(0, out.nbytes)
            rows.append(np.frombuffer(raw, dtype=_numpy_dtype(out)).copy())
        return np.stack(rows) if rows else np.zeros((0, 0))


def _cycle_source_name(source: int) -> str:
    try:
        return m.CycleSource(source).name
    except ValueError:
        return f"source {source}"


DRIVER = DriverSpec(
    kind="serial",
    summary="A board running the bench firmware over a serial link (tty, by-id path, socket://, rfc2217://).",
    settings=SerialSettings,
    create=McuDevice,
)

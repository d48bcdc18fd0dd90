"""`kind = "ssh"`: a Linux board (Raspberry Pi, Jetson, any SBC) over SSH, running its own TFLite runtime.

One connection and one on-board agent serve every cell of a lane (open() to close()). The agent times
invoke() the way the host's `local` driver does, so board and host figures compare. A connection that
drops mid-sweep is re-established and the step retried once; a second loss fails the cell with both
reasons. Host keys are checked strictly; passwords are never read from the config.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
from pydantic import Field, model_validator

from benchcore.errors import DeviceError, DeviceTimeoutError
from benchcore.record import ThermalState
from devices.base import Deployment, DeviceInfo, ModelBinary, RunResult, RunSpec
from devices.local_memory import RSS_NOISE_BYTES
from devices.registry import DeviceSettings, DriverSpec
from devices.ssh_connect import Auth, Connection, Target, connect, resolve
from devices.ssh_session import AgentSession, SessionLost, blob, unblob

log = logging.getLogger(__name__)

Kernels = Literal["default", "builtin", "reference"]
T = TypeVar("T")

_FORBIDDEN_KEYS = ("password", "passphrase", "passwd")


class SshSettings(DeviceSettings):
    #: Host name, address, or a Host alias from ~/.ssh/config.
    host: str = Field(min_length=1)
    #: Override ~/.ssh/config (default there: 22).
    port: int | None = Field(default=None, ge=1, le=65535)
    #: Override ~/.ssh/config (default there: your local user name).
    user: str | None = None
    #: Private key to log in with (else IdentityFile from ~/.ssh/config, ssh-agent, ~/.ssh/id_*).
    key_file: str | None = None
    #: Name of an environment variable holding the key's passphrase (never the passphrase itself).
    passphrase_env: str | None = None
    #: Ask ssh-agent for keys.
    agent: bool = True
    known_hosts: str = "~/.ssh/known_hosts"
    #: OpenSSH client config to honour; "" to ignore it.
    ssh_config: str = "~/.ssh/config"
    #: The board's Python 3.7+ with a TFLite runtime (a venv's python, for instance).
    python: str = "python3"
    #: Parent of the per-run working directory on the board; "" = the board's temp directory.
    remote_dir: str = ""
    threads: int = Field(default=1, ge=1, le=256)
    #: As for `local`: default (XNNPACK where the runtime applies it), builtin (no delegates), reference.
    kernels: Kernels = "default"
    connect_timeout: float = Field(default=10.0, gt=0)
    connect_attempts: int = Field(default=3, ge=1, le=20)
    #: Seconds any one remote step may take (a cell's run gets this plus its min_seconds).
    command_timeout: float = Field(default=300.0, gt=0)
    #: Seconds between SSH keepalives (0 = off), so idle NAT/firewall state is not dropped mid-sweep.
    keepalive: int = Field(default=15, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _no_secrets(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in _FORBIDDEN_KEYS:
                if key in data:
                    raise ValueError(f"{key!r} is not accepted: secrets do not belong in bench.toml. Use "
                                     "ssh-agent, a key file, or passphrase_env naming an environment variable")
        return data

    def auth(self) -> Auth:
        return Auth(key_file=self.key_file, passphrase_env=self.passphrase_env, agent=self.agent,
                    known_hosts=Path(self.known_hosts).expanduser())

    def target(self, device: str) -> Target:
        return resolve(self.host, port=self.port, user=self.user, key_file=self.key_file,
                       ssh_config=self.ssh_config, device=device)


class SshDevice:
    kind = "ssh"

    def __init__(self, name: str, settings: SshSettings) -> None:
        self.name = name
        self.settings = settings
        self._conn: Connection | None = None
        self._meter_reader: Any = None
        self._session: AgentSession | None = None
        self._hello: dict[str, Any] = {}
        self._model: ModelBinary | None = None
        self._reconnects = 0
        self._retired_workdirs: list[str] = []

    # -- lifecycle ---------------------------------------------------------------------------------

    def open(self) -> None:
        try:
            self._start()
        except SessionLost as exc:
            self.close()
            raise DeviceError(self.name, "open", f"the connection dropped while starting the agent: {exc}") from None
        except BaseException:
            self.close()
            raise
        if self._hello.get("runtime") is None:
            error, hint = self._hello.get("runtime_error"), self._hello.get("install_hint")
            self.close()
            raise DeviceError(self.name, "open", f"the board has no TFLite runtime for {self.settings.python!r} "
                              f"({error})", hint=hint)

    def _start(self) -> None:
        s = self.settings
        self._conn = connect(s.target(self.name), s.auth(), timeout=s.connect_timeout,
                             attempts=s.connect_attempts, keepalive=s.keepalive, device=self.name)
        self._session = AgentSession(self._conn, device=self.name, python=s.python, remote_dir=s.remote_dir,
                                     timeout=s.command_timeout)
        self._hello = self._session.start({"threads": s.threads, "kernels": s.kernels})

    def _stop(self) -> None:
        if self._session is not None:
            if self._session.workdir is not None and self._conn is not None and not self._conn.alive():
                self._retired_workdirs.append(self._session.workdir)
            self._session.close()
            self._session = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def meter_resources(self) -> dict[str, Any]:
        """What a meter read through this board needs: a reader on its own SSH connection (same
        settings and host keys), so sampling never disturbs the agent's session. Closed in close()."""
        from devices.power.remote_ssh import SshReader

        if self._meter_reader is None:
            self._meter_reader = SshReader.connect(self.name, self.settings)
        return {"reader": self._meter_reader}

    def close(self) -> None:
        if self._meter_reader is not None:
            self._meter_reader.close()
            self._meter_reader = None
        if self._session is not None and self._retired_workdirs:
            # Agents cut off by a dropped connection remove their own directories; make sure.
            for workdir in self._retired_workdirs:
                self._session.remove_workdir(workdir)
        self._retired_workdirs.clear()
        self._stop()
        self._model = None

    def info(self) -> DeviceInfo:
        board = self._hello.get("board", {})
        runtime = self._hello.get("runtime") or {}
        max_freq = board.get("max_freq_hz") or {}
        hop = self._conn.hop if self._conn is not None else None
        return DeviceInfo(
            name=self.name,
            kind=self.kind,
            runtime=runtime.get("name", "none"),
            runtime_version=runtime.get("version", "unknown"),
            cpu=board.get("cpu"),
            clock_hz=max(max_freq.values()) if max_freq else None,
            details={
                **board,
                "ssh": f"{hop.user}@{hop.hostname}:{hop.port}" if hop else None,
                "agent_version": self._hello.get("agent_version"),
                "runtime_module": runtime.get("module"),
                "threads": self.settings.threads,
                "kernels": self.settings.kernels,
                "thermal": self._hello.get("thermal"),
            },
        )

    # -- cells -------------------------------------------------------------------------------------

    def deploy(self, model: ModelBinary) -> Deployment:
        self._model = model
        return self._retrying(f"deploy {model.name}", lambda: self._deploy(model))

    def _deploy(self, model: ModelBinary) -> Deployment:
        session = self._live_session()
        # A generated name: the model's own name never reaches the board's filesystem or shell.
        path = session.upload(f"model-{model.sha256[:16]}.tflite", model.data)
        answer = session.request({"op": "load", "path": path}, step=f"deploy {model.name}",
                                 timeout=self.settings.command_timeout)
        return Deployment(
            load_time_ms=answer.get("load_time_ms"),
            ram_bytes=answer.get("rss_growth_bytes"),
            ram_noise_bytes=RSS_NOISE_BYTES,
            details={"ram_method": answer.get("ram_method"), "peak_rss_bytes": answer.get("peak_rss_bytes"),
                     "delegate": answer.get("delegate")},
        )

    def run(self, spec: RunSpec) -> RunResult:
        if self._model is None:
            raise DeviceError(self.name, "run", "no model deployed")
        return self._retrying("run", lambda: self._run(spec), redeploy=True)

    def _run(self, spec: RunSpec) -> RunResult:
        session = self._live_session()
        request = {
            "op": "run", "warmup": spec.warmup, "iterations": spec.iterations, "min_seconds": spec.min_seconds,
            "max_iterations": spec.max_iterations, "timing_input": blob(spec.timing_input),
            "samples": blob(spec.samples),
        }
        answer = session.request(request, step="run", timeout=self.settings.command_timeout + spec.min_seconds)
        overhead = float(answer["timer_overhead_ns"])
        latency = np.asarray(answer["latency_ns"], dtype=np.float64)
        runtime = self._hello.get("runtime") or {}
        return RunResult(
            latency_ns=np.maximum(latency - overhead, 1.0),
            source="measured",
            timing_method="time.perf_counter_ns around Interpreter.invoke() on the board, "
                          "minus the median clock-pair cost",
            outputs=unblob(answer.get("outputs")),
            details={
                "timer_overhead_ns": overhead,
                "runtime": runtime.get("name"),
                "runtime_version": runtime.get("version"),
                "threads": answer.get("threads"),
                "kernels": answer.get("kernels"),
                "delegate": answer.get("delegate"),
                "peak_rss_bytes": answer.get("peak_rss_bytes"),
                "rss_bytes": answer.get("rss_bytes"),
                "freq_hz_before": answer.get("freq_hz_before"),
                "freq_hz_after": answer.get("freq_hz_after"),
                "reconnects": self._reconnects,
            },
            thermal=ThermalState.from_readings(answer.get("thermal_before"), answer.get("thermal_after")),
        )

    # -- robustness --------------------------------------------------------------------------------

    def _live_session(self) -> AgentSession:
        if self._session is not None and not self._session.running:
            # Lost between steps (seen first on a busy machine): a fresh agent would have no model,
            # so this goes through the same reconnect-and-redeploy as a loss mid-request.
            raise SessionLost("the agent's channel closed")
        if self._session is None:
            self._restart()  # an earlier timeout or a failed reconnect left no agent: start a fresh one
        assert self._session is not None
        return self._session

    def _restart(self) -> None:
        self._stop()
        self._start()

    def _retrying(self, step: str, action: Callable[[], T], *, redeploy: bool = False) -> T:
        """Run `action`; if the connection or agent is lost, reconnect and try exactly once more."""
        try:
            return action()
        except SessionLost as exc:
            first = exc
        except DeviceTimeoutError:
            self._stop()  # the session stopped its agent; the next step starts a fresh one
            raise
        log.warning("%s: %s: %s; reconnecting and retrying once", self.name, step, first)
        self._reconnects += 1
        try:
            self._restart()
            if redeploy and self._model is not None:
                self._deploy(self._model)
            return action()
        except SessionLost as exc:
            self._stop()
            raise DeviceError(self.name, step, f"connection lost ({first}); lost again after reconnecting: {exc}",
                              hint="Check the board's power and network; the sweep goes on with the next cell.") \
                from None
        except DeviceError as exc:
            self._stop()
            raise DeviceError(self.name, step, f"connection lost ({first}); then: {exc.message}",
                              hint=exc.hint) from None


def _unavailable() -> str:
    return "needs a board reachable over SSH (host, user, key in bench.toml)"


DRIVER = DriverSpec(
    kind="ssh",
    summary="a Linux board over SSH (Raspberry Pi, SBCs) with its own TFLite runtime, via an on-board agent",
    settings=SshSettings,
    create=SshDevice,
    unavailable_reason=_unavailable,
    default_settings=None,
)

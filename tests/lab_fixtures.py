"""A real lab on loopback for tests: `bench lab scheduler` and `bench lab worker` as child processes.

Each worker gets its own bench.toml (the boards it holds) and its own DASK_TEMPORARY_DIRECTORY; the
test talks to the scheduler like a sweep client would. Nothing is faked: a killed worker is a
SIGKILLed process, a lost scheduler is one too.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

#: Generous: on a busy 2-core machine a Python process importing Dask can take many seconds.
START_TIMEOUT_S = 90.0


def _env(tmp: Path) -> dict[str, str]:
    tmp.mkdir(parents=True, exist_ok=True)
    return {**os.environ, "DASK_TEMPORARY_DIRECTORY": str(tmp), "COLUMNS": "200",
            # A client or worker that lost the scheduler gives up after this long, not the default 30 s.
            "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "10s"}


def _bench(*args: str, cwd: Path, env: dict[str, str], log: Path, announces: bool = False) -> subprocess.Popen[bytes]:
    with log.open("wb") as err:
        return subprocess.Popen([sys.executable, "-m", "harness", *args], cwd=cwd, env=env, stderr=err,
                                stdout=subprocess.PIPE if announces else subprocess.DEVNULL)


@dataclass
class Lab:
    root: Path
    address: str = ""
    scheduler: subprocess.Popen[bytes] | None = None
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    configs: dict[str, str] = field(default_factory=dict)
    tls: str = ""  # a [cluster] section with TLS files, for a TLS lab

    def start_scheduler(self) -> str:
        cfg = self.root / "scheduler.toml"
        cfg.write_text(self.tls)
        proc = _bench("lab", "scheduler", "-c", str(cfg), "--port", "0", cwd=self.root,
                      env=_env(self.root / "dask-scheduler"), log=self.root / "scheduler.log", announces=True)
        self.scheduler = proc
        line = _read_line(proc, "scheduler listening at ", self.root / "scheduler.log")
        self.address = line.split("scheduler listening at ", 1)[1].strip()
        return self.address

    def start_worker(self, name: str, boards_toml: str | None = None) -> None:
        """Start (or restart) worker `name` holding the boards of `boards_toml` (TOML [[devices]])."""
        if boards_toml is not None:
            self.configs[name] = boards_toml
        cfg = self.root / f"{name}.toml"
        cfg.write_text(self.tls + "\n" + self.configs[name])
        self.workers[name] = _bench("lab", "worker", "-c", str(cfg), "--scheduler", self.address, "--name", name,
                                    cwd=self.root, env=_env(self.root / f"dask-{name}"),
                                    log=self.root / f"{name}.log")

    def wait_for_workers(self, names: list[str], client_security: object = None) -> None:
        from distributed import Client

        deadline = time.monotonic() + START_TIMEOUT_S
        with Client(self.address, security=client_security, timeout=START_TIMEOUT_S) as client:
            while time.monotonic() < deadline:
                have = {str(w["name"]) for w in client.scheduler_info(n_workers=-1)["workers"].values()}
                if set(names) <= have:
                    return
                for name in names:
                    proc = self.workers[name]
                    if proc.poll() is not None:
                        raise RuntimeError(f"worker {name} exited: {self.log(name)[-3000:]}")
                time.sleep(0.2)
        raise TimeoutError(f"workers {names} did not join within {START_TIMEOUT_S} s")

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")

    def kill(self, name: str) -> None:
        proc = self.workers[name] if name != "scheduler" else self.scheduler
        assert proc is not None
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)

    def stop(self) -> None:
        procs = [*self.workers.values(), *([self.scheduler] if self.scheduler else [])]
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
            if proc.stdout:
                proc.stdout.close()


def _read_line(proc: subprocess.Popen[bytes], marker: str, log: Path) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT_S
    buf = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                break
            buf += chunk
            for line in buf.decode(errors="replace").splitlines():
                if marker in line:
                    return line
    raise RuntimeError(f"no {marker!r} from the process (said {buf!r}); log: {log.read_text(errors='replace')[-3000:]}")

"""bench's on-device agent for Linux boards (`kind = "ssh"`): one JSON request per line on stdin,
one JSON answer per line on stdout.

The harness uploads these three files by SFTP into a fresh working directory and starts this one with
the board's own python3 (3.7+; standard library plus the TFLite runtime and the numpy it brings). Ops:

  hello  {workdir, remove_workdir_at_exit, threads, kernels} -> board identity, runtime, thermal state
  load   {path}  -> load time, RSS growth and peak RSS, delegate (the file is deleted once read)
  run    {warmup, iterations, min_seconds, max_iterations, timing_input, samples}
         -> every latency after warm-up (ns), timer overhead, outputs, thermal state before/after, RSS
  ping   -> {"ok": true} (a round trip, for measuring the link)
  quit   -> exits (and removes the working directory when hello asked for it)

Every answer has "ok"; a failed request answers {"ok": false, "error": ...} and the agent keeps serving.
Nothing but answers reaches stdout: the runtime's own prints are moved to stderr.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import traceback
from typing import Any

import bench_agent_board as board
import bench_agent_runtime as rt

AGENT_VERSION = "1"
#: First line on stdout: whatever a login shell's rc files printed before it is not ours.
READY_LINE = b"bench-agent ready\n"
#: The harness names working directories with this prefix; the agent removes nothing else.
WORKDIR_PREFIX = "bench-"


def _private_stdout() -> Any:
    """Keep the real stdout for answers and point fd 1 at stderr, so a C++ print cannot corrupt the stream."""
    fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(fd, "wb", buffering=0)


class Agent:
    def __init__(self) -> None:
        self.workdir = os.path.dirname(os.path.abspath(__file__))
        self.remove_workdir = False
        self.threads = 1
        self.kernels = "default"
        self.runtime: rt.Runtime | None = None
        self.model: rt.Model | None = None
        self.primed = False

    # -- ops ---------------------------------------------------------------------------------------

    def hello(self, req: dict[str, Any]) -> dict[str, Any]:
        self.threads = int(req.get("threads", 1))
        self.kernels = str(req.get("kernels", "default"))
        wanted = req.get("workdir")
        # Only a directory that is exactly ours and named like one the harness made may be removed.
        self.remove_workdir = bool(req.get("remove_workdir_at_exit")) and wanted is not None and \
            os.path.realpath(wanted) == os.path.realpath(self.workdir) and \
            os.path.basename(self.workdir).startswith(WORKDIR_PREFIX)
        answer: dict[str, Any] = {"agent_version": AGENT_VERSION, "pid": os.getpid(), "board": board.summary(),
                                  "thermal": board.thermal(), "threads": self.threads, "kernels": self.kernels,
                                  "runtime": None}
        try:
            self.runtime = rt.find_runtime()
            answer["runtime"] = self.runtime.describe()
        except rt.RuntimeMissing as exc:
            answer["runtime_error"] = str(exc)
            answer["install_hint"] = rt.install_hint()
        return answer

    def load(self, req: dict[str, Any]) -> dict[str, Any]:
        runtime = self._runtime()
        path = os.path.realpath(str(req["path"]))
        if os.path.dirname(path) != os.path.realpath(self.workdir):
            raise ValueError("the model must be inside the agent's working directory")
        with open(path, "rb") as f:
            data = f.read()
        os.remove(path)  # in memory now; nothing needs to stay on the board's disk
        self.model = None
        if not self.primed:
            # The first interpreter in a process pays the runtime's one-time set-up (XNNPACK, kernel
            # registries); pay it untimed, as devices/local.py does, so load time and RAM are the model's.
            try:
                primer = rt.Model(runtime, data, self.threads, self.kernels)
                primer.interpreter.invoke()
            except (ValueError, RuntimeError):
                pass
            self.primed = True
        rss_before = board.status_bytes("VmRSS")
        peak_reset = board.reset_peak_rss()
        model = rt.Model(runtime, data, self.threads, self.kernels)
        model.interpreter.invoke()  # lazily created kernel state counts towards the memory figure
        rss_after = board.status_bytes("VmHWM" if peak_reset else "VmRSS")
        growth = None
        if rss_before is not None and rss_after is not None:
            growth = max(rss_after - rss_before, 0)
        self.model = model
        return {
            "load_time_ms": model.setup_seconds * 1e3,
            "rss_growth_bytes": growth,
            "ram_method": "peak RSS growth (VmHWM after clear_refs)" if peak_reset else "RSS growth",
            "peak_rss_bytes": board.status_bytes("VmHWM"),
            "delegate": model.delegate(),
        }

    def run(self, req: dict[str, Any]) -> dict[str, Any]:
        if self.model is None:
            raise ValueError("no model loaded")
        x = rt.optional_array(req.get("timing_input"))
        samples = rt.optional_array(req.get("samples"))
        before = board.thermal()
        clocks_before = board.clocks()["freq_hz"]
        latencies, overhead = rt.time_model(self.model, x, int(req["warmup"]), int(req["iterations"]),
                                            float(req.get("min_seconds", 0.0)),
                                            int(req.get("max_iterations", 100000)))
        after = board.thermal()
        clocks_after = board.clocks()["freq_hz"]
        outputs = rt.classify(self.model, samples) if samples is not None else None
        return {
            "latency_ns": latencies,
            "timer_overhead_ns": overhead,
            "outputs": rt.encode_array(outputs) if outputs is not None else None,
            "thermal_before": before,
            "thermal_after": after,
            "freq_hz_before": clocks_before,
            "freq_hz_after": clocks_after,
            "rss_bytes": board.status_bytes("VmRSS"),
            "peak_rss_bytes": board.status_bytes("VmHWM"),
            "threads": self.threads,
            "kernels": self.kernels,
            "delegate": self.model.delegate(),
        }

    # -- plumbing ----------------------------------------------------------------------------------

    def _runtime(self) -> rt.Runtime:
        if self.runtime is None:
            self.runtime = rt.find_runtime()
        return self.runtime

    def handle(self, req: dict[str, Any]) -> dict[str, Any]:
        op = req.get("op")
        handler = {"hello": self.hello, "load": self.load, "run": self.run}.get(str(op))
        if op in ("quit", "ping"):
            return {"ok": True}
        if handler is None:
            return {"ok": False, "error": f"unknown op {op!r}"}
        try:
            answer = handler(req)
        except rt.RuntimeMissing as exc:
            return {"ok": False, "error": f"no TFLite runtime: {exc}", "install_hint": rt.install_hint()}
        except Exception as exc:
            traceback.print_exc()
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        answer["ok"] = True
        return answer

    def cleanup(self) -> None:
        if self.remove_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _exit_on_signal(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds through main's `finally`, so the working directory goes


def main() -> int:
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _exit_on_signal)
    out = _private_stdout()
    out.write(READY_LINE)
    agent = Agent()
    try:
        while True:
            line = sys.stdin.buffer.readline()
            if not line:
                break  # the harness went away (closed, or the connection dropped)
            try:
                req = json.loads(line.decode("utf-8"))
                if not isinstance(req, dict):
                    raise ValueError("a request is a JSON object")
            except ValueError as exc:
                answer: dict[str, Any] = {"ok": False, "error": f"bad request: {exc}"}
                req = {}
            else:
                answer = agent.handle(req)
            out.write(json.dumps(answer, separators=(",", ":")).encode("utf-8") + b"\n")
            if req.get("op") == "quit":
                break
    finally:
        agent.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())

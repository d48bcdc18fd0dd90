"""Which runtimes accept a model: LiteRT (the `local` and `ssh` devices) and TFLite Micro (boards, QEMU).

A model one runtime rejects is otherwise found late: person_detect passes inspect and prune, then every
`local` cell fails with LiteRT's "quantized_dimension must be in range [0, 1)". Each runtime loads
the model, allocates and invokes once on zero inputs, in its own subprocess: TFLM can crash the
process on a model it dislikes, and LiteRT's XNNPACK delegate spawns threads bench does not want.
The answer per runtime is "ok" or "rejected: <first line of the runtime's error>".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

RUNTIMES = ("litert", "tflite-micro")
TIMEOUT_S = 120.0

# Runs in a fresh interpreter; imports nothing from bench so it works from any cwd.
_PROBE = r"""
import json, sys
import numpy as np

model = sys.stdin.buffer.read()
which = sys.argv[1]
try:
    if which == "litert":
        from ai_edge_litert.interpreter import Interpreter
        interp = Interpreter(model_content=model, num_threads=1)
        interp.allocate_tensors()
        for d in interp.get_input_details():
            interp.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
        interp.invoke()
    else:
        from tflite_micro import runtime
        interp = runtime.Interpreter.from_bytes(model, arena_size=max(1 << 22, 10 * len(model)))
        for i in range(int(sys.argv[2])):
            d = interp.get_input_details(i)
            interp.set_input(np.zeros(d["shape"], d["dtype"]), i)
        interp.invoke()
except BaseException as exc:
    print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
    sys.exit(0)
print(json.dumps({"ok": True}))
"""


def probe_runtimes(model: bytes, *, n_inputs: int = 1, timeout: float = TIMEOUT_S) -> dict[str, str]:
    """{"litert": "ok" | "rejected: …", "tflite-micro": …}; the probes run in parallel subprocesses."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    procs = {
        name: subprocess.Popen([sys.executable, "-c", _PROBE, name, str(n_inputs)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        for name in RUNTIMES
    }
    answers = {}
    for name, proc in procs.items():
        try:
            out, err = proc.communicate(model, timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            answers[name] = f"rejected: no answer within {timeout:.0f} s"
            continue
        answers[name] = _verdict(proc.returncode, out, err)
    return answers


def accepted_by(runtimes: dict[str, str]) -> list[str]:
    return [name for name, verdict in runtimes.items() if verdict == "ok"]


def _verdict(returncode: int, out: bytes, err: bytes) -> str:
    if returncode < 0:
        return f"rejected: the runtime crashed (signal {-returncode})"
    lines = out.decode(errors="replace").strip().splitlines()
    try:
        answer = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        answer = {}
    if answer.get("ok"):
        return "ok"
    message = answer.get("error") or err.decode(errors="replace").strip()[-300:] or f"exit {returncode}"
    return "rejected: " + _first_line(message)


def _first_line(text: str) -> str:
    # LiteRT glues its node context on after the reason ("...Was 3.Tensor 33 ..."); keep the reason.
    line = text.strip().splitlines()[0] if text.strip() else text
    return line.split(".Tensor ")[0][:200]

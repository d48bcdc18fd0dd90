"""Peak memory of a model on the host, measured in a fresh process.

Inside a long-lived process, RSS growth says little: the allocator hands a new interpreter the
memory the last one freed, so small models read as 0 bytes. A fresh child that imports LiteRT,
notes its peak RSS, then loads and runs the model, reports what an application would pay for it
(including LiteRT's one-time set-up, which every real deployment pays too).
"""

from __future__ import annotations

import json
import subprocess
import sys

_CHILD = r"""
import json, sys
def hwm():
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM:'):
            return int(line.split()[1]) * 1024
args = json.loads(sys.argv[1])
data = sys.stdin.buffer.read()
from ai_edge_litert.interpreter import Interpreter, OpResolverType
before = hwm()
interp = Interpreter(model_content=data, num_threads=args['threads'],
                     experimental_op_resolver_type=getattr(OpResolverType, args['resolver']))
interp.allocate_tensors()
interp.invoke()
print(json.dumps({'before': before, 'after': hwm()}))
"""


#: How far the peak-RSS growth of a fresh process moves between identical runs of one model: allocator
#: and page-granular noise. Measured on the digits family (40 fresh processes, one model, x86_64 Debian 12):
#: a range of 112 KiB; doubled so a rerun of the same code is not a regression. The SSH agent's figure is
#: the same kind of measurement on the board.
RSS_NOISE_BYTES = 256 * 1024


def fresh_process_peak_growth(model: bytes, *, threads: int, resolver: str, timeout: float = 60) -> int | None:
    """Bytes of peak RSS a fresh process gains by loading and running `model`; None if it failed."""
    try:
        done = subprocess.run([sys.executable, "-c", _CHILD, json.dumps({"threads": threads, "resolver": resolver})],
                              input=model, capture_output=True, timeout=timeout, check=False)
        figures = json.loads(done.stdout.decode().strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None
    return max(int(figures["after"]) - int(figures["before"]), 0)

"""The on-device agent of `kind = "ssh"`.

The modules here are not imported by the harness: `devices/ssh_session.py` uploads them to the board
and runs `bench_agent.py` with the board's python3, so they keep to Python 3.7 and the standard library
(plus the TFLite runtime). `ruff.toml` here checks them against 3.7.
"""

from __future__ import annotations

from pathlib import Path

#: Uploaded in this order; the first is the entry point.
AGENT_FILES = ("bench_agent.py", "bench_agent_board.py", "bench_agent_runtime.py")
ENTRY_POINT = AGENT_FILES[0]


def agent_sources() -> dict[str, bytes]:
    here = Path(__file__).parent
    return {name: (here / name).read_bytes() for name in AGENT_FILES}

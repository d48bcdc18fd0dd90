"""Where a run came from: bench's version and, when run from a checkout, its git commit."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

from harness import __version__

_SOURCE_DIR = Path(__file__).resolve().parent.parent


def git_commit() -> str | None:
    """The commit of the bench checkout in use (suffixed '-dirty' with local changes), else None."""
    try:
        head = subprocess.run(["git", "-C", str(_SOURCE_DIR), "rev-parse", "HEAD"],
                              capture_output=True, text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(_SOURCE_DIR), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}-dirty" if dirty else head


def bench_version() -> str:
    return __version__


def host_name() -> str:
    return platform.node()

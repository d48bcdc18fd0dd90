"""What a Linux host says about itself: CPU model, cores, frequency governors.

Everything is best effort: a field the kernel does not expose is None, never a guess.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def cpu_model() -> str | None:
    text = _read("/proc/cpuinfo") or ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "Hardware") and value.strip():
            return value.strip()
    return platform.processor() or None


def governors() -> dict[str, str]:
    """cpuN -> scaling governor, for the cores that expose one (VMs often expose none)."""
    out = {}
    for cpu in sorted(Path("/sys/devices/system/cpu").glob("cpu[0-9]*")):
        gov = _read(str(cpu / "cpufreq" / "scaling_governor"))
        if gov:
            out[cpu.name] = gov
    return out


def host_summary() -> dict[str, object]:
    return {
        "hostname": platform.node(),
        "os": f"{platform.system()} {platform.release()}",
        "machine": platform.machine(),
        "cores": os.cpu_count(),
        "governors": governors() or None,
        "python": platform.python_version(),
    }

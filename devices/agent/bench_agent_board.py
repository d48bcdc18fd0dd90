"""What a Linux board says about itself: CPU, clocks, governors, temperature, throttling, memory.

Runs on the board under its own python3 (3.7+, standard library only). Every field is best effort:
what the kernel does not expose is None, never a guess, because these figures become provenance.
"""

from __future__ import annotations

import contextlib
import glob
import os
import platform
import shutil
import subprocess
import sys
from typing import Any


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def cpu_model() -> str | None:
    """/proc/cpuinfo's model; a Raspberry Pi names itself in `Model`, x86 in `model name`."""
    found = {}
    for line in (_read("/proc/cpuinfo") or "").splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if value and key in ("Model", "model name", "Hardware") and key not in found:
            found[key] = value
    board = (_read("/proc/device-tree/model") or "").rstrip("\x00") or None
    cpu = found.get("model name") or found.get("Hardware")
    if board and cpu:
        return f"{board} ({cpu})"
    return board or found.get("Model") or cpu or platform.processor() or None


def _cpus() -> list:
    paths = glob.glob("/sys/devices/system/cpu/cpu[0-9]*")
    return sorted(paths, key=lambda p: int(os.path.basename(p)[3:]))


def clocks() -> dict[str, Any]:
    """Per core: scaling governor and current/max frequency in Hz (VMs often expose none)."""
    governors, current, maximum = {}, {}, {}
    for cpu in _cpus():
        name = os.path.basename(cpu)
        gov = _read(cpu + "/cpufreq/scaling_governor")
        cur = _int(_read(cpu + "/cpufreq/scaling_cur_freq"))
        top = _int(_read(cpu + "/cpufreq/cpuinfo_max_freq"))
        if gov:
            governors[name] = gov
        if cur is not None:
            current[name] = cur * 1000
        if top is not None:
            maximum[name] = top * 1000
    return {"governors": governors or None, "freq_hz": current or None, "max_freq_hz": maximum or None}


def _vcgencmd(*args: str) -> str | None:
    """Raspberry Pi firmware query; absent elsewhere. Arguments are fixed strings, no shell."""
    exe = shutil.which("vcgencmd")
    if exe is None:
        return None
    try:
        done = subprocess.run([exe, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=5,
                              check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    text = done.stdout.decode("ascii", "replace").strip()
    return text if done.returncode == 0 and text else None


def thermal() -> dict[str, Any]:
    """SoC temperature and throttling now: vcgencmd where present, else /sys/class/thermal."""
    state: dict[str, Any] = {"source": None, "temp_c": None, "zones": None, "throttled": None}
    throttled = _vcgencmd("get_throttled")  # "throttled=0x50000": bits 0-3 now, 16-19 since boot
    if throttled is not None:
        state["source"] = "vcgencmd"
        state["throttled"] = throttled.partition("=")[2] or throttled
        temp = _vcgencmd("measure_temp")  # "temp=48.3'C"
        if temp:
            with contextlib.suppress(ValueError):
                state["temp_c"] = float(temp.partition("=")[2].split("'")[0])
    zones = {}
    for zone in sorted(glob.glob("/sys/class/thermal/thermal_zone[0-9]*")):
        milli = _int(_read(zone + "/temp"))
        if milli is not None:
            zones[_read(zone + "/type") or os.path.basename(zone)] = milli / 1000.0
    if zones:
        state["zones"] = zones
        if state["temp_c"] is None:
            state["temp_c"] = max(zones.values())
        state["source"] = state["source"] or "sysfs"
    if state["throttled"] is None:
        # Without the firmware's flag, cpufreq's cap below the hardware maximum is the visible sign.
        caps = []
        for cpu in _cpus():
            cap = _int(_read(cpu + "/cpufreq/scaling_max_freq"))
            top = _int(_read(cpu + "/cpufreq/cpuinfo_max_freq"))
            if cap is not None and top is not None:
                caps.append(cap < top)
        if caps:
            state["throttled"] = "capped" if any(caps) else "no"
    return state


def status_bytes(field: str) -> int | None:
    """A field of /proc/self/status (VmRSS, VmHWM) in bytes."""
    for line in (_read("/proc/self/status") or "").splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return None


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0), so a later VmHWM is the peak since now."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def summary() -> dict[str, Any]:
    uname = platform.uname()
    info = {
        "hostname": uname.node,
        "os": f"{uname.system} {uname.release}",
        "os_release": _os_release(),
        "machine": uname.machine,
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "python_executable": os.path.abspath(sys.executable),
        "mem_total_bytes": _meminfo("MemTotal"),
    }
    info.update(clocks())
    return info


def _os_release() -> str | None:
    for line in (_read("/etc/os-release") or "").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.partition("=")[2].strip().strip('"')
    return None


def _meminfo(field: str) -> int | None:
    for line in (_read("/proc/meminfo") or "").splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return None

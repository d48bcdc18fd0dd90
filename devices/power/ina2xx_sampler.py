"""The sampling loop that runs next to an INA2xx sensor (sent as `python3 -c` source; stdlib only).

    python3 -c SOURCE HWMON_DIR CURRENT_FILE VOLTAGE_FILE READY_PATH STOP_PATH MAX_S INTERVAL_S [GPIO_VALUE_PATH]

It opens the hwmon attribute files once and re-reads them with pread (sysfs regenerates the value
on every read, which is one I²C transaction), stamps each sample with its own monotonic clock,
creates READY_PATH once it samples, and stops when STOP_PATH appears or after MAX_S. Output, all at
the end so printing never slows sampling:

    # start <ns>
    <ns> <current raw> <voltage raw> [<marker 0/1>]     (one line per sample; "nan" for a failed read)
    # stop <ns> <stopfile|timeout>
"""

import gc
import os
import sys
import time


def _read(fd):
    try:
        return int(os.pread(fd, 32, 0))
    except (OSError, ValueError):
        return None


def main(argv):
    hwmon, cur_name, volt_name, ready, stop, max_s, interval = argv[:7]
    gpio = argv[7] if len(argv) > 7 else None
    max_ns, interval_s = int(float(max_s) * 1e9), float(interval)
    fds = [os.open(os.path.join(hwmon, cur_name), os.O_RDONLY), os.open(os.path.join(hwmon, volt_name), os.O_RDONLY)]
    if gpio:
        fds.append(os.open(gpio, os.O_RDONLY))
    rows = []
    # The rows are tuples of ints (no cycles to collect), tens of thousands a second: left on, the cyclic
    # collector walks the whole growing list again and again, a pause in sampling that can swallow an edge.
    gc.disable()
    clock = time.monotonic_ns
    exists = os.path.exists
    start = clock()
    with open(ready, "w"):
        pass
    reason = "timeout"
    while True:
        now = clock()
        rows.append((now, *[_read(fd) for fd in fds]))
        if exists(stop):
            reason = "stopfile"
            break
        if now - start > max_ns:
            break
        if interval_s:
            time.sleep(interval_s)
    end = clock()
    out = [f"# start {start}"]
    out.extend(" ".join("nan" if v is None else str(v) for v in row) for row in rows)
    out.append(f"# stop {end} {reason}")
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])

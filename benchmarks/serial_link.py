"""Serial link figures on the simulated MCU.

1. Model upload efficiency = payload bytes per second ÷ (baud / 10), with the simulator pacing bytes
   like an 8N1 UART, at 115200 and 921600 baud. Goal: >= 0.85. Stop-and-wait (window 1) is shown
   beside the sliding window for comparison.
2. Command round-trip time (PING) on a pty and on socket://, unpaced: the software cost per command.

    python benchmarks/serial_link.py [--runs 2] [--profile cortex-m4@80MHz] [--pings 300]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import time

from devices.mcu.client import McuClient
from devices.mcu.link import open_link
from devices.sim import SimProcess, SimSettings

#: Upload size per baud: long enough that BEGIN/END round trips are noise (~3-6 s per upload).
UPLOAD_BYTES = {115_200: 64 * 1024, 921_600: 256 * 1024}
log = logging.getLogger("bench.benchmark.serial_link")


def connect(url: str, baud: int | None, **kwargs) -> tuple[McuClient, object]:
    link = open_link("bench-link", url, baud or 921_600)
    client = McuClient(link, device="bench-link", logger=log, baud=baud, **kwargs)
    client.hello()
    return client, link


def upload_efficiency(profile: str, baud: int, window: int | None, runs: int) -> list[float]:
    sim = SimProcess("sim", SimSettings(profile=profile, baud=baud), log)
    url = sim.start()
    try:
        client, link = connect(url, baud, window=window)
        out = []
        for _ in range(runs):
            blob = os.urandom(UPLOAD_BYTES[baud])  # fresh bytes: the same CRC would resume, not resend
            result = client.upload(blob)
            out.append(len(blob) / result.seconds / (baud / 10))
        link.close()
        return out
    finally:
        sim.stop()


def round_trip_us(transport: str, profile: str, pings: int, payload: int) -> list[float]:
    sim = SimProcess("sim", SimSettings(profile=profile, transport=transport), log)
    url = sim.start()
    try:
        client, link = connect(url, None)
        data = bytes(payload)
        for _ in range(20):
            client.ping(data)
        times = []
        for _ in range(pings):
            t0 = time.perf_counter_ns()
            client.ping(data)
            times.append((time.perf_counter_ns() - t0) / 1e3)
        link.close()
        return times
    finally:
        sim.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--profile", default="cortex-m4@80MHz")
    parser.add_argument("--pings", type=int, default=300)
    parser.add_argument("--skip-stop-and-wait", action="store_true")
    args = parser.parse_args()
    print(f"profile {args.profile}")
    for baud in UPLOAD_BYTES:
        for window, label in ((None, "sliding window"), (1, "stop-and-wait")):
            if window == 1 and args.skip_stop_and_wait:
                continue
            eff = upload_efficiency(args.profile, baud, window, args.runs)
            print(f"upload {UPLOAD_BYTES[baud] // 1024} KiB at {baud} baud, {label}: efficiency "
                  f"median {statistics.median(eff):.3f} (runs: {', '.join(f'{e:.3f}' for e in eff)})")  # fmt: skip
    for transport in ("pty", "tcp"):
        for payload in (0, 256):
            t = sorted(round_trip_us(transport, args.profile, args.pings, payload))
            p99 = t[min(len(t) - 1, int(len(t) * 0.99))]
            print(f"PING round trip over {'socket://' if transport == 'tcp' else 'pty'}, {payload} B payload: "
                  f"median {statistics.median(t):.0f} µs, p99 {p99:.0f} µs, n={len(t)}")  # fmt: skip


if __name__ == "__main__":
    main()

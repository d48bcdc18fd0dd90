"""MLPerf Tiny protocol figures on QEMU mps2-an386.

1. Download efficiency on one simulated 115200-baud 8N1 line (a pacing relay in front of QEMU's
   serial): payload bytes per second ÷ (baud / 10), for the MLPerf hex `db` path (the official
   benchmark/api peer; chunks of 31 bytes as MLCommons' runner sends, 32 as bench's `mlperf` kind
   sends, 38 the most the 80-character command buffer takes) and for bench's binary upload (bench
   firmware, sliding window). Goals: hex < 0.5 (two characters a byte plus a round trip a line),
   bench >= 0.85.
2. Agreement of latency on bench firmware's MLPerf mode: bench's `mlperf` kind (median of windows)
   vs MLCommons' runner, unchanged (median throughput), vs bench's `qemu` kind over bench's own
   protocol (median of per-inference counts). All three are QEMU instruction-count time.

    python benchmarks/mlperf_link.py [--bytes 27648] [--runs 2] [--min-seconds 1] [--skip-runner]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
from pathlib import Path

import numpy as np
import serial

from devices import qemu
from devices.base import ModelBinary, RunSpec
from devices.link_relay import LinkRelay
from devices.mcu.client import McuClient
from devices.mcu.link import open_link
from devices.mlperf import images, official_runner
from devices.mlperf.client import MlperfClient
from devices.mlperf.driver import MlperfDevice, MlperfSettings
from harness.errors import BenchError
from harness.models.tflite_file import read_model

BAUD = 115_200
log = logging.getLogger("bench.benchmark.mlperf_link")


def _qemu(image: Path, sleep: bool) -> qemu.QemuProcess:
    proc = qemu.QemuProcess("bench-link", qemu.QemuSettings(image=image, icount_sleep=sleep), image, log)
    proc.start()
    return proc


def hex_download(image: Path, size: int, chunk: int, runs: int) -> list[tuple[float, float]]:
    """(efficiency, seconds) per run of a `db load` + hex `db` download, no read-back."""
    proc = _qemu(image, sleep=True)
    relay = LinkRelay(f"socket://127.0.0.1:{proc.port}", baud=BAUD)
    try:
        link = serial.serial_for_url(relay.start(), timeout=0.05)
        client = MlperfClient(link, device="bench-link", chunk=chunk, timeout=30)
        client.identify(client.drain())
        out = []
        for _ in range(runs):
            stats = client.load(os.urandom(size), verify=False)
            out.append((size / stats.seconds / (BAUD / 10), stats.seconds))
        link.close()
        return out
    finally:
        relay.stop()
        proc.stop()


def binary_upload(image: Path, size: int, runs: int) -> list[tuple[float, float]]:
    proc = _qemu(image, sleep=False)
    relay = LinkRelay(f"socket://127.0.0.1:{proc.port}", baud=BAUD)
    try:
        link = open_link("bench-link", relay.start(), BAUD)
        client = McuClient(link, device="bench-link", logger=log, baud=BAUD, timeout=5)
        client.hello()
        out = []
        for _ in range(runs):
            r = client.upload(os.urandom(size))  # fresh bytes: the same CRC would be "already held"
            out.append((size / r.seconds / (BAUD / 10), r.seconds))
        link.close()
        return out
    finally:
        relay.stop()
        proc.stop()


def agreement(model: Path, min_seconds: float, skip_runner: bool) -> None:
    built = images.build(model)
    mf = read_model(model)
    binary = ModelBinary(model.stem, mf.sha256, mf.data)
    x = np.zeros(64, np.int8)

    dev = qemu.QemuDevice("qemu", qemu.QemuSettings(backend="ref", op_profile=False))
    dev.open()
    try:
        dev.deploy(binary)
        ours = dev.run(RunSpec(warmup=1, iterations=5, timing_input=x.reshape(8, 8, 1)))
    finally:
        dev.close()
    q_us = float(np.median(ours.latency_ns)) / 1e3
    print(f"bench `qemu` kind (bench protocol): median {q_us:.2f} µs/inf over n={len(ours.latency_ns)} "
          f"inferences (spread {np.ptp(ours.latency_ns) / 1e3:.3f} µs), emulated")  # fmt: skip

    dev = MlperfDevice("mlperf", MlperfSettings(image=built["bench_mlperf.elf"], min_seconds=min_seconds))
    dev.open()
    try:
        dev.deploy(binary)
        r = dev.run(RunSpec(warmup=1, iterations=1, timing_input=x))
    finally:
        dev.close()
    ml = r.details["mlperf"]
    lat = [w["latency_us"] for w in ml["windows"]]
    print(f"bench `mlperf` kind: median {ml['median_latency_us']:.2f} µs/inf = {ml['median_throughput_inf_s']:.3f} "
          f"inf./sec. over {len(lat)} windows of {ml['windows'][0]['iterations']} inferences (>= {min_seconds} s "
          f"each; window spread {max(lat) - min(lat):.3f} µs); vs qemu kind {ml['median_latency_us'] / q_us - 1:+.3%}")
    if skip_runner:
        return
    n = official_runner.iterations_for(built["bench_mlperf.elf"])
    with tempfile.TemporaryDirectory() as tmp:
        res = official_runner.measure(built["bench_mlperf.elf"], Path(tmp), model.stem, [x.tobytes()] * 5, [0] * 5,
                                      classes=10, iterations=n)  # fmt: skip
    if res.median_throughput is None:
        print(f"official runner: no median ({'; '.join(res.errors) or 'see its log'})")
        return
    runner_us = 1e6 / res.median_throughput
    print(f"official runner (unchanged): median throughput {res.median_throughput:.3f} inf./sec. = {runner_us:.2f} "
          f"µs/inf over {len(res.throughputs)} windows of {n} ({', '.join(f'{t:.3f}' for t in res.throughputs)}); "
          f"vs qemu kind {runner_us / q_us - 1:+.3%}, vs mlperf kind {runner_us / ml['median_latency_us'] - 1:+.3%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bytes", type=int, default=96 * 96 * 3, help="download size (max: MAX_DB_INPUT_SIZE)")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--min-seconds", type=float, default=1.0, help="mlperf kind window length (DUT time)")
    parser.add_argument("--skip-runner", action="store_true")
    args = parser.parse_args()
    model = images.DEFAULT_MODEL
    built = images.build(model)
    print(f"link: {BAUD} baud 8N1 simulated by a pacing relay; payload {args.bytes} bytes; runs {args.runs}")
    for chunk, who in ((31, "MLCommons runner's"), (32, "bench mlperf kind's"), (38, "command buffer's max")):
        try:
            rows = hex_download(built["mlperf_peer.elf"], args.bytes, chunk, args.runs)
        except BenchError as exc:
            print(f"MLPerf hex db, {chunk}-byte lines: failed: {exc}")
            continue
        print(f"MLPerf hex db, {chunk}-byte lines ({who}): efficiency median "
              f"{statistics.median(e for e, _ in rows):.3f}, {statistics.median(s for _, s in rows):.2f} s "
              f"(runs: {', '.join(f'{e:.3f}' for e, _ in rows)})")  # fmt: skip
    rows = binary_upload(qemu.locate_image(qemu.QemuSettings(backend="ref")), args.bytes, args.runs)
    print(f"bench binary upload, sliding window: efficiency median {statistics.median(e for e, _ in rows):.3f}, "
          f"{statistics.median(s for _, s in rows):.2f} s (runs: {', '.join(f'{e:.3f}' for e, _ in rows)})")
    agreement(model, args.min_seconds, args.skip_runner)


if __name__ == "__main__":
    main()

"""Harness overhead of the `local` driver: bench's reported median per-inference latency divided by
a bare `Interpreter.invoke()` loop's, on the same model, in the same process, interleaved (ABAB...)
so drift on a shared machine hits both alike. Goal: <= 1.03.

The bare figure times blocks of invokes with one clock read per block (so it carries no per-call
clock overhead) and takes the median of block means.

    python benchmarks/harness_overhead.py [--rounds 7] [--iterations 2000]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from devices.base import ModelBinary, RunSpec
from devices.local import LocalDevice, LocalSettings
from harness.models.tflite_file import read_model
from harness.models.zoo import EXAMPLE_DIR
from harness.stats import summarize_ns

SHARED = Path(__file__).resolve().parents[2] / "shared" / "models"
MODELS = [EXAMPLE_DIR / "digits_dense.tflite", SHARED / "micro_speech_quantized.tflite",
          SHARED / "hello_world_int8.tflite"]
BLOCK = 20


def bare_median_us(data: bytes, iterations: int, warmup: int) -> float:
    interp = Interpreter(model_content=data, num_threads=1)
    interp.allocate_tensors()
    invoke = interp.invoke
    for _ in range(warmup):
        invoke()
    clock = time.perf_counter_ns
    means = []
    for _ in range(iterations // BLOCK):
        t0 = clock()
        for _ in range(BLOCK):
            invoke()
        means.append((clock() - t0) / BLOCK)
    return float(np.median(means)) / 1e3


def bench_median_us(device: LocalDevice, model: ModelBinary, iterations: int, warmup: int) -> float:
    device.deploy(model)
    result = device.run(RunSpec(warmup=warmup, iterations=iterations))
    return summarize_ns(result.latency_ns).p50_us


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=50)
    args = parser.parse_args()
    device = LocalDevice("host", LocalSettings())
    device.open()
    print(f"{'model':<28} {'bare µs':>9} {'bench µs':>9} {'ratio':>7} {'ratio range':>15}  n")
    for path in MODELS:
        mf = read_model(path)
        model = ModelBinary(name=path.stem, sha256=mf.sha256, data=mf.data)
        ratios, bares, benches = [], [], []
        for _ in range(args.rounds):
            bare = bare_median_us(mf.data, args.iterations, args.warmup)
            ours = bench_median_us(device, model, args.iterations, args.warmup)
            bares.append(bare)
            benches.append(ours)
            ratios.append(ours / bare)
        print(f"{path.stem:<28} {statistics.median(bares):9.2f} {statistics.median(benches):9.2f} "
              f"{statistics.median(ratios):7.3f} {min(ratios):7.3f}–{max(ratios):.3f}  "
              f"{args.rounds} rounds × {args.iterations} invokes each")
    device.close()


if __name__ == "__main__":
    main()

"""The firmware backends side by side under QEMU (mps2-an386, Cortex-M4): per bundled digits variant and
per ../shared/models model, emulated instructions per inference on `ref`, `tflm` and `tflm-cmsis-nn`,
the on-target arena (TFLM's arena_used_bytes and the true minimum found by search on the 32-bit
target) next to the 64-bit host figure (tflite_micro Python runtime, subprocess binary search),
output differences from the TFLM Python runtime, each image's text/data/bss, the wall time of the
family on each backend, and the build time of each image (cold = the build that made the cached
image, as recorded; cached = the lookup by input hash).

Instructions are QEMU -icount counts (2^shift ns each), not Cortex-M cycles: emulated figures.

    python benchmarks/qemu_backends.py [--backends ref,tflm,tflm-cmsis-nn] [--no-examples] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from devices import firmware, qemu
from devices.base import ModelBinary, RunSpec
from harness.errors import BenchError
from harness.models.arena import probe_arena
from harness.models.evaluate import tflm_outputs
from harness.models.zoo import EXAMPLE_DIR

SHARED = Path(__file__).resolve().parents[2] / "shared" / "models"
EXAMPLES = ("hello_world_int8", "micro_speech_quantized", "person_detect", "trained_lstm_int8", "keyword_scrambled")


def binary(path: Path) -> ModelBinary:
    data = path.read_bytes()
    return ModelBinary(path.stem, hashlib.sha256(data).hexdigest(), data)


def inputs(desc: Any, n: int, seed: int) -> np.ndarray:
    dtype = np.dtype(desc.dtype)
    info = np.iinfo(dtype)
    rng = np.random.default_rng(seed)
    return rng.integers(info.min, info.max, size=(n, *desc.shape), dtype=dtype, endpoint=True)


def measure(backend: str, models: list[Path], family: set[str]) -> dict[str, Any]:
    t0 = time.perf_counter()
    img = qemu.locate(qemu.QemuSettings(backend=backend))  # type: ignore[arg-type]
    lookup_s = time.perf_counter() - t0
    dev = qemu.QemuDevice(f"qemu-{backend}", qemu.QemuSettings(backend=backend))  # type: ignore[arg-type]
    dev.open()
    rows: dict[str, Any] = {}
    family_s = 0.0
    try:
        for path in models:
            started = time.perf_counter()
            try:
                dep = dev.deploy(binary(path))
            except BenchError as exc:
                rows[path.stem] = {"error": exc.message}
                continue
            desc = dev._alloc_or_fail().inputs[0]
            xs = inputs(desc, 4, sum(path.stem.encode()))
            r = dev.run(RunSpec(warmup=1, iterations=3, timing_input=xs[0], samples=xs))
            if path.stem in family:
                family_s += time.perf_counter() - started
            expected = tflm_outputs(path.read_bytes(), xs, arena_size=1 << 21).reshape(len(xs), -1).astype(np.int32)
            diff = np.abs(r.outputs.reshape(len(xs), -1).astype(np.int32) - expected)
            rows[path.stem] = {
                "instructions": float(np.median(r.details["instructions"])),
                "instructions_spread": float(np.ptp(r.details["instructions"])),
                "arena_used": dep.details.get("arena_used_bytes"), "arena_min": dep.details.get("arena_min_bytes"),
                "max_lsb": int(diff.max()), "outputs_differing": int((diff > 0).sum()), "outputs": int(diff.size),
                "top_op": max(r.details.get("op_profile") or [{}], key=lambda p: p.get("share", 0)),
            }  # fmt: skip
    finally:
        dev.close()
    return {"image": img.to_dict(), "lookup_s": lookup_s, "family_wall_s": family_s, "models": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backends", default=",".join(firmware.BACKENDS))
    ap.add_argument("--no-examples", action="store_true", help="only the bundled digits family")
    ap.add_argument("--no-host-arena", action="store_true", help="skip the 64-bit host arena search")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    models = sorted(EXAMPLE_DIR.glob("*.tflite"))
    family = {p.stem for p in models}
    if not args.no_examples:
        models += [SHARED / f"{n}.tflite" for n in EXAMPLES if (SHARED / f"{n}.tflite").exists()]
    out: dict[str, Any] = {"tflm_commit": firmware.tflm_commit(), "backends": {}}
    for backend in args.backends.split(","):
        out["backends"][backend] = measure(backend, models, family)
    if not args.no_host_arena:
        out["host_arena"] = {}
        for p in models:
            try:
                out["host_arena"][p.stem] = probe_arena(p.read_bytes(), name=p.stem).minimum_bytes
            except BenchError as exc:
                out["host_arena"][p.stem] = f"error: {exc.message}"
    if args.json:
        print(json.dumps(out, indent=1, default=str))
        return
    names = list(out["backends"])
    print("instructions per inference (QEMU -icount, emulated), max LSB vs the TFLM Python runtime")
    print(f"{'model':28}" + "".join(f"{b:>24}" for b in names))
    for p in models:
        cells = []
        for b in names:
            row = out["backends"][b]["models"].get(p.stem, {})
            cells.append(f"{row['instructions']:>15,.0f} ({row['max_lsb']} LSB)" if "instructions" in row
                         else f"{'error':>24}")  # fmt: skip
        print(f"{p.stem:28}" + "".join(f"{c:>24}" for c in cells))
    print("\narena bytes: on target arena_used / true minimum per backend; 64-bit host minimum")
    for p in models:
        cells = []
        for b in names:
            row = out["backends"][b]["models"].get(p.stem, {})
            cells.append(f"{row.get('arena_used')}/{row.get('arena_min')}")
        host = out.get("host_arena", {}).get(p.stem, "-")
        print(f"{p.stem:28}" + "".join(f"{c:>20}" for c in cells) + f"{host!s:>12}")
    print()
    for b in names:
        d = out["backends"][b]
        s = d["image"]["sizes"]
        print(f"{b:14} text {s.get('text', 0):,} data {s.get('data', 0):,} bss {s.get('bss', 0):,} B "
              f"(bss - arena {s.get('bss', 0) - s.get('arena_buffer', 0):,}); build {d['image']['build_s']} s "
              f"(cold, recorded), cached lookup {d['lookup_s']:.2f} s; family wall {d['family_wall_s']:.1f} s")


if __name__ == "__main__":
    main()

"""The bundled digits family on the QEMU device: instructions per inference and arena bytes per
variant, next to the simulator's estimates (cost-model cycles, TFLM arena), plus the QEMU image's
code and RAM size (arm-none-eabi-size). Also the TFLM example models when ../shared/models is there.

Instructions are exact: -icount makes each guest instruction 2^shift ns, and the firmware lines each
count up with the timer's tick (see firmware/ports/cortex-m/README.md).

    python benchmarks/qemu_family.py [--no-sim] [--examples]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
from pathlib import Path

import numpy as np

from devices import qemu, registry
from devices.base import ModelBinary, RunSpec
from harness.models.zoo import EXAMPLE_DIR

SHARED = Path(__file__).resolve().parents[2] / "shared" / "models"


def binary(path: Path) -> ModelBinary:
    data = path.read_bytes()
    return ModelBinary(path.stem, hashlib.sha256(data).hexdigest(), data)


def measure(kind: str, models: list[Path]) -> dict[str, dict]:
    settings = {"backend": "ref"} if kind == "qemu" else registry.driver(kind).default_settings() or {}
    dev = registry.create(kind, kind, settings)  # qemu: the reference backend (qemu_backends.py compares)
    dev.open()
    out = {}
    try:
        info = dev.info()
        for path in models:
            dep = dev.deploy(binary(path))
            shape = dev._alloc_or_fail().inputs[0].shape  # type: ignore[attr-defined]
            x = np.zeros(shape, np.int8)
            r = dev.run(RunSpec(warmup=1, iterations=3, timing_input=x))
            ns = float(np.median(r.latency_ns))
            row = {"arena": dep.arena_bytes, "latency_us": ns / 1e3,
                   "cycles": ns * 1e-9 * (info.clock_hz or 0)}  # fmt: skip
            if kind == "qemu":
                row["instructions"] = float(np.median(r.details["instructions"]))
            out[path.stem] = row
    finally:
        dev.close()
    return out


def image_size() -> dict[str, int]:
    elf = qemu.locate_image(qemu.QemuSettings(backend="ref"))
    text, data, bss = (int(v) for v in subprocess.run(["arm-none-eabi-size", str(elf)], capture_output=True,
                                                      text=True, check=True).stdout.splitlines()[1].split()[:3])
    buffers = 0x100000 + 0x200000  # the model buffer and the arena (NOLOAD, counted in bss)
    return {"text": text, "data": data, "bss": bss, "bss_without_model_and_arena": bss - buffers}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-sim", action="store_true", help="skip the simulator column")
    ap.add_argument("--examples", action="store_true", help="also micro_speech and person_detect")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    models = sorted(EXAMPLE_DIR.glob("*.tflite"))
    if args.examples:
        models += [SHARED / f"{n}.tflite" for n in ("micro_speech_quantized", "person_detect")
                   if (SHARED / f"{n}.tflite").exists()]
    q = measure("qemu", models)
    s = {} if args.no_sim else measure("sim", models)
    size = image_size()
    if args.json:
        print(json.dumps({"qemu": q, "sim": s, "image": size}, indent=2))
        return
    print(f"{'variant':34} {'QEMU instr/inf':>15} {'QEMU arena B':>13} {'sim est. cycles':>16} {'sim arena B':>12}")
    for name, row in q.items():
        sim = s.get(name, {})
        print(f"{name:34} {row['instructions']:15,.0f} {row['arena']:13,} {sim.get('cycles', float('nan')):16,.0f} "
              f"{sim.get('arena') or 0:12,}")
    print(f"\nQEMU image (ref backend): text {size['text']:,} B, data {size['data']:,} B, bss {size['bss']:,} B "
          f"({size['bss_without_model_and_arena']:,} B without the 1 MiB model buffer and 2 MiB arena)")


if __name__ == "__main__":
    main()

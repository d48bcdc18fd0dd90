"""What the ssh driver costs over loopback SSH, against this machine's `local` driver.

1. Set-up and per-cell overhead: connect + authenticate, open() (connect, working directory, agent
   upload, agent start with the runtime import), a JSON round trip to the agent, an SFTP upload of a
   300 KB model (person_detect), and deploy() of the digits model (upload + load) next to `local`'s.
2. Fairness of the timing: the agent's median per-inference latency over the `local` driver's, on the
   same model on the same machine, in interleaved rounds (ABAB...) so drift hits both alike. Goal <= 1.05.

    python benchmarks/ssh_overhead.py [--rounds 11] [--iterations 20000] [--repeats 20]

A 2 µs model needs long runs: at 2000 invokes a round lasts 4 ms and one scheduler hiccup on a shared
machine moves a median by 40 %; at 20000 the rounds agree within a few per cent.

Needs openssh-server (scripts/install --test) and root, as the tests do: it starts a private sshd.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from devices.base import ModelBinary, RunSpec
from devices.local import LocalDevice, LocalSettings
from devices.ssh import SshDevice, SshSettings
from devices.ssh_connect import connect
from devices.ssh_loopback import loopback_sshd
from harness.models.tflite_file import read_model
from harness.models.zoo import EXAMPLE_DIR
from harness.stats import summarize_ns

SHARED = Path(__file__).resolve().parents[2] / "shared" / "models"
RATIO_MODELS = [EXAMPLE_DIR / "digits_dense.tflite", SHARED / "micro_speech_quantized.tflite"]
BIG_MODEL = SHARED / "person_detect.tflite"


def binary(path: Path) -> ModelBinary:
    mf = read_model(path)
    return ModelBinary(name=path.stem, sha256=mf.sha256, data=mf.data)


def ms_stats(fn: Callable[[], object], repeats: int) -> str:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return (f"median {statistics.median(times):8.2f} ms  spread {min(times):.2f}–{max(times):.2f} ms  "
            f"n={repeats}")


def overheads(settings: SshSettings, repeats: int) -> None:
    target, auth = settings.target("bench"), settings.auth()

    def connect_close() -> None:
        connect(target, auth, timeout=5, attempts=1, keepalive=0, device="bench").close()

    def open_close() -> None:
        device = SshDevice("bench", settings)
        device.open()
        device.close()

    print("per-cell overhead over loopback SSH")
    print(f"  {'connect + auth':<24} {ms_stats(connect_close, repeats)}")
    print(f"  {'open (agent start)':<24} {ms_stats(open_close, max(repeats // 4, 3))}")
    device = SshDevice("bench", settings)
    device.open()
    session = device._session
    assert session is not None
    big = BIG_MODEL.read_bytes()
    digits = binary(RATIO_MODELS[0])
    local = LocalDevice("host", LocalSettings())
    local.open()
    local.deploy(digits)  # pays LiteRT's one-time set-up, as the agent does on its first load
    steps: list[tuple[str, Callable[[], object]]] = [
        ("agent round trip", lambda: session.request({"op": "ping"}, step="ping", timeout=10)),
        (f"SFTP {len(big) // 1024} KB model", lambda: session.upload("big.tflite", big)),
        ("deploy digits (ssh)", lambda: device.deploy(digits)),
        ("deploy digits (local)", lambda: local.deploy(digits)),
    ]
    try:
        for label, fn in steps:
            print(f"  {label:<24} {ms_stats(fn, repeats)}")
    finally:
        device.close()
        local.close()


def ratios(settings: SshSettings, rounds: int, iterations: int, warmup: int) -> None:
    print(f"\nagent median / local median, interleaved, {rounds} rounds × {iterations} invokes per driver")
    print(f"  {'model':<26} {'local µs':>9} {'ssh µs':>9} {'ratio':>7} {'ratio range':>15}")
    device = SshDevice("bench", settings)
    device.open()
    local = LocalDevice("host", LocalSettings())
    local.open()
    spec = RunSpec(warmup=warmup, iterations=iterations)
    try:
        for path in RATIO_MODELS:
            model = binary(path)
            device.deploy(model)
            local.deploy(model)
            ours, theirs, rs = [], [], []
            for i in range(rounds):
                # Alternate which goes first, so neither always runs on a freshly idle core.
                runs = [("ssh", device), ("local", local)] if i % 2 == 0 else [("local", local), ("ssh", device)]
                medians = {name: summarize_ns(d.run(spec).latency_ns).p50_us for name, d in runs}
                ours.append(medians["ssh"])
                theirs.append(medians["local"])
                rs.append(medians["ssh"] / medians["local"])
            print(f"  {path.stem:<26} {statistics.median(theirs):9.2f} {statistics.median(ours):9.2f} "
                  f"{statistics.median(rs):7.3f} {min(rs):7.3f}–{max(rs):.3f}  n={rounds}×{iterations}")
    finally:
        device.close()
        local.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--iterations", type=int, default=20000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=20, help="samples per overhead figure")
    args = parser.parse_args()
    with loopback_sshd() as server:
        entry = server.device("bench")
        settings = SshSettings(**{k: v for k, v in entry.items() if k not in ("name", "kind")})
        overheads(settings, args.repeats)
        ratios(settings, args.rounds, args.iterations, args.warmup)


if __name__ == "__main__":
    main()

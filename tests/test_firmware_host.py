"""The portable firmware on the host: C unit tests (ASan/UBSan), the cross builds for a Cortex-M0+ and a
RISC-V rv32imc, the Cortex-M dev-board image, and libFuzzer over the frame parser, the dispatcher and
the model reader for a short fixed budget (`scripts/fuzz-firmware` runs them longer)."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from devices.mcu import messages as m
from devices.mcu.framing import crc32, encode_frame

ROOT = Path(__file__).resolve().parents[1]
HOST = ROOT / "firmware" / "host"
FAMILY = ROOT / "harness" / "models" / "data" / "digits"
#: Seconds per fuzz target in the test suite (CI budget); scripts/fuzz-firmware takes longer.
FUZZ_SECONDS = int(os.environ.get("BENCH_FUZZ_SECONDS", "15"))


def make(build: Path, *targets: str) -> None:
    subprocess.run(["make", "-s", "-C", str(HOST), f"BUILD={build}", *targets], check=True, timeout=600)


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a host C compiler")
def test_unit_tests_pass_under_sanitizers(tmp_path: Path) -> None:
    make(tmp_path, "test")


@pytest.mark.skipif(not (shutil.which("arm-none-eabi-gcc") and shutil.which("riscv64-unknown-elf-gcc")),
                    reason="needs gcc-arm-none-eabi and gcc-riscv64-unknown-elf")
def test_portable_parts_build_for_cortex_m0plus_and_rv32imc(tmp_path: Path) -> None:
    make(tmp_path, "cross")
    assert (tmp_path / "libbench_m0plus.a").stat().st_size > 0
    assert (tmp_path / "libbench_rv32imc.a").stat().st_size > 0


@pytest.mark.skipif(not (shutil.which("cmake") and shutil.which("arm-none-eabi-gcc")), reason="needs cmake, arm gcc")
def test_nucleo_l476rg_image_builds(tmp_path: Path) -> None:
    from devices import firmware

    elf = firmware.build("nucleo-l476rg", tmp_path / "nucleo")
    assert elf.is_file()


def session_seed() -> bytes:
    """A whole valid session as the host would send it: the fuzzer mutates from here."""
    model = (FAMILY / "digits_dense.tflite").read_bytes()
    frames = [encode_frame(m.Cmd.HELLO, 0, 1, 0, struct.pack("<HH", 1, 1)),
              encode_frame(m.Cmd.UPLOAD_BEGIN, 0, 2, 0, struct.pack("<II", len(model), crc32(model)))]
    seq = 3
    for off in range(0, len(model), 1020):
        frames.append(encode_frame(m.Cmd.UPLOAD_CHUNK, 0, seq, 0, struct.pack("<I", off) + model[off : off + 1020]))
        seq += 1
    frames += [encode_frame(m.Cmd.UPLOAD_END, 0, seq, 0, b""),
               encode_frame(m.Cmd.ALLOCATE, 0, seq + 1, 0, struct.pack("<I", 0)),
               encode_frame(m.Cmd.SET_INPUT, 0, seq + 2, 0, struct.pack("<BBI", 0, 0, 0) + bytes(64)),
               encode_frame(m.Cmd.INVOKE, 0, seq + 3, 0, struct.pack("<IIB3x", 2, 1, 3)),
               encode_frame(m.Cmd.GET_CYCLES, 0, seq + 4, 0, struct.pack("<IH", 0, 2)),
               encode_frame(m.Cmd.GET_OUTPUT, 0, seq + 5, 0, struct.pack("<BBIH", 0, 0, 0, 10)),
               encode_frame(m.Cmd.GET_PROFILE, 0, seq + 6, 0, struct.pack("<HH", 0, 8))]  # fmt: skip
    return b"\x00" + b"".join(frames)


def fuzz(binary: Path, corpus: Path, seconds: int, max_len: int) -> None:
    r = subprocess.run([str(binary), f"-max_total_time={seconds}", f"-max_len={max_len}", "-print_final_stats=1",
                        str(corpus)], capture_output=True, text=True, timeout=seconds + 120)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Done" in r.stderr


@pytest.mark.fuzz
@pytest.mark.skipif(shutil.which("clang") is None, reason="needs clang with libFuzzer (libclang-rt-14-dev)")
def test_fuzzing_finds_no_crash(tmp_path: Path) -> None:
    make(tmp_path, "fuzz")
    proto = tmp_path / "corpus-proto"
    proto.mkdir()
    (proto / "session").write_bytes(session_seed())
    (proto / "garbage").write_bytes(b"\x55\xaa\x00\x01\x02\x00" + bytes(300))
    fuzz(tmp_path / "fuzz_proto", proto, FUZZ_SECONDS, 40000)
    models = tmp_path / "corpus-model"
    models.mkdir()
    for path in (FAMILY / "digits_dense.tflite", FAMILY / "digits_channel-50w.tflite"):
        shutil.copy(path, models)
    fuzz(tmp_path / "fuzz_model", models, FUZZ_SECONDS, 30000)

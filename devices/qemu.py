"""The `qemu` device: the bench firmware on an emulated Cortex-M4 board, with a chosen backend.

`backend` = ref (our C reference kernels), tflm (TFLite Micro, reference kernels) or tflm-cmsis-nn
(TFLite Micro with CMSIS-NN; the default when its offline tree is present). open() takes the image
for that backend from the build cache (firmware.image: built once per hash of its inputs), or
`image` as given, starts

    qemu-system-arm -M mps2-an386 -kernel bench_fw.elf -icount shift=N,sleep=off
        -serial tcp:127.0.0.1:PORT,server=on,wait=on,nodelay=on -display none -monitor none

and talks to it through the same serial client and driver as a real board (socket://). QEMU has no
cycle counter; the firmware times with a 25 MHz timer that, under -icount, advances exactly 2^N ns
per guest instruction. Latency is therefore instruction-count time — deterministic, flagged
"emulated", and not the cycles of a real Cortex-M4 — and `instructions` = latency_ns / 2^N.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import select
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from benchcore.errors import DeviceError
from devices import firmware
from devices.base import DeviceInfo, RunResult, RunSpec
from devices.mcu.driver import McuDevice, ProtocolSettings
from devices.registry import DeviceSettings, DriverSpec

QEMU = "qemu-system-arm"
MACHINE = "mps2-an386"
#: Environment variable naming a prebuilt image (skips the build).
IMAGE_ENV = "BENCH_QEMU_IMAGE"


class QemuSettings(DeviceSettings):
    #: ref | tflm | tflm-cmsis-nn; default: tflm-cmsis-nn when ../shared/third_party has its tree.
    backend: Literal["ref", "tflm", "tflm-cmsis-nn"] | None = None
    #: A create_tflm_tree.py tree overriding the offline one for a TFLM backend.
    tflm_dir: Path | None = None
    #: A prebuilt firmware ELF; default: build firmware/ports/cortex-m for qemu-mps2-an386.
    image: Path | None = None
    build_dir: Path | None = None
    #: Find the true minimum working arena on the target by a search over ALLOCATE with a limit.
    arena_search: bool = True
    #: -icount shift: 2^N ns per instruction. 5 (32 ns, ~31 MIPS) is close to a 25 MHz Cortex-M4 and
    #: gives the 25 MHz timer better than one-instruction resolution.
    icount_shift: int = Field(5, ge=0, le=10)
    #: -icount sleep=on: an idle guest (WFI) waits in real time instead of QEMU warping virtual time
    #: at full CPU. Busy time is instruction count either way; bench's own firmware aligns to the
    #: timer with WFI and wants sleep=off (no real time passes), MLPerf firmwares do not.
    icount_sleep: bool = False
    #: -icount align=on (with sleep=on): QEMU holds the guest to real time at its nominal speed, so
    #: virtual seconds are wall seconds too (for host-side tools that time runs by the wall clock).
    icount_align: bool = False
    qemu: str = QEMU
    #: icount time is deterministic, so a few timed inferences say everything: the sweep's
    #: iterations and warm-up are capped here to keep the default sweep short.
    max_iterations: int = Field(5, ge=1)
    max_warmup: int = Field(1, ge=0)
    #: Per-attempt answer timeout: large, as emulated inferences of big models take real seconds.
    timeout_s: float = Field(20.0, gt=0)
    retries: int = Field(2, ge=0)
    op_profile: bool = True
    #: Emulation is deterministic: the outputs of a model on a set of samples, once measured in this
    #: session, are replayed for the sweep's further repeats instead of emulated again (flagged).
    replay_outputs: bool = True
    trace: bool = False
    startup_timeout_s: float = Field(10.0, gt=0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def qemu_command(s: QemuSettings, image: Path, port: int) -> list[str]:
    return [
        s.qemu, "-M", MACHINE, "-kernel", str(image), "-display", "none", "-monitor", "none",
        "-icount", f"shift={s.icount_shift},sleep={'on' if s.icount_sleep or s.icount_align else 'off'}"
        + (",align=on" if s.icount_align else ""), "-nodefaults",
        "-serial", f"tcp:127.0.0.1:{port},server=on,wait=on,nodelay=on",
    ]  # fmt: skip


def backend_of(s: QemuSettings) -> str:
    return firmware.check_backend(s.backend) if s.backend else firmware.default_backend()


#: Images found in this process, per (backend, tree, build dir): hashing the inputs once is enough.
_IMAGES: dict[tuple[str, str, str], firmware.Image] = {}


def locate(s: QemuSettings) -> firmware.Image:
    """The given image, $BENCH_QEMU_IMAGE, or the cached build for the backend (built on a miss)."""
    explicit = s.image or (Path(os.environ[IMAGE_ENV]) if os.environ.get(IMAGE_ENV) else None)
    if explicit is not None:
        if not explicit.is_file():
            raise DeviceError("qemu", "open", f"firmware image {explicit} does not exist.",
                              hint="Build it with `bench firmware build --board qemu-mps2-an386`.")  # fmt: skip
        return firmware.Image(explicit, firmware.QEMU_BOARD, s.backend, None, None, firmware.elf_sizes(explicit))
    backend = backend_of(s)
    built = (s.build_dir or firmware.default_build_dir(firmware.QEMU_BOARD, backend)) / "bench_fw.elf"
    if built.is_file() and firmware.missing_tools("cortex-m"):
        # a previous build, and no toolchain here to refresh it
        return firmware.Image(built, firmware.QEMU_BOARD, backend, None, None, {})
    key = (backend, str(s.tflm_dir or ""), str(s.build_dir or ""))
    if key not in _IMAGES or not _IMAGES[key].path.is_file():
        try:
            _IMAGES[key] = firmware.image(firmware.QEMU_BOARD, backend, tflm_dir=s.tflm_dir, build_dir=s.build_dir)
        except firmware.FirmwareError as exc:
            raise DeviceError("qemu", "open", exc.message, hint=exc.hint) from None
    return _IMAGES[key]


def locate_image(s: QemuSettings) -> Path:
    return locate(s).path


class QemuProcess:
    """One QEMU process: started, waiting for our connection, stopped."""

    def __init__(self, name: str, settings: QemuSettings, image: Path, log) -> None:
        self.name, self.settings, self.image, self.log = name, settings, image, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.port: int | None = None

    def start(self) -> str:
        last = ""
        for _ in range(3):  # the port is picked before QEMU binds it: retry if someone took it
            self.port = _free_port()
            cmd = qemu_command(self.settings, self.image, self.port)
            self.log.debug("starting %s", " ".join(cmd))
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE)  # fmt: skip
            last = self._wait_listening()
            if "waiting for connection" in last:
                return f"socket://127.0.0.1:{self.port}"
            self.stop()
        raise DeviceError(self.name, "open", f"QEMU did not start: {last.strip()[-300:] or 'no output'}",
                          hint=f"Run `{' '.join(qemu_command(self.settings, self.image, 4444))}` by hand.")

    def _wait_listening(self) -> str:
        assert self.proc is not None and self.proc.stderr is not None
        fd = self.proc.stderr.fileno()
        out = b""
        deadline = time.monotonic() + self.settings.startup_timeout_s
        while b"waiting for connection" not in out and time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.05)
            if ready:
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                out += chunk
            elif self.proc.poll() is not None:
                break
        return out.decode("utf-8", "replace")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=3)
        if proc.stderr:
            with contextlib.suppress(OSError):
                proc.stderr.close()


class QemuLink:
    """The link a QEMU board provides: locate the firmware image, start QEMU on it, hand back its socket."""

    baud = None  # socket://: no wire time to budget

    def __init__(self, name: str, settings: QemuSettings, log) -> None:
        self.name, self.settings, self.log = name, settings, log
        self.image: Path | None = None
        self.firmware_image: firmware.Image | None = None
        self._qemu: QemuProcess | None = None

    def start(self) -> str:
        try:
            self.firmware_image = locate(self.settings)
            self.image = self.firmware_image.path
        except firmware.FirmwareError as exc:
            raise DeviceError(self.name, "open", exc.message, hint=exc.hint) from None
        self._qemu = QemuProcess(self.name, self.settings, self.image, self.log)
        return self._qemu.start()

    def stop(self) -> None:
        if self._qemu is not None:
            self._qemu.stop()
            self._qemu = None


class QemuDevice(McuDevice):
    kind = "qemu"

    def __init__(self, name: str, settings: QemuSettings) -> None:
        s = settings
        protocol = ProtocolSettings(timeout_s=s.timeout_s, retries=s.retries, trace=s.trace, op_profile=s.op_profile,
                                    arena_search=s.arena_search, replay_outputs=s.replay_outputs)  # fmt: skip
        self.qemu_link = QemuLink(name, settings, logging.getLogger(f"bench.device.{name}"))
        super().__init__(name, protocol, link=self.qemu_link)
        self.qemu_settings = settings
        self.image: Path | None = None
        self.firmware_image: firmware.Image | None = None

    def open(self) -> None:
        super().open()  # the link finds the image and starts QEMU; on failure it is stopped again
        self.firmware_image = self.qemu_link.firmware_image
        self.image = self.firmware_image.path if self.firmware_image is not None else None

    def run(self, spec: RunSpec) -> RunResult:
        s = self.qemu_settings
        capped = dataclasses.replace(spec, iterations=min(spec.iterations, s.max_iterations),
                                     warmup=min(spec.warmup, s.max_warmup), min_seconds=0.0,
                                     max_iterations=min(spec.max_iterations, s.max_iterations))  # fmt: skip
        result = super().run(capped)
        ns_per_insn = float(2**s.icount_shift)
        details = dict(result.details)
        details.update(icount_shift=s.icount_shift, instructions=[float(x) / ns_per_insn for x in result.latency_ns],
                       **self._identity())  # fmt: skip
        if spec.iterations > capped.iterations or spec.warmup > capped.warmup:
            details["iteration_cap"] = {
                "cap": s.max_iterations, "warmup_cap": s.max_warmup,
                "reason": f"qemu runs at most max_iterations = {s.max_iterations} timed inferences (warm-up "
                          f"{s.max_warmup}) per repeat: -icount time is deterministic, more would repeat the figure"}
        return dataclasses.replace(result, details=details,
                                   timing_method=f"QEMU -icount shift={s.icount_shift}: instruction-count time "
                                                 f"(2^{s.icount_shift} ns per instruction), 25 MHz timer")  # fmt: skip

    def _identity(self) -> dict[str, Any]:
        """Backend name and TFLM commit, as the firmware itself reports them in HELLO."""
        hi = self.client.info if self.client is not None else None
        if hi is None:
            raise DeviceError(self.name, "info", "device is not open", hint="Call open() first.")
        fw = self.firmware_image
        backend = (fw.backend if fw and fw.backend else None) or {"bench-ref": "ref"}.get(hi.backend, hi.backend)
        commit = hi.backend_version if backend.startswith("tflm") else None
        return {"backend": backend, "tflm_commit": commit}

    def info(self) -> DeviceInfo:
        base = super().info()
        details = dict(base.details)
        fw = self.firmware_image
        details.update(emulated=True, machine=MACHINE, icount_shift=self.qemu_settings.icount_shift,
                       image=str(self.image), qemu=self.qemu_settings.qemu, **self._identity(),
                       image_sizes=fw.sizes if fw else {}, image_hash=fw.input_hash if fw else None)  # fmt: skip
        return dataclasses.replace(base, kind=self.kind, details=details)


def unavailable_reason() -> str | None:
    """None only when QEMU is here and so is the image (or the toolchain to build it)."""
    if shutil.which(QEMU) is None:
        return f"{QEMU} not found (apt-get install --no-install-recommends qemu-system-arm)"
    if os.environ.get(IMAGE_ENV):
        return None if Path(os.environ[IMAGE_ENV]).is_file() else f"${IMAGE_ENV} does not exist"
    if (firmware.default_build_dir(firmware.QEMU_BOARD, firmware.default_backend()) / "bench_fw.elf").is_file():
        return None
    if not firmware.CORTEX_M.is_dir():
        return "the firmware sources are not here (installed without the repository); set $BENCH_QEMU_IMAGE"
    missing = firmware.missing_tools("cortex-m")
    return f"cannot build the QEMU image: {', '.join(missing)} not found" if missing else None


DRIVER = DriverSpec(
    kind="qemu",
    summary="The bench C firmware on QEMU's mps2-an386 (Cortex-M4), instruction-count (emulated) timing.",
    settings=QemuSettings,
    create=QemuDevice,
    unavailable_reason=unavailable_reason,
    default_settings=lambda: {},
)

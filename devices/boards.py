"""The boards bench builds its firmware for: one record each, saying everything building and flashing need.

A board belongs to a port (the firmware tree and build system it uses: `cortex-m` with CMake, `esp32` with
ESP-IDF). What differs between boards of one port (the chip a debug probe must be told, the bootloader's
offset) lives here as data, so `devices.firmware` never branches on a board's name. A new board of an
existing port is one `register` call (or entry below) plus its linker script and board.c under
firmware/ports/<port>/boards/<name>/.
"""

from __future__ import annotations

from dataclasses import dataclass

from benchcore.errors import ConfigError


@dataclass(frozen=True)
class Board:
    name: str
    #: The port it builds with: a key of `devices.firmware.PORTS`.
    port: str
    #: An emulator has nothing to flash (the `qemu` device starts it with the image).
    emulator: bool = False
    #: `pyocd flash -t <target>` (a CMSIS-DAP / ST-LINK probe).
    pyocd_target: str | None = None
    #: `probe-rs download --chip <chip>`: probe-rs names chips by their full part number.
    probe_rs_chip: str | None = None
    #: `esptool --chip <chip>` and where ESP-IDF's second-stage bootloader goes in flash.
    esp_chip: str | None = None
    bootloader_offset: str | None = None


BOARDS: dict[str, Board] = {
    b.name: b
    for b in (
        Board("qemu-mps2-an386", "cortex-m", emulator=True),
        Board("nucleo-l476rg", "cortex-m", pyocd_target="stm32l476rg", probe_rs_chip="STM32L476RGTx"),
        # ESP-IDF's default layout: the bootloader at 0x1000 on the ESP32, at 0x0 on the S3.
        Board("esp32", "esp32", esp_chip="esp32", bootloader_offset="0x1000"),
        Board("esp32s3", "esp32", esp_chip="esp32s3", bootloader_offset="0x0"),
    )
}


def register(b: Board) -> None:
    """Add (or replace) a board from outside this module: a lab's own board, a test."""
    BOARDS[b.name] = b


def board(name: str) -> Board:
    if name not in BOARDS:
        raise ConfigError(f"unknown board {name!r}.", hint=f"Known boards: {', '.join(BOARDS)}.")
    return BOARDS[name]

"""Boards are data: each flash command comes from the board's own record, never from its name."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from benchcore.errors import ConfigError
from devices import boards, firmware
from devices.boards import Board


@pytest.fixture
def tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Put fake executables of the given names (and only those, plus nice) on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    ran: list[list[str]] = []
    monkeypatch.setattr(firmware, "_run", lambda cmd, step, cwd=None: ran.append(cmd))

    def install(*names: str) -> list[list[str]]:
        for name in names:
            exe = bin_dir / name
            exe.write_text("#!/bin/sh\nexit 0\n")
            exe.chmod(0o755)
        return ran

    return install


@pytest.fixture
def elf(tmp_path: Path) -> Path:
    path = tmp_path / "bench_fw.elf"
    path.write_bytes(b"\x7fELF")
    return path


def test_probe_rs_gets_the_boards_own_chip(tools, elf: Path) -> None:
    ran = tools("probe-rs")
    cmd = firmware.flash("nucleo-l476rg", elf)
    assert Path(cmd[0]).name == "probe-rs" and cmd[1:] == ["download", "--chip", "STM32L476RGTx", str(elf)]
    assert ran == [cmd]


def test_pyocd_comes_first_with_the_boards_target(tools, elf: Path) -> None:
    tools("pyocd", "probe-rs")
    cmd = firmware.flash("nucleo-l476rg", elf, "0669FF")
    assert Path(cmd[0]).name == "pyocd" and cmd[1:] == ["flash", "-t", "stm32l476rg", "-u", "0669FF", str(elf)]


def test_a_board_without_a_chip_for_the_tool_on_path_is_refused_by_name(tools, elf: Path) -> None:
    boards.register(Board("acme-m33", "cortex-m", pyocd_target="acme_m33"))
    try:
        tools("probe-rs")
        with pytest.raises(firmware.FirmwareError, match=r"acme-m33.*probe-rs chip None") as err:
            firmware.flash("acme-m33", elf)
        assert "probe_rs_chip" in (err.value.hint or "")
    finally:
        boards.BOARDS.pop("acme-m33")


def test_a_registered_board_flashes_without_editing_firmware(tools, elf: Path) -> None:
    boards.register(Board("acme-m33", "cortex-m", probe_rs_chip="ACME33xx"))
    try:
        tools("probe-rs")
        assert firmware.flash("acme-m33", elf)[-3:] == ["--chip", "ACME33xx", str(elf)]
    finally:
        boards.BOARDS.pop("acme-m33")


@pytest.mark.parametrize(("name", "offset"), [("esp32", "0x1000"), ("esp32s3", "0x0")])
def test_esptool_gets_each_chip_and_its_bootloader_offset(tools, tmp_path: Path, name: str, offset: str) -> None:
    tools("esptool")
    cmd = firmware.flash(name, tmp_path / "app.bin", "/dev/ttyUSB0")
    assert cmd[1:5] == ["--chip", name, "-p", "/dev/ttyUSB0"]
    assert cmd[cmd.index("write_flash") + 1] == offset
    assert cmd[-1] == str(tmp_path / "app.bin")


def test_an_emulator_has_nothing_to_flash(tools) -> None:
    with pytest.raises(ConfigError, match="emulator"):
        firmware.flash(firmware.QEMU_BOARD)


def test_an_unknown_board_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="unknown board 'pico'") as err:
        firmware.flash("pico")
    assert all(name in (err.value.hint or "") for name in boards.BOARDS)


def test_missing_tools_name_what_to_install(tools) -> None:
    with pytest.raises(firmware.FirmwareError, match="neither pyocd nor probe-rs"):
        firmware.flash("nucleo-l476rg", Path(os.devnull))
    with pytest.raises(firmware.FirmwareError, match="cmake, arm-none-eabi-gcc not found") as err:
        firmware.build("nucleo-l476rg")
    assert "gcc-arm-none-eabi" in (err.value.hint or "")
    with pytest.raises(firmware.FirmwareError, match=r"idf\.py not found"):
        firmware.build("esp32s3")


def test_a_missing_image_says_to_build_first(tools, tmp_path: Path) -> None:
    tools("probe-rs")
    with pytest.raises(ConfigError, match="does not exist") as err:
        firmware.flash("nucleo-l476rg", tmp_path / "nope.elf")
    assert "bench firmware build --board nucleo-l476rg" in (err.value.hint or "")

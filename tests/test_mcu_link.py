"""Exclusive access to a board: a second bench process gets a clear "board busy" error."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import tty
from pathlib import Path

import pytest

from devices.mcu.driver import McuDevice, SerialSettings
from devices.mcu.link import PortLock, lock_key, lock_path, open_link
from harness.errors import DeviceBusyError

REPO = Path(__file__).resolve().parents[1]


def test_lock_key_resolves_symlinks_and_normalises_urls(tmp_path: Path) -> None:
    tty = tmp_path / "ttyUSB7"
    tty.touch()
    (tmp_path / "by-id").symlink_to(tty)
    assert lock_key(str(tmp_path / "by-id")) == lock_key(str(tty))
    assert lock_path("socket://127.0.0.1:4000?logging=debug") == lock_path("SOCKET://127.0.0.1:4000")
    assert lock_path("socket://127.0.0.1:4000") != lock_path("socket://127.0.0.1:4001")


def test_board_busy_in_another_process_names_its_pid() -> None:
    port = "socket://127.0.0.1:9"  # never connected: the lock is taken before the link opens
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys
            from devices.mcu.link import PortLock
            PortLock("other", {port!r}).acquire()
            print("locked", flush=True)
            sys.stdin.read()
        """)],
        cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        device = McuDevice("board-a", SerialSettings(port=port))
        with pytest.raises(DeviceBusyError, match=rf"board busy: held by pid {holder.pid}"):
            device.open()
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)
    # Released with its holder: now it can be taken.
    lock = PortLock("board-a", port)
    lock.acquire()
    lock.release()


def test_local_tty_is_opened_exclusively() -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    try:
        link = open_link("first", path, 115200)
        try:
            # Even a process that skips the lock file is refused by pyserial's flock on the tty.
            with pytest.raises(DeviceBusyError, match="board busy"):
                open_link("second", path, 115200)
        finally:
            link.close()
    finally:
        os.close(master)
        os.close(slave)

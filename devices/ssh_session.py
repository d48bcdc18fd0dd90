"""The agent on the board: a private working directory, the agent files uploaded by SFTP, and one
long-lived agent process spoken to in JSON lines over the SSH channel's stdin/stdout.

Nothing a user names (model names, settings) is pasted into a shell line: files get generated names
and go up by SFTP, data goes over stdin, and the two commands that are run (make the directory, start
the agent) have every argument passed through shlex.quote. Every wait has a deadline.
"""

from __future__ import annotations

import collections
import json
import logging
import shlex
import stat
import threading
import time
from typing import Any

import paramiko

from benchcore.errors import DeviceError, DeviceTimeoutError
from devices.agent import ENTRY_POINT, agent_sources
from devices.ssh_connect import Connection

log = logging.getLogger(__name__)

READY_LINE = b"bench-agent ready\n"  # the agent's first line (devices/agent/bench_agent.py)
#: Made with mkdtemp on the board: unique, owner-only. The agent removes only directories so named.
WORKDIR_PREFIX = "bench-"

# One line (any login shell takes it quoted); the parent directory arrives as argv[1], never as code.
_BOOTSTRAP = (
    "import json,os,sys,tempfile;"
    "p=os.path.expanduser(sys.argv[1]) if sys.argv[1] else None;"
    f"d=tempfile.mkdtemp(prefix={WORKDIR_PREFIX!r},dir=p);"
    "sys.stdout.write(json.dumps({'workdir':d,'python':list(sys.version_info[:3])}))"
)
_STDERR_TAIL = 4000


class SessionLost(Exception):
    """The connection or the agent went away; the device may reconnect and try once more."""


def remote_program(path: str) -> str:
    """Quote a program path for the board's shell, keeping a leading `~/` meaning the home directory."""
    if path.startswith("~/"):
        return '"$HOME"/' + shlex.quote(path[2:])
    return shlex.quote(path)


def _command(program: str, *args: str) -> str:
    return " ".join([remote_program(program), *(shlex.quote(a) for a in args)])


class AgentSession:
    """One working directory and one agent process on the board, over one SSH connection."""

    def __init__(self, conn: Connection, *, device: str, python: str, remote_dir: str, timeout: float) -> None:
        self.conn = conn
        self.device = device
        self.python = python
        self.remote_dir = remote_dir
        self.timeout = timeout
        self.workdir: str | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self._chan: paramiko.Channel | None = None
        self._stdout = b""
        self._stderr: collections.deque[bytes] = collections.deque()
        self._stderr_len = 0
        self._stderr_lock = threading.Lock()
        self._agent_pid: int | None = None

    @property
    def running(self) -> bool:
        return self._chan is not None and not self._chan.closed

    # -- set-up ------------------------------------------------------------------------------------

    def start(self, hello: dict[str, Any]) -> dict[str, Any]:
        """Make the working directory, upload the agent, start it and say hello; returns its answer."""
        try:
            status, out, err = self._exec(_command(self.python, "-B", "-c", _BOOTSTRAP, self.remote_dir))
            if status != 0:
                raise DeviceError(
                    self.device, "open",
                    f"could not start {self.python!r} on the board (exit {status}): {_text(err)[-1000:]}",
                    hint="Set the device's `python` to the board's Python 3.7+ interpreter (default python3), "
                         "and `remote_dir` to a writable directory if the board's temp dir is not.")
            try:  # the last line: a chatty rc file on the board may print before python does
                boot = json.loads((out.strip().splitlines() or [b"{}"])[-1])
                version, workdir = tuple(boot["python"]), str(boot["workdir"])
            except (ValueError, KeyError, TypeError):
                raise DeviceError(self.device, "open", f"{self.python!r} on the board did not answer as Python 3 "
                                  f"does: {_text(out)[-300:]!r} {_text(err)[-300:]}",
                                  hint="Set the device's `python` to the board's Python 3.7+.") from None
            self.workdir = workdir
            if version < (3, 7):
                raise DeviceError(self.device, "open", f"the board's Python is {version}; the agent needs 3.7+",
                                  hint="Point `python` at a newer interpreter.")
            sftp = self._sftp_client()
            for name, data in agent_sources().items():
                self._put(sftp, name, data)
            chan = self.conn.transport.open_session(timeout=self.timeout)
            chan.exec_command(_command(self.python, "-B", f"{self.workdir}/{ENTRY_POINT}"))
            self._chan = chan
            threading.Thread(target=self._drain_stderr, args=(chan,), name=f"ssh-stderr-{self.device}",
                             daemon=True).start()
            while self._read_line(chan, self.timeout, "open") != READY_LINE.rstrip(b"\n"):
                pass  # output of the board's shell start-up files, before the agent's first line
            answer = self.request({**hello, "op": "hello", "workdir": self.workdir,
                                   "remove_workdir_at_exit": True}, step="open", timeout=self.timeout)
            self._agent_pid = int(answer["pid"])
            return answer
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise SessionLost(f"{type(exc).__name__}: {exc}") from None

    def _exec(self, command: str, timeout: float | None = None) -> tuple[int, bytes, bytes]:
        """Run one short command to completion, within the session timeout."""
        timeout = timeout or self.timeout
        chan = self.conn.transport.open_session(timeout=timeout)
        try:
            chan.settimeout(timeout)
            chan.exec_command(command)
            chan.shutdown_write()
            out, err = bytearray(), bytearray()
            deadline = time.monotonic() + timeout
            # Done at EOF, not at the exit status: sshd may send the status before the child's last
            # output has crossed the pipe, and stopping there loses that output.
            while not (chan.exit_status_ready() and chan.eof_received
                       and not chan.recv_ready() and not chan.recv_stderr_ready()):
                if time.monotonic() > deadline:
                    raise DeviceTimeoutError(self.device, "open", f"`{command[:80]}` did not finish within "
                                             f"{timeout:.0f} s; stderr so far: {_text(bytes(err))[-500:]}")
                if chan.recv_ready():
                    out += chan.recv(65536)
                elif chan.recv_stderr_ready():
                    err += chan.recv_stderr(65536)
                else:
                    time.sleep(0.005)
            return chan.recv_exit_status(), bytes(out), bytes(err)
        finally:
            chan.close()

    def _sftp_client(self) -> paramiko.SFTPClient:
        if self._sftp is None:
            self._sftp = self.conn.client.open_sftp()
            self._sftp.get_channel().settimeout(self.timeout)  # type: ignore[union-attr]
        return self._sftp

    def _put(self, sftp: paramiko.SFTPClient, name: str, data: bytes) -> str:
        assert self.workdir is not None
        path = f"{self.workdir}/{name}"
        with sftp.open(path, "wb") as f:
            f.chmod(0o600)
            f.set_pipelined(True)
            f.write(data)
        return path

    def upload(self, name: str, data: bytes) -> str:
        """Put `data` in the working directory under `name` (a generated, shell-safe name); returns the path."""
        try:
            return self._put(self._sftp_client(), name, data)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise SessionLost(f"upload failed: {type(exc).__name__}: {exc}") from None

    # -- requests ----------------------------------------------------------------------------------

    def request(self, req: dict[str, Any], *, step: str, timeout: float) -> dict[str, Any]:
        """Send one request and wait for its answer; an agent's refusal is a DeviceError with its stderr."""
        chan = self._chan
        if chan is None or chan.closed:
            raise SessionLost("the agent is not running")
        try:
            chan.sendall(json.dumps(req, separators=(",", ":")).encode() + b"\n")
            line = self._read_line(chan, timeout, step)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise SessionLost(f"{type(exc).__name__}: {exc}{self._tail_note()}") from None
        try:
            answer = json.loads(line)
        except ValueError:
            raise DeviceError(self.device, step, f"the agent answered garbage: {_text(line)[:200]!r}"
                              f"{self._tail_note()}") from None
        if not answer.get("ok"):
            raise DeviceError(self.device, step, f"the agent reports: {answer.get('error')}{self._tail_note()}",
                              hint=answer.get("install_hint"))
        return answer

    def _read_line(self, chan: paramiko.Channel, timeout: float, step: str) -> bytes:
        deadline = time.monotonic() + timeout
        while b"\n" not in self._stdout:
            left = deadline - time.monotonic()
            if left <= 0:
                self._kill_agent()
                self._abandon()
                raise DeviceTimeoutError(self.device, step, f"no answer from the agent within {timeout:.0f} s"
                                         f"{self._tail_note()}",
                                         hint="Raise command_timeout for long cells; the agent was stopped.")
            chan.settimeout(min(left, 1.0))
            try:
                data = chan.recv(1 << 20)
            except TimeoutError:
                continue
            if not data:
                status = chan.recv_exit_status() if chan.exit_status_ready() else None
                self._abandon()
                what = "the connection dropped" if not self.conn.alive() else f"the agent exited (status {status})"
                raise SessionLost(f"{what} while waiting for an answer{self._tail_note()}")
            self._stdout += data
        line, _, self._stdout = self._stdout.partition(b"\n")
        return line

    def _drain_stderr(self, chan: paramiko.Channel) -> None:
        """Keep reading stderr, or a chatty runtime would fill the SSH window and stall the agent."""
        while True:
            try:
                data = chan.recv_stderr(65536)
            except TimeoutError:
                continue
            except Exception:  # the channel is gone: nothing left to keep
                return
            if not data:
                return
            with self._stderr_lock:
                self._stderr.append(data)
                self._stderr_len += len(data)
                while self._stderr_len > _STDERR_TAIL and len(self._stderr) > 1:
                    self._stderr_len -= len(self._stderr.popleft())

    def stderr_tail(self) -> str:
        with self._stderr_lock:
            return _text(b"".join(self._stderr))[-_STDERR_TAIL:]

    def _tail_note(self) -> str:
        time.sleep(0.05)  # let the last stderr bytes of a dying agent arrive
        tail = self.stderr_tail().strip()
        return f"; agent stderr (tail):\n{tail}" if tail else ""

    def _kill_agent(self) -> None:
        """A stuck agent would outlive its closed channel (no pty, no SIGHUP): end it by pid."""
        if self._agent_pid is None or not self.conn.alive():
            return
        try:
            status, _, err = self._exec(_command("kill", "-KILL", str(self._agent_pid)), timeout=10.0)
            if status != 0:
                log.warning("%s: could not stop the agent: %s", self.device, _text(err).strip())
        except (OSError, EOFError, paramiko.SSHException, DeviceError) as exc:
            log.warning("%s: could not stop the agent: %s", self.device, exc)

    def _abandon(self) -> None:
        if self._chan is not None:
            self._chan.close()
            self._chan = None

    # -- tear-down ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Ask the agent to quit (it removes its directory), then make sure the directory is gone."""
        if self._chan is not None and not self._chan.closed and self.conn.alive():
            try:
                self.request({"op": "quit"}, step="close", timeout=min(self.timeout, 10.0))
                self._chan.status_event.wait(min(self.timeout, 10.0))  # the agent has exited
            except (SessionLost, DeviceError) as exc:
                log.warning("%s: agent did not quit cleanly: %s", self.device, exc)
        self._abandon()
        if self.workdir is not None and self.conn.alive():
            try:
                _sftp_rmtree(self._sftp_client(), self.workdir)
            except (OSError, EOFError, paramiko.SSHException) as exc:
                log.warning("%s: could not remove %s on the board: %s", self.device, self.workdir, exc)
        if self._sftp is not None:
            self._sftp.close()
            self._sftp = None


    def remove_workdir(self, path: str) -> None:
        """Remove an earlier session's working directory (only one named like ours), best effort."""
        if not path.rsplit("/", 1)[-1].startswith(WORKDIR_PREFIX) or not self.conn.alive():
            return
        try:
            _sftp_rmtree(self._sftp_client(), path)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            log.warning("%s: could not remove %s on the board: %s", self.device, path, exc)


def _sftp_rmtree(sftp: paramiko.SFTPClient, path: str) -> None:
    """Remove a directory tree over SFTP (no shell); a directory already gone is fine."""
    try:
        entries = sftp.listdir_attr(path)
    except FileNotFoundError:
        return
    for entry in entries:
        child = f"{path}/{entry.filename}"
        if entry.st_mode is not None and stat.S_ISDIR(entry.st_mode):
            _sftp_rmtree(sftp, child)
        else:
            sftp.remove(child)
    sftp.rmdir(path)


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def blob(array: Any) -> dict[str, Any] | None:
    """A numpy array as the agent reads it: raw bytes in base64 with dtype and shape."""
    import base64

    if array is None:
        return None
    return {"b64": base64.b64encode(array.tobytes()).decode("ascii"), "dtype": array.dtype.str,
            "shape": list(array.shape)}


def unblob(spec: dict[str, Any] | None) -> Any:
    import base64

    import numpy as np

    if spec is None:
        return None
    return np.frombuffer(base64.b64decode(spec["b64"]), dtype=np.dtype(spec["dtype"])).reshape(spec["shape"])


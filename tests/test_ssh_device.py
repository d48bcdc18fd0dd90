"""A Linux board over SSH, played by this machine behind a real OpenSSH server on 127.0.0.1."""

from __future__ import annotations

import ast
import hashlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from devices import registry
from devices.agent import AGENT_FILES
from devices.base import ModelBinary, RunSpec
from devices.registry import DriverSpec
from devices.ssh import SshDevice, SshSettings
from devices.ssh_connect import resolve
from devices.ssh_loopback import SSH_KEYGEN, SshServer, write_known_hosts
from devices.ssh_trust import trust
from harness import results
from harness.config import load_config, parse_config
from harness.errors import ConfigError, DeviceError, DeviceTimeoutError
from harness.models.zoo import EXAMPLE_DIR
from harness.sweep import run_sweep
from tests.conftest import run_bench, write_config
from tests.ssh_fixtures import sshd

__all__ = ["sshd"]  # the session fixture, imported so pytest finds it here

DENSE = EXAMPLE_DIR / "digits_dense.tflite"
#: How long the board's working directories may take to go after a device closes (the agent removes its
#: own at exit): a hang guard, returned from as soon as they are gone; a busy machine takes seconds.
LEFTOVERS_WAIT_S = 60.0


def _config(tmp: Path, server: SshServer, models: list[str], *, repeats: int = 1, **device: Any) -> Any:
    doc = {
        "store": {"url": f"sqlite:///{tmp / 'bench.db'}"},
        "devices": [server.device(**device)],
        "sweep": {"models": models, "repeats": repeats, "iterations": 20, "warmup": 2, "accuracy_samples": 20},
    }
    return parse_config(doc, "test", tmp)


def _device(server: SshServer, **settings: Any) -> SshDevice:
    entry = server.device(**settings)
    name, _ = entry.pop("name"), entry.pop("kind")
    return SshDevice(name, SshSettings(**entry))


# --- the story: a sweep of the bundled family over SSH ----------------------------------------------

def test_a_sweep_over_ssh_stores_every_variant_with_its_provenance(sshd: SshServer, tmp_path: Path) -> None:
    config = _config(tmp_path, sshd, ["example:digits"])
    outcome = run_sweep(config)
    assert outcome.cells_failed == 0 and outcome.status == "complete", outcome
    cells = results.load(outcome.run_id, config.store.url)
    assert len(cells) >= 9 and set(cells["status"]) == {"ok"}
    for _, cell in cells.iterrows():
        details = cell["details"]
        assert len(cell["latency_ns"]) == 20 and cell["latency_source"] == "measured"
        assert cell["ram_bytes"] is not None and details["peak_rss_bytes"] > 0
        assert {"thermal_before", "thermal_after"} <= details.keys()
        assert details["runtime"] == "ai-edge-litert" and details["runtime_version"]
        assert cell["accuracy_n"] == 20 and 0.0 <= cell["accuracy"] <= 1.0
    assert cells.set_index("variant_name").loc["dense", "accuracy"] >= 0.8  # outputs came back intact
    assert set(cells["runtime"]) == {"ai-edge-litert"}  # the device snapshot: the board's identity
    assert sshd.remote_leftovers(wait=LEFTOVERS_WAIT_S) == []


def _board_with_vcgencmd(tmp: Path, throttled: str) -> str:
    """A python for the board whose PATH has a Raspberry Pi firmware tool answering `throttled`."""
    bin_dir = tmp / "board-bin"
    bin_dir.mkdir()
    tool = bin_dir / "vcgencmd"
    tool.write_text(f"""#!/bin/sh
case "$1" in
  get_throttled) echo "throttled={throttled}" ;;
  measure_temp) echo "temp=83.5'C" ;;
  *) exit 1 ;;
esac
""")
    python = bin_dir / "python"
    python.write_text(f'#!/bin/sh\nPATH="{bin_dir}:$PATH" exec "{sys.executable}" "$@"\n')
    for f in (tool, python):
        f.chmod(0o755)
    return str(python)


@pytest.mark.parametrize(("flags", "warned"), [("0x50005", True), ("0x50000", False)])
def test_a_board_that_throttles_in_the_timed_window_is_warned_about(sshd: SshServer, tmp_path: Path,
                                                                    flags: str, warned: bool) -> None:
    from harness.report.data import load_report_data

    # 0x50005: under-voltage and throttling now; 0x50000: only "has happened since boot", before the window
    config = _config(tmp_path, sshd, [str(DENSE)], python=_board_with_vcgencmd(tmp_path, flags))
    outcome = run_sweep(config)
    assert outcome.cells_ok == 1, outcome
    cells = results.load(outcome.run_id, config.store.url)
    assert cells["details"][0]["thermal_after"]["throttled"] == flags  # nested, as the agent reports it
    throttled = [w for w in load_report_data([outcome.run_id], config.store.url).warnings if w.kind == "throttled"]
    assert len(throttled) == (1 if warned else 0)
    if warned:
        assert "0x50005" in throttled[0].message and "83.5" in throttled[0].message


# --- host keys: strict by default --------------------------------------------------------------------

def test_an_unknown_host_is_refused_with_its_fingerprint_and_the_trust_command(sshd: SshServer,
                                                                               tmp_path: Path) -> None:
    device = _device(sshd, known_hosts=str(tmp_path / "known_hosts"))  # no such file: nothing is known
    with pytest.raises(DeviceError) as err:
        device.open()
    text = str(err.value)
    assert "not in" in text and "SHA256:" in text and "bench devices trust pi" in text


def test_a_changed_host_key_is_refused_loudly(sshd: SshServer, tmp_path: Path) -> None:
    other = tmp_path / "other"
    subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    known = tmp_path / "known_hosts"
    write_known_hosts(known, sshd.port, other.with_suffix(".pub").read_text())
    with pytest.raises(DeviceError, match="HOST KEY CHANGED") as err:
        _device(sshd, known_hosts=str(known)).open()
    assert "ssh-keygen -R" in (err.value.hint or "")
    settings = SshSettings(**{k: v for k, v in sshd.device(known_hosts=str(known)).items()
                              if k not in ("name", "kind")})
    with pytest.raises(DeviceError, match="HOST KEY CHANGED"):
        trust(settings.target("pi"), settings.auth(), device="pi", confirm=lambda _q: True)
    assert known.read_text().count("\n") == 1  # not replaced


def test_trust_writes_known_hosts_only_when_confirmed(sshd: SshServer, tmp_path: Path) -> None:
    known = tmp_path / "ssh" / "known_hosts"
    write_config(tmp_path / "bench.toml", "[[devices]]\n" + "".join(
        f"{k} = {json.dumps(v)}\n" for k, v in sshd.device(known_hosts=str(known)).items()))
    declined = run_bench("devices", "trust", "pi", cwd=tmp_path, input="n\n", timeout=60)
    assert declined.returncode == 1 and "SHA256:" in declined.stdout and not known.exists()
    accepted = run_bench("devices", "trust", "pi", "--yes", cwd=tmp_path, timeout=60)
    assert accepted.returncode == 0, accepted.stderr
    assert f"[127.0.0.1]:{sshd.port} ssh-ed25519" in known.read_text()
    assert oct(known.stat().st_mode & 0o777) == "0o600"
    device = _device(sshd, known_hosts=str(known))
    device.open()
    device.close()


def test_secrets_in_the_config_are_refused(sshd: SshServer, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="secrets do not belong"):
        parse_config({"devices": [sshd.device(password="hunter2")]}, "bench.toml", tmp_path)


# --- robustness --------------------------------------------------------------------------------------

class _DroppingDevice(SshDevice):
    """The real driver, with the link cut by killing sshd's per-connection processes: once before the
    second cell's run (recovered by the driver), and on both attempts of the third cell's (recorded as failed)."""

    server: SshServer
    runs = 0

    def _run(self, spec: Any) -> Any:
        type(self).runs += 1
        if type(self).runs in (2, 4, 5):
            assert self.server.drop_connections() > 0
        return super()._run(spec)


def test_a_dropped_connection_mid_sweep_is_recovered_or_recorded(sshd: SshServer, tmp_path: Path) -> None:
    _DroppingDevice.server, _DroppingDevice.runs = sshd, 0
    registry.register(DriverSpec(kind="ssh-dropping", summary="test", settings=SshSettings, create=_DroppingDevice))
    config = _config(tmp_path, sshd, [str(DENSE)], repeats=4, kind="ssh-dropping")
    outcome = run_sweep(config)
    cells = results.load(outcome.run_id, config.store.url).sort_values("repeat")
    assert list(cells["status"]) == ["ok", "ok", "failed", "ok"], list(cells["error"])
    assert cells.iloc[1]["details"]["reconnects"] == 1
    assert "lost again after reconnecting" in cells.iloc[2]["error"]
    assert sshd.remote_leftovers(wait=LEFTOVERS_WAIT_S) == []


def test_a_link_lost_between_steps_is_reconnected_and_the_model_redeployed(sshd: SshServer) -> None:
    """The drop lands before the next request is sent (a busy machine ran the race this way once):
    the run must reload the model on the fresh agent, not ask an empty one to run."""
    device = _device(sshd)
    device.open()
    try:
        data = DENSE.read_bytes()
        device.deploy(ModelBinary(name="dense", sha256=hashlib.sha256(data).hexdigest(), data=data))
        assert sshd.drop_connections() > 0
        deadline = time.monotonic() + 60.0
        while device._session is not None and device._session.running and time.monotonic() < deadline:
            time.sleep(0.05)  # wait for paramiko to see the closed channel
        assert device._session is not None and not device._session.running
        result = device.run(RunSpec(warmup=0, iterations=5))
    finally:
        device.close()
    assert len(result.latency_ns) == 5 and result.details["reconnects"] == 1


def test_a_step_that_overruns_its_timeout_is_stopped_and_the_next_one_runs(sshd: SshServer) -> None:
    # Only the endless run gets the 1 s budget: starting an agent (open, and the restart behind the
    # second deploy) takes seconds on a busy machine, and must not be what times out here.
    device = _device(sshd)
    device.open()
    try:
        data = DENSE.read_bytes()
        model = ModelBinary(name="dense", sha256=hashlib.sha256(data).hexdigest(), data=data)
        device.deploy(model)
        roomy = device.settings
        device.settings = roomy.model_copy(update={"command_timeout": 1.0})
        with pytest.raises(DeviceTimeoutError, match="no answer from the agent within 1 s"):
            device.run(RunSpec(warmup=0, iterations=10**9))
        device.settings = roomy
        device.deploy(model)
        assert len(device.run(RunSpec(warmup=0, iterations=5)).latency_ns) == 5
    finally:
        device.close()
    assert sshd.remote_leftovers(wait=LEFTOVERS_WAIT_S) == []


def test_a_hostile_model_name_and_remote_dir_reach_no_shell(sshd: SshServer, tmp_path: Path) -> None:
    model = tmp_path / "x; touch pwned.tflite"
    shutil.copy(DENSE, model)
    remote = sshd.remote_dir / "r $(touch pwned) `touch pwned`; touch pwned"
    remote.mkdir()
    config = _config(tmp_path, sshd, [str(model)], remote_dir=str(remote))
    outcome = run_sweep(config)
    assert outcome.cells_ok == 1, results.load(outcome.run_id, config.store.url)["error"].tolist()
    for where in (Path.home(), tmp_path, sshd.remote_dir, remote, Path.cwd()):
        assert not (where / "pwned").exists(), where
    assert list(remote.iterdir()) == []
    remote.rmdir()


def test_probe_shows_identity_and_runtime_or_how_to_install_one(sshd: SshServer, tmp_path: Path) -> None:
    system_python = shutil.which("python3", path="/usr/bin")
    assert system_python is not None
    entries = [sshd.device("pi"), sshd.device("bare", python=system_python)]
    write_config(tmp_path / "bench.toml", "".join(
        "[[devices]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in e.items()) for e in entries))
    listing = {d["name"]: d for d in json.loads(run_bench("devices", "--probe", "--json", cwd=tmp_path).stdout)}
    info = listing["pi"]["info"]
    assert info["kind"] == "ssh" and info["runtime"] == "ai-edge-litert" and info["details"]["cores"] >= 1
    assert "no TFLite runtime" in listing["bare"]["error"]
    assert "pip install" in listing["bare"]["hint"]
    assert sshd.remote_leftovers(wait=LEFTOVERS_WAIT_S) == []


def test_ssh_config_aliases_and_proxyjump_are_honoured(sshd: SshServer, tmp_path: Path) -> None:
    config = tmp_path / "ssh_config"
    config.write_text(  # the board is named differently from the jump host, so each needs its own key entry
        f"Host jump\n  HostName 127.0.0.1\n  Port {sshd.port}\n  IdentityFile {sshd.key_file}\n"
        f"Host board\n  HostName localhost\n  Port {sshd.port}\n  IdentityFile {sshd.key_file}\n"
        "  ProxyJump jump\n"
    )
    target = resolve("board", port=None, user=None, key_file=None, ssh_config=str(config), device="pi")
    assert [h.alias for h in target.chain] == ["jump", "board"] and target.board.hostname == "localhost"
    settings = SshSettings(host="board", ssh_config=str(config), known_hosts=str(tmp_path / "known_hosts"),
                           agent=False, python=sshd.device()["python"], remote_dir=str(sshd.remote_dir))
    asked: list[str] = []
    outcomes = trust(settings.target("pi"), settings.auth(), device="pi", confirm=lambda q: asked.append(q) or True)
    assert [o.entry for o in outcomes] == [f"[127.0.0.1]:{sshd.port}", f"[localhost]:{sshd.port}"]
    assert all("SHA256:" in q for q in asked) and len(asked) == 2
    device = SshDevice("pi", settings)
    device.open()
    try:
        assert len(device._conn.jumps) == 1  # type: ignore[union-attr]
        assert device.info().runtime == "ai-edge-litert"
    finally:
        device.close()


def test_the_agent_keeps_to_python_3_7_syntax() -> None:
    agent_dir = Path(__file__).resolve().parents[1] / "devices" / "agent"
    for name in AGENT_FILES:
        ast.parse((agent_dir / name).read_text(), filename=name, feature_version=(3, 7))


def test_the_documented_example_config_is_valid() -> None:
    config = load_config(Path(__file__).resolve().parents[1] / "examples" / "bench.ssh.toml")
    pi = next(d for d in config.devices if d.kind == "ssh")
    assert SshSettings(**pi.settings).host == "raspberrypi.local"

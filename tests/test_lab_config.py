"""The lab's rules without a cluster: pools in bench.toml, boards as resources, the TLS rule, certificates,
and board-to-board spread in the report of a local sweep over a pool."""

from __future__ import annotations

import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509

from harness.config import ClusterConfig, DeviceConfig, parse_config
from harness.errors import ConfigError
from harness.lab.certs import make_certs
from harness.lab.inventory import LabBoard, inventory, lane_units, resource_of, resources_for
from harness.lab.security import check_address, tls_files
from harness.models.zoo import EXAMPLE_DIR
from harness.report import make_report
from harness.sweep import run_sweep
from tests.conftest import run_bench


def _devices(*entries: dict) -> dict:
    return {"devices": list(entries)}


def test_pool_is_bench_key_not_a_driver_setting(tmp_path: Path) -> None:
    config = parse_config(_devices({"name": "a", "kind": "fake", "pool": "p"}, {"name": "b", "kind": "fake",
                                                                                "pool": "p"}), "bench.toml", tmp_path)
    assert [(d.name, d.pool, d.settings) for d in config.devices] == [("a", "p", {}), ("b", "p", {})]


@pytest.mark.parametrize(("entries", "words"), [
    ([{"name": "a", "kind": "fake", "pool": "p"}, {"name": "b", "kind": "sim", "pool": "p"}], "mixes kinds"),
    ([{"name": "a", "kind": "fake", "pool": "b"}, {"name": "b", "kind": "fake"}], "also a device's name"),
    ([{"name": "a", "kind": "fake", "pool": ""}], "devices[0].pool"),
])
def test_bad_pools_are_errors_naming_the_key(tmp_path: Path, entries: list[dict], words: str) -> None:
    with pytest.raises(ConfigError, match=r"bench\.toml") as info:
        parse_config(_devices(*entries), "bench.toml", tmp_path)
    assert words in str(info.value)


def test_boards_and_pools_become_dask_resources() -> None:
    devices = [DeviceConfig(name="pi", kind="ssh", settings={"host": "pi"}),
               DeviceConfig(name="l1", kind="fake", pool="l476"), DeviceConfig(name="l2", kind="fake", pool="l476")]
    assert resources_for(devices) == {"bench-board:pi": 1, "bench-pool:l476": 2}
    boards = inventory({"tcp://h1:1": {"name": "h1", "devices": [d.model_dump() for d in devices[:2]]},
                        "tcp://h2:1": {"name": "h2", "devices": [devices[2].model_dump()]}})
    units = lane_units(boards, None)
    assert [(u.name, u.pool) for u in units] == [("pi", None), ("l476", "l476")]
    assert [resource_of(u) for u in units] == ["bench-board:pi", "bench-pool:l476"]
    with pytest.raises(ConfigError, match="belongs to pool 'l476'"):
        lane_units(boards, ["l1"])
    with pytest.raises(ConfigError, match="The lab holds: pi, l476"):
        lane_units(boards, ["nucleo"])
    assert [u.name for u in lane_units(boards, ["fake"])] == ["l476"]


def test_a_board_held_by_two_workers_is_refused() -> None:
    entry = DeviceConfig(name="pi", kind="fake").model_dump()
    with pytest.raises(ConfigError, match="held by two workers"):
        inventory({"tcp://a:1": {"name": "a", "devices": [entry]}, "tcp://b:1": {"name": "b", "devices": [entry]}})
    assert isinstance(inventory({"tcp://a:1": {"name": "a", "devices": [entry]}})[0], LabBoard)


@pytest.mark.parametrize("address", ["tcp://10.1.2.3:8786", "tcp://0.0.0.0:8786", "192.168.1.9:8786"])
def test_plain_tcp_beyond_loopback_is_refused(address: str) -> None:
    with pytest.raises(ConfigError, match="requires mutual TLS"):
        check_address(address, None, "bench sweep --cluster")


def test_loopback_tcp_is_allowed_and_tls_needs_its_files(tmp_path: Path) -> None:
    check_address("tcp://127.0.0.1:8786", None, "x")
    check_address("tcp://localhost:8786", None, "x")
    with pytest.raises(ConfigError, match="names no certificates"):
        check_address("tls://10.1.2.3:8786", None, "x")
    with pytest.raises(ConfigError, match="but not tls_cert_file, tls_key_file"):
        tls_files(ClusterConfig(tls_ca_file=Path("ca.pem")), tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        tls_files(ClusterConfig(tls_ca_file=Path("ca.pem"), tls_cert_file=Path("c.pem"), tls_key_file=Path("k.pem")),
                  tmp_path)


def test_lab_certs_make_a_ca_and_host_certificates_for_both_ends_of_tls(tmp_path: Path) -> None:
    r = run_bench("lab", "certs", str(tmp_path / "certs"), "scheduler.lab", "10.0.0.7", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    certs = tmp_path / "certs"
    for key in ("ca-key.pem", "scheduler.lab-key.pem", "10.0.0.7-key.pem"):
        assert stat.S_IMODE((certs / key).stat().st_mode) == 0o600
    ca = x509.load_pem_x509_certificate((certs / "ca.pem").read_bytes())
    host = x509.load_pem_x509_certificate((certs / "10.0.0.7.pem").read_bytes())
    host.verify_directly_issued_by(ca)
    assert "10.0.0.7" in str(host.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    # The files load as a TLS context the way Dask loads them: CA to verify peers, cert + key to present.
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(certs / "ca.pem"))
    ctx.load_cert_chain(str(certs / "scheduler.lab.pem"), str(certs / "scheduler.lab-key.pem"))
    # A second run reuses the CA: certificates made later still verify against the one CA.
    make_certs(certs, ["bench2.lab"])
    x509.load_pem_x509_certificate((certs / "bench2.lab.pem").read_bytes()).verify_directly_issued_by(ca)


def test_the_scheduler_refuses_to_listen_beyond_loopback_without_tls(tmp_path: Path) -> None:
    r = run_bench("lab", "scheduler", "--host", "0.0.0.0", "--port", "0", cwd=tmp_path, timeout=120)
    assert r.returncode == 2 and "requires mutual TLS" in r.stderr, r.stderr


def test_a_local_sweep_over_a_pool_reports_board_to_board_spread(tmp_path: Path) -> None:
    doc = {"store": {"url": f"sqlite:///{tmp_path / 'b.db'}"},
           "devices": [{"name": "l1", "kind": "fake", "pool": "l476", "latency_us": 100.0},
                       {"name": "l2", "kind": "fake", "pool": "l476", "latency_us": 103.0}],
           "sweep": {"models": [str(EXAMPLE_DIR / "digits_dense.tflite")], "repeats": 3, "iterations": 20,
                     "accuracy_samples": 0}}
    outcome = run_sweep(parse_config(doc, "test", tmp_path))
    assert outcome.cells_ok == 6
    files = make_report([outcome.run_id], f"sqlite:///{tmp_path / 'b.db'}", out_dir=tmp_path / "r", formats=["md"])
    text = files.markdown.read_text()
    section = text[text.index("Board-to-board spread, per pool"):]
    row = next(line for line in section.splitlines() if line.startswith("| l476 | digits_dense"))
    # 100 µs vs 103 µs: (103 - 100) / 101.5 = 2.96 % between boards; the fake repeats its figure exactly.
    assert "l1 (3), l2 (3)" in row and "2.96%" in row and row.rstrip().endswith("0.00% |")

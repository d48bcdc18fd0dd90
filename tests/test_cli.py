"""The user's story through the real `bench` command: sweep, runs, show, and every bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness.models import zoo
from tests.conftest import SHARED_MODELS, run_bench, write_config

QUICK = ["--iterations", "20", "--warmup", "2", "--repeats", "1"]


def test_default_sweep_then_runs_and_show_rebuild_the_same_table(workdir: Path) -> None:
    swept = run_bench("sweep", "--device", "local", *QUICK, cwd=workdir)
    assert swept.returncode == 0, swept.stderr
    assert "complete" in swept.stdout and (workdir / "bench.db").exists()

    runs = json.loads(run_bench("runs", "--json", cwd=workdir).stdout)
    assert len(runs) == 1 and runs[0]["status"] == "complete"
    run_id = runs[0]["id"]
    assert runs[0]["cells_done"] == runs[0]["n_cells"] > 0

    shown = run_bench("show", run_id, cwd=workdir)
    assert shown.returncode == 0
    table = shown.stdout.strip()
    assert table in swept.stdout  # the same table, rebuilt from the database

    rows = json.loads(run_bench("show", run_id, "--json", cwd=workdir).stdout)
    manifest = json.loads(zoo.EXAMPLE_MANIFEST.read_text())
    assert sorted(r["variant_name"] for r in rows) == sorted(v["name"] for v in manifest["variants"])
    assert all(r["device_name"] == "local" and r["n"] == 20 for r in rows)


def test_version_and_init(workdir: Path) -> None:
    assert run_bench("--version", cwd=workdir).stdout.startswith("bench ")
    assert run_bench("init", cwd=workdir).returncode == 0
    assert (workdir / "bench.toml").read_text().startswith("# bench.toml")
    again = run_bench("init", cwd=workdir)
    assert again.returncode == 2 and "already exists" in again.stderr


def test_devices_lists_and_probes_the_defaults(workdir: Path) -> None:
    listing = json.loads(run_bench("devices", "--probe", "--json", cwd=workdir).stdout)
    local = next(d for d in listing if d["kind"] == "local")
    assert local["info"]["runtime"] == "ai-edge-litert"


# --- bad input: one paragraph naming the culprit, exit code 2, the store as it was ------------------

@pytest.fixture
def existing_store(workdir: Path) -> bytes:
    write_config(workdir / "bench.toml", "[[devices]]\nname='f'\nkind='fake'\n[sweep]\nrepeats=1\niterations=5\n")
    assert run_bench("sweep", cwd=workdir).returncode == 0
    (workdir / "bench.toml").unlink()
    return _store_state(workdir)


def _store_state(workdir: Path) -> bytes:
    """Rows of every table: what 'the store as it was' means (WAL files may be checkpointed)."""
    dump = run_bench("runs", "--json", "--store", "sqlite:///bench.db", cwd=workdir).stdout
    return dump.encode()


def _assert_refused(result, *needles: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "error:" in result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_missing_model_file(workdir: Path, existing_store: bytes) -> None:
    result = run_bench("sweep", "--model", "nowhere.tflite", "--device", "fake", cwd=workdir)
    _assert_refused(result, "nowhere.tflite", "does not exist")
    assert _store_state(workdir) == existing_store


def test_a_file_that_is_not_tflite(workdir: Path, existing_store: bytes) -> None:
    (workdir / "notes.tflite").write_text("this is not a model\n" * 10)
    result = run_bench("sweep", "--model", "notes.tflite", "--device", "fake", cwd=workdir)
    _assert_refused(result, "notes.tflite", "not a TFLite model")
    assert _store_state(workdir) == existing_store


def test_a_truncated_tflite(workdir: Path, existing_store: bytes) -> None:
    data = (SHARED_MODELS / "micro_speech_quantized.tflite").read_bytes()
    (workdir / "cut.tflite").write_bytes(data[: len(data) // 2])
    result = run_bench("sweep", "--model", "cut.tflite", "--device", "fake", cwd=workdir)
    _assert_refused(result, "cut.tflite", "truncated")
    assert _store_state(workdir) == existing_store


@pytest.mark.parametrize(("toml", "needle"), [
    ("[sweep]\nrepeates = 2\n", "unknown key 'sweep.repeates'"),
    ("[sweep]\nrepeats = 'two'\n", "key 'sweep.repeats' is invalid"),
    ("[[devices]]\nname = 'x'\nkind = 'teapot'\n", "unknown device kind 'teapot'"),
])
def test_bad_config(workdir: Path, existing_store: bytes, toml: str, needle: str) -> None:
    write_config(workdir / "bench.toml", toml)
    result = run_bench("sweep", cwd=workdir)
    _assert_refused(result, needle, "bench.toml")
    assert _store_state(workdir) == existing_store


def test_unknown_device_kind_on_the_command_line(workdir: Path) -> None:
    result = run_bench("sweep", "--device", "teapot", cwd=workdir)
    _assert_refused(result, "teapot", "Known kinds")
    assert not (workdir / "bench.db").exists()


@pytest.mark.parametrize("target", ["missing-dir/bench.db", "a-file/bench.db", "."])
def test_a_store_path_that_cannot_be_written(workdir: Path, target: str) -> None:
    (workdir / "a-file").write_text("not a directory")
    result = run_bench("sweep", "--device", "fake", "--store", f"sqlite:///{target}", cwd=workdir)
    _assert_refused(result, "store path")
    assert sorted(os.listdir(workdir)) == ["a-file"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through directory permissions")
def test_a_read_only_store_directory(workdir: Path) -> None:
    ro = workdir / "ro"
    ro.mkdir(mode=0o500)
    result = run_bench("sweep", "--device", "fake", "--store", f"sqlite:///{ro}/bench.db", cwd=workdir)
    _assert_refused(result, "no write permission")


def test_resume_of_an_unknown_run(workdir: Path, existing_store: bytes) -> None:
    result = run_bench("sweep", "--resume", "20990101-000000-dead", cwd=workdir)
    _assert_refused(result, "20990101-000000-dead", "bench runs")
    assert _store_state(workdir) == existing_store


def test_show_of_an_unknown_run_and_of_an_empty_directory(workdir: Path) -> None:
    _assert_refused(run_bench("show", "nope", cwd=workdir), "no store")


def test_a_bad_model_in_a_fresh_directory_creates_no_store(workdir: Path) -> None:
    result = run_bench("sweep", "--model", "nowhere.tflite", "--device", "fake", cwd=workdir)
    _assert_refused(result, "nowhere.tflite")
    assert not (workdir / "bench.db").exists()


#: What no help or version output may import: the libraries the commands themselves use.
HEAVY_LIBRARIES = ("pandas", "sqlalchemy", "numpy", "pydantic", "matplotlib", "scipy", "tflite", "ai_edge_litert",
                   "litert", "tflite_micro", "tensorflow", "paramiko", "serial", "dask", "distributed")


def _modules_loaded_by(*args: str) -> set[str]:
    """The modules `bench ARGS` has imported by the time it exits, from a fresh interpreter."""
    import subprocess
    import sys

    probe = ("import sys, runpy\n"
             "sys.argv = ['bench', *sys.argv[1:]]\n"
             "try:\n    runpy.run_module('harness', run_name='__main__')\n"
             "except SystemExit:\n    pass\n"
             "print('MODULES', ' '.join(sorted(sys.modules)))\n")
    done = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=120,
                          check=False)
    assert "MODULES" in done.stdout, done.stderr
    return set(done.stdout.rsplit("MODULES", 1)[1].split())


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["sweep", "--help"], ["compare", "--help"],
                                  ["models", "--help"], ["firmware", "build", "--help"], ["lab", "--help"]])
def test_help_and_version_load_none_of_the_heavy_libraries(args: list[str]) -> None:
    """`bench --help`/`--version` (and a command's --help) stay fast by importing typer, rich and the command
    modules only (the timing itself is benchmarks/cli_startup.py's job: a busy machine must not fail this test)."""
    loaded = _modules_loaded_by(*args)
    heavy = {m.split(".")[0] for m in loaded} & set(HEAVY_LIBRARIES)
    if args[0] not in ("--help", "--version"):
        # Typer (>= 0.29) coerces option values through pydantic, its own dependency: `bench CMD --help`
        # processes the main callback's --verbose before CMD's --help, so pydantic is typer's import there.
        heavy.discard("pydantic")
    assert sorted(heavy) == [], args
    # Nor the library modules behind the commands: the config, the store, the drivers, the firmware tools.
    ours = {"harness.config", "harness.store", "harness.results", "harness.sweep", "harness.report",
            "harness.compare", "harness.models.runtimes", "devices.registry", "devices.firmware"}
    assert sorted(loaded & ours) == [], args


def test_version_alone_loads_neither_typer_nor_rich() -> None:
    """`bench --version` is answered before the typer app and its command modules are imported."""
    loaded = _modules_loaded_by("--version")
    assert not {m.split(".")[0] for m in loaded} & {"typer", "click", "rich"}
    assert not {m for m in loaded if m.startswith("harness.cli.")}

"""The bundled digits family is what its manifest says it is, runs in both runtimes, and shows what
each kind of pruning buys. Runs without TensorFlow: it only reads the committed files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from harness.models.evaluate import evaluate
from harness.models.inspect import inspect_model
from harness.models.tflite_file import sha256_bytes
from harness.models.variant import ModelVariant, load_manifest
from harness.models.zoo import EXAMPLE_DATASET, EXAMPLE_DIR, EXAMPLE_MANIFEST
from tests.conftest import run_bench

EXPECTED = {
    "dense",
    "magnitude-50",
    "magnitude-75",
    "magnitude-90",
    "channel-75w",
    "channel-50w",
    "ptq-magnitude-50",
    "ptq-magnitude-75",
    "ptq-magnitude-90",
}


@pytest.fixture(scope="module")
def family() -> dict[str, ModelVariant]:
    return {v.name: v for v in load_manifest(EXAMPLE_MANIFEST)}


@pytest.fixture(scope="module")
def test_split() -> tuple[np.ndarray, np.ndarray]:
    with np.load(EXAMPLE_DATASET) as npz:
        return npz["x_test"], npz["y_test"]


def _quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    scale, zero = detail["quantization"]
    return np.clip(np.round(x / scale + zero), -128, 127).astype(np.int8)


def _litert_ref(data: bytes, x: np.ndarray) -> np.ndarray:
    interp = Interpreter(model_content=data, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    inp = interp.get_input_details()[0]
    interp.resize_tensor_input(inp["index"], [len(x), *inp["shape"][1:]])
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    interp.set_tensor(inp["index"], _quantize(x, inp))
    interp.invoke()
    return interp.get_tensor(out["index"])


def test_manifest_lists_every_file_and_matches_it_by_sha256(family: dict[str, ModelVariant]) -> None:
    assert set(family) == EXPECTED
    on_disk = {p.name for p in EXAMPLE_DIR.glob("*.tflite")}
    assert on_disk == {v.path.name for v in family.values()}
    for v in family.values():
        assert sha256_bytes(v.path.read_bytes()) == v.sha256
        assert v.size_bytes == v.path.stat().st_size
        assert v.dataset == EXAMPLE_DATASET
        assert v.command and "make_example_family.py --seed" in v.command
        assert v.accuracy_method and "BUILTIN_REF" in v.accuracy_method


def test_every_variant_derives_from_the_dense_model(family: dict[str, ModelVariant]) -> None:
    dense = family["dense"]
    for v in family.values():
        if v.name != "dense":
            assert v.base_sha256 == dense.sha256, v.name


def test_data_dir_stays_small_and_dataset_fits_the_model(
    family: dict[str, ModelVariant], test_split: tuple[np.ndarray, np.ndarray]
) -> None:
    assert sum(p.stat().st_size for p in EXAMPLE_DIR.iterdir() if p.is_file()) < 500_000
    assert json.loads(EXAMPLE_MANIFEST.read_text())["dataset"] == EXAMPLE_DATASET.name
    x, y = test_split
    assert x.dtype == np.float32 and x.shape[1:] == (8, 8, 1) and len(x) == len(y) >= 300
    assert set(np.unique(y)) == set(range(10))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_variant_runs_in_litert_and_tflm_with_the_recorded_arena(
    name: str, family: dict[str, ModelVariant], test_split: tuple[np.ndarray, np.ndarray]
) -> None:
    from tflite_micro import runtime

    v = family[name]
    data = v.path.read_bytes()
    x = test_split[0][:20]
    lite = _litert_ref(data, x)
    assert v.arena_bytes and v.arena_bytes < 64 * 1024
    # The recorded figure is the smallest arena that worked; a margin keeps this test off the edge
    # where TFLM segfaults rather than failing cleanly.
    tflm = runtime.Interpreter.from_bytes(data, arena_size=2 * v.arena_bytes)
    scale_zero = Interpreter(model_content=data).get_input_details()[0]
    agree = 0
    for i in range(len(x)):
        tflm.set_input(_quantize(x[i : i + 1], scale_zero), 0)
        tflm.invoke()
        out = tflm.get_output(0)
        # FULLY_CONNECTED logits may differ by 1 LSB between TFLM and LiteRT, and the softmax after them
        # magnifies that when its input scale is coarse (the collapsed post-training variants): so the
        # runtimes are compared on the class they pick, with a loose bound on the scores.
        assert np.max(np.abs(out.astype(int) - lite[i : i + 1].astype(int))) <= 32
        agree += int(np.argmax(out) == np.argmax(lite[i]))
    assert agree >= len(x) - 1


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_recorded_accuracy_is_reproduced_by_models_eval(name: str, family: dict[str, ModelVariant]) -> None:
    v = family[name]
    report = evaluate(v.path, EXAMPLE_DATASET, kernels="reference")
    assert v.accuracy is not None and report.accuracy is not None
    assert abs(report.accuracy - v.accuracy) <= 0.005, (name, report.accuracy, v.accuracy)


def test_bench_models_eval_reports_the_recorded_accuracy(family: dict[str, ModelVariant], tmp_path) -> None:
    v = family["channel-50w"]
    done = run_bench("models", "eval", str(v.path), "--data", str(EXAMPLE_DATASET), "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert abs(json.loads(done.stdout)["accuracy"] - v.accuracy) <= 0.005


def test_recorded_figures_match_the_files(family: dict[str, ModelVariant]) -> None:
    for v in family.values():
        report = inspect_model(v.path, arena=False)
        assert (v.params, v.macs, v.gzip_bytes) == (report.params, report.macs, report.gzip_bytes), v.name
        assert v.measured_sparsity == pytest.approx(report.zero_fraction, abs=1e-4), v.name


def test_channel_pruning_shrinks_everything(family: dict[str, ModelVariant]) -> None:
    dense, wide, narrow = family["dense"], family["channel-75w"], family["channel-50w"]
    for small, big in ((wide, dense), (narrow, wide)):
        assert small.params < big.params
        assert small.macs < big.macs
        assert small.size_bytes < big.size_bytes
        assert small.gzip_bytes < big.gzip_bytes
        assert small.arena_bytes < big.arena_bytes
    # Half the filters in consecutive layers cuts their products by about four, the model by > half.
    assert narrow.macs < 0.4 * dense.macs and narrow.params < 0.4 * dense.params
    assert narrow.accuracy >= dense.accuracy - 0.03


def test_unstructured_pruning_only_shrinks_the_compressed_image(family: dict[str, ModelVariant]) -> None:
    dense = family["dense"]
    previous = dense.gzip_bytes
    for name in ("magnitude-50", "magnitude-75", "magnitude-90"):
        v = family[name]
        assert (v.params, v.macs, v.size_bytes, v.arena_bytes) == (
            dense.params,
            dense.macs,
            dense.size_bytes,
            dense.arena_bytes,
        )
        assert v.gzip_bytes < previous
        previous = v.gzip_bytes


@pytest.mark.parametrize("name", ["magnitude-50", "magnitude-75", "magnitude-90"])
def test_fine_tuned_magnitude_reaches_target_on_pruned_layers(
    name: str, family: dict[str, ModelVariant]
) -> None:
    v = family[name]
    assert v.engine == "keras" and v.target_sparsity is not None
    skipped = {entry.split(": ")[0] for entry in v.not_pruned}
    assert any("depthwise" in layer for layer in skipped), "TF-MOT leaves DepthwiseConv2D dense"
    pruned = {k: s for k, s in v.layer_sparsity.items() if k not in skipped}
    assert len(pruned) == 4
    for layer, s in pruned.items():
        assert v.target_sparsity - 0.01 <= s <= v.target_sparsity + 0.02, (layer, s)
    for layer in skipped:
        assert v.layer_sparsity[layer] < 0.05
    assert v.accuracy >= 0.9


def test_fine_tuning_keeps_accuracy_that_post_training_pruning_loses(family: dict[str, ModelVariant]) -> None:
    for s in (50, 75, 90):
        tuned, post = family[f"magnitude-{s}"], family[f"ptq-magnitude-{s}"]
        assert post.engine == "tflite" and tuned.engine == "keras"
        assert post.measured_sparsity == pytest.approx(s / 100, abs=0.02)
        assert tuned.accuracy > post.accuracy
    assert family["ptq-magnitude-75"].accuracy < 0.5 < family["magnitude-75"].accuracy


def test_dataset_path_is_relative_to_the_manifest() -> None:
    doc = json.loads(EXAMPLE_MANIFEST.read_text())
    for entry in doc["variants"]:
        assert not Path(entry["file"]).is_absolute()

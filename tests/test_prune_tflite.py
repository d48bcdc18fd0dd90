"""Post-training pruning of real int8 models: the story of `bench prune --engine tflite`."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import tflite
import typer
from typer.testing import CliRunner

from harness.cli.models import prune_command
from harness.errors import ConfigError, ModelError
from harness.models.evaluate import litert_outputs, tflm_outputs
from harness.models.inspect import inspect_model
from harness.models.prune_tflite import prune_family, prune_file
from harness.models.tflite_file import read_model
from harness.models.variant import load_manifest

SHARED_MODELS = Path(__file__).resolve().parents[2] / "shared" / "models"
INPUTS = SHARED_MODELS / "inputs"
HELLO = SHARED_MODELS / "hello_world_int8.tflite"
SPEECH = SHARED_MODELS / "micro_speech_quantized.tflite"
PERSON = SHARED_MODELS / "person_detect.tflite"
LITERT_OK = {"hello_world_int8", "micro_speech_quantized"}  # LiteRT rejects person_detect

pytestmark = pytest.mark.skipif(not HELLO.exists(), reason=f"no example models in {SHARED_MODELS}")


def sample_input(model: Path) -> np.ndarray:
    """One real input for each model, as a batch of 1."""
    if model == SPEECH:
        return np.fromfile(INPUTS / "yes_1000ms_features_int8_49x40.bin", np.int8).reshape(1, 1960)
    if model == PERSON:
        return np.fromfile(INPUTS / "person_int8_96x96x1.bin", np.int8).reshape(1, 96, 96, 1)
    return np.array([[10]], np.int8)


def weight_layers(path: Path) -> dict[str, int]:
    """Layer name -> weight count for the layers magnitude pruning touches."""
    ops = inspect_model(path, arena=False).ops
    return {op.layer: op.weight_elements for op in ops
            if op.op in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")}


def assert_runs(path: Path) -> None:
    data = path.read_bytes()
    x = sample_input(next(m for m in (HELLO, SPEECH, PERSON) if m.stem in path.stem))
    assert tflm_outputs(data, x).shape[0] == 1
    if any(name in path.stem for name in LITERT_OK):
        assert litert_outputs(data, x).shape[0] == 1


@pytest.mark.parametrize("sparsity", [0.5, 0.9])
@pytest.mark.parametrize("model", [HELLO, SPEECH, PERSON], ids=lambda p: p.stem)
def test_magnitude_hits_target_per_layer_and_still_runs(model: Path, sparsity: float, tmp_path: Path) -> None:
    dst = tmp_path / f"{model.stem}-pruned.tflite"
    v = prune_file(model, dst, method="magnitude", sparsity=sparsity, arena=False)
    assert abs(v.measured_sparsity - sparsity) <= 0.01
    sizes = weight_layers(model)
    assert set(v.layer_sparsity) == set(sizes)
    for layer, measured in v.layer_sparsity.items():
        # A 16-weight layer can only be pruned in steps of 1/16: "within a point" up to that granularity.
        assert abs(measured - sparsity) <= max(0.01, 1 / sizes[layer]), layer
    after = inspect_model(dst, arena=False)
    assert after.layer_zero_fraction()[next(iter(sizes))] == pytest.approx(v.layer_sparsity[next(iter(sizes))],
                                                                          abs=1e-4)
    assert v.size_bytes == model.stat().st_size and v.gzip_bytes < inspect_model(model, arena=False).gzip_bytes
    assert (v.engine, v.method, v.scope, v.target_sparsity) == ("tflite", "magnitude", "layer", sparsity)
    assert v.base_sha256 == read_model(model).sha256 != v.sha256
    assert_runs(dst)


def test_only_weight_bytes_change_and_biases_stay(tmp_path: Path) -> None:
    dst = tmp_path / "person_detect-pruned.tflite"
    prune_file(PERSON, dst, method="magnitude", sparsity=0.9, arena=False)
    before, after = PERSON.read_bytes(), dst.read_bytes()
    assert len(before) == len(after)
    model = read_model(PERSON).model
    graph = model.Subgraphs(0)
    weight_ranges, bias_buffers = [], set()
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        if op.InputsLength() >= 3:
            w = model.Buffers(graph.Tensors(op.Inputs(1)).Buffer())
            start = w._tab.Vector(w._tab.Offset(4))
            weight_ranges.append((start, start + w.DataLength()))
            bias_buffers.add(graph.Tensors(op.Inputs(2)).Buffer())
    changed = np.flatnonzero(np.frombuffer(before, np.uint8) != np.frombuffer(after, np.uint8))
    assert changed.size > 0
    assert all(any(lo <= c < hi for lo, hi in weight_ranges) for c in changed)
    pruned = read_model(dst).model
    for b in bias_buffers:
        assert bytes(pruned.Buffers(b).DataAsNumpy()) == bytes(model.Buffers(b).DataAsNumpy())


def test_global_scope_uses_one_threshold(tmp_path: Path) -> None:
    v = prune_file(SPEECH, tmp_path / "g.tflite", method="magnitude", sparsity=0.5, scope="global", arena=False)
    assert abs(v.measured_sparsity - 0.5) <= 0.01
    # The small depthwise layer has larger weights than the 16 000-weight classifier: it loses less.
    assert v.layer_sparsity["first_weights/read"] < 0.4 < v.layer_sparsity["final_fc_weights/read/transpose"]


def test_zeroed_channel_pruning_zeroes_whole_output_channels_and_their_biases(tmp_path: Path) -> None:
    dst = tmp_path / "person_detect-channel.tflite"
    v = prune_file(PERSON, dst, method="channel", sparsity=0.5, arena=False, structural="zeroed")
    assert v.structural == "zeroed" and v.params == inspect_model(PERSON, arena=False).params
    mf = read_model(dst)
    graph = mf.model.Subgraphs(0)
    pruned_layers = 0
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        tensor = graph.Tensors(op.Inputs(1)) if op.InputsLength() > 1 else None
        name = (tensor.Name() or b"").decode() if tensor else ""
        if name not in v.layer_sparsity or "pointwise" not in name:
            continue
        w = mf.model.Buffers(tensor.Buffer()).DataAsNumpy().view(np.int8).reshape(tensor.ShapeAsNumpy())
        zero_channels = (w.reshape(w.shape[0], -1) == 0).all(axis=1)  # weights' zero point is 0
        assert zero_channels.sum() == round(0.5 * w.shape[0]), name
        bias = graph.Tensors(op.Inputs(2))
        b = mf.model.Buffers(bias.Buffer()).DataAsNumpy().view(np.int32)
        assert (b[zero_channels] == 0).all(), name  # the bias goes with the channel
        pruned_layers += 1
    assert pruned_layers == 13  # 14 CONV_2D less the classifier, whose channels are the two classes
    assert any("Logits" in n and "model's outputs" in n for n in v.not_pruned)
    # The depthwise layers fed by a pruned CONV_2D lose the same channels; the first two keep theirs.
    assert sum("DEPTHWISE_CONV_2D" in n for n in v.not_pruned) == 2
    assert tflm_outputs(dst.read_bytes(), sample_input(PERSON)).shape == (1, 2)


def _set_field(data: bytearray, table: object, slot: int, fmt: str, value: int) -> None:
    """Overwrite a scalar field that the flatbuffer already stores (non-default) in place."""
    tab = table._tab  # type: ignore[attr-defined]
    offset = tab.Offset(slot)
    assert offset, "field not stored; cannot patch in place"
    struct.pack_into(fmt, data, tab.Pos + offset, value)


TENSOR_TYPE, TENSOR_BUFFER = 6, 8  # vtable slots of Tensor.type and Tensor.buffer


def _patched_hello(tmp_path: Path, patch: str) -> Path:
    """hello_world with one deliberate defect, made by editing the flatbuffer in place."""
    data = bytearray(HELLO.read_bytes())
    model = tflite.Model.GetRootAs(data, 0)
    graph = model.Subgraphs(0)
    ops = [graph.Operators(i) for i in range(graph.OperatorsLength())]
    if patch == "float":  # every int8 tensor claims to be float32, as in an unquantized model
        for t in range(graph.TensorsLength()):
            if graph.Tensors(t)._tab.Offset(TENSOR_TYPE):
                _set_field(data, graph.Tensors(t), TENSOR_TYPE, "<b", tflite.TensorType.FLOAT32)
    elif patch == "hybrid":  # int8 weights, float activations: dynamic-range quantization
        for op in ops:
            _set_field(data, graph.Tensors(op.Inputs(0)), TENSOR_TYPE, "<b", tflite.TensorType.FLOAT32)
    elif patch == "no-constants":  # weights fed at run time
        for op in ops:
            _set_field(data, graph.Tensors(op.Inputs(1)), TENSOR_BUFFER, "<I", 0)
    elif patch == "shared":  # the last layer's 1×16 weights share the first layer's 16×1 buffer
        first = graph.Tensors(ops[0].Inputs(1)).Buffer()
        _set_field(data, graph.Tensors(ops[2].Inputs(1)), TENSOR_BUFFER, "<I", first)
    path = tmp_path / f"hello-{patch}.tflite"
    path.write_bytes(bytes(data))
    return path


def test_shared_buffer_is_pruned_once(tmp_path: Path) -> None:
    src = _patched_hello(tmp_path, "shared")
    dst = tmp_path / "hello_world_int8-shared.tflite"
    v = prune_file(src, dst, method="magnitude", sparsity=0.5, arena=False)
    first, last = "sequential/dense/MatMul", "sequential/dense_2/MatMul"
    assert v.layer_sparsity[first] == v.layer_sparsity[last] == 0.5  # twice would give 0.75
    assert v.measured_sparsity == pytest.approx((8 + 128) / (16 + 256))  # the shared buffer counted once
    assert_runs(dst)


@pytest.mark.parametrize(("patch", "message"), [
    ("float", r"layer 'sequential/dense/MatMul' \(FULLY_CONNECTED\) has FLOAT32 weights"),
    ("hybrid", r"int8 weights but FLOAT32 activations: a hybrid"),
    ("no-constants", r"no weights that magnitude pruning can prune.*no constant buffer"),
])
def test_models_it_cannot_prune_are_refused(tmp_path: Path, patch: str, message: str) -> None:
    src = _patched_hello(tmp_path, patch)
    dst = tmp_path / "out.tflite"
    with pytest.raises(ModelError, match=message):
        prune_file(src, dst, method="magnitude", sparsity=0.5, arena=False)
    assert not dst.exists()


@pytest.mark.parametrize("sparsity", [1.0, -0.1, 1.5])
def test_sparsity_outside_unit_interval(tmp_path: Path, sparsity: float) -> None:
    with pytest.raises(ConfigError, match=r"outside \[0, 1\)"):
        prune_family(HELLO, tmp_path / "fam", ["magnitude"], [0.5, sparsity])
    assert not (tmp_path / "fam").exists()


def test_channel_pruning_refuses_a_depthwise_layer_by_name(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"cannot prune layer 'first_weights/read' \(DEPTHWISE_CONV_2D\)"):
        prune_file(SPEECH, tmp_path / "o.tflite", method="channel", sparsity=0.5, layers=["first_weights/read"])
    classifier = r"final_fc_weights/read/transpose \(FULLY_CONNECTED\): its output channels are the model's outputs"
    with pytest.raises(ModelError, match=classifier):
        prune_file(SPEECH, tmp_path / "o.tflite", method="channel", sparsity=0.5)  # nothing else to prune
    with pytest.raises(ConfigError, match=r"no prunable layer named 'nope'"):
        prune_file(SPEECH, tmp_path / "o.tflite", method="magnitude", sparsity=0.5, layers=["nope"])
    assert not (tmp_path / "o.tflite").exists()


def test_corrupt_model_and_overwriting_the_input(tmp_path: Path) -> None:
    cut = tmp_path / "cut.tflite"
    cut.write_bytes(SPEECH.read_bytes()[:700])
    with pytest.raises(ModelError, match=r"cut\.tflite.*damaged"):
        prune_file(cut, tmp_path / "o.tflite", method="magnitude", sparsity=0.5)
    copy = tmp_path / "hello.tflite"
    copy.write_bytes(HELLO.read_bytes())
    with pytest.raises(ConfigError, match="would overwrite the input"):
        prune_file(copy, tmp_path / "." / "hello.tflite", method="magnitude", sparsity=0.5)
    assert copy.read_bytes() == HELLO.read_bytes()


def test_family_manifest_via_cli(tmp_path: Path) -> None:
    app = typer.Typer()
    app.command("prune")(prune_command)
    app.command("unused")(lambda: None)  # two commands keep typer from collapsing to a single one
    out = tmp_path / "family"
    result = CliRunner().invoke(app, ["prune", str(HELLO), "--out", str(out), "--method", "magnitude",
                                      "--sparsity", "0.5", "--sparsity", "0.75"])
    assert result.exit_code == 0, result.output
    variants = load_manifest(out / "manifest.json")  # files exist and match their sha256
    assert [v.method for v in variants] == ["original", "magnitude", "magnitude"]
    assert [v.target_sparsity for v in variants] == [0.0, 0.5, 0.75]
    arenas = {v.arena_bytes for v in variants}
    assert len(arenas) == 1 and arenas.pop() > 0  # unstructured zeros do not change the arena
    for v in variants[1:]:
        assert_runs(v.path)


def test_unknown_engine_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown pruning engine 'onnx'"):
        prune_command(HELLO, tmp_path, ["magnitude"], [0.5], "layer", engine="onnx")

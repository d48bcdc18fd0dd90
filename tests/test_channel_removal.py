"""Channel pruning removes channels: the pruned .tflite is smaller, cheaper and still runs.

The story: a user runs `bench prune person_detect.tflite --method channel --sparsity 0.5` and expects
size, parameters, MACs and the TFLM arena to fall, as the README promises, and the variant to run
in the runtimes that ran the original; where the surgery cannot follow a layer's channels, the
manifest says so.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import numpy as np
import pytest
import tflite

from harness.errors import ModelError
from harness.models import tflite_writer
from harness.models.dataset import input_spec, load_dataset
from harness.models.evaluate import litert_outputs, tflm_outputs
from harness.models.inspect import inspect_bytes, inspect_model
from harness.models.prune_tflite import prune_bytes, prune_family
from harness.models.tflite_file import read_model
from harness.models.variant import load_manifest

ROOT = Path(__file__).resolve().parents[1]
SHARED_MODELS = ROOT.parent / "shared" / "models"
DIGITS_DIR = ROOT / "harness" / "models" / "data" / "digits"
DIGITS = DIGITS_DIR / "digits_dense.tflite"
PERSON = SHARED_MODELS / "person_detect.tflite"
KEYWORD = SHARED_MODELS / "keyword_scrambled.tflite"
ALL_MODELS = sorted(SHARED_MODELS.glob("*.tflite")) + sorted(DIGITS_DIR.glob("*.tflite"))

pytestmark = pytest.mark.skipif(not PERSON.exists(), reason=f"no example models in {SHARED_MODELS}")


def person_input() -> np.ndarray:
    return np.fromfile(SHARED_MODELS / "inputs" / "person_int8_96x96x1.bin", np.int8).reshape(1, 96, 96, 1)


def digits_inputs() -> np.ndarray:
    return load_dataset(DIGITS_DIR / "digits_test.npz", input_spec(read_model(DIGITS)), samples=60).x


def random_inputs(data: bytes, n: int = 4) -> np.ndarray:
    from tflite_micro import runtime

    d = runtime.Interpreter.from_bytes(data, arena_size=1 << 22).get_input_details(0)
    dtype = np.dtype(d["dtype"])
    rng = np.random.default_rng(0)
    shape = (n, *d["shape"][1:])
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, dtype=dtype)


def buffer_offsets(data: bytes) -> list[int]:
    model = tflite.Model.GetRootAs(data, 0)
    out = []
    for i in range(model.BuffersLength()):
        b = model.Buffers(i)
        if b.DataLength():
            out.append(b._tab.Vector(b._tab.Offset(4)))
    return out


@pytest.mark.parametrize("path", ALL_MODELS, ids=lambda p: p.stem)
def test_writer_round_trip_keeps_every_model_runnable_and_identical(path: Path) -> None:
    """A no-op unpack/pack must be invisible to both runtimes (TFLM's model_editor is not)."""
    original = path.read_bytes()
    written = tflite_writer.round_trip(original)
    assert written[4:8] == b"TFL3"
    assert all(offset % 16 == 0 for offset in buffer_offsets(written))  # the converter's alignment
    x = random_inputs(original)
    assert np.array_equal(tflm_outputs(written, x), tflm_outputs(original, x))
    try:
        expected = litert_outputs(original, x)
    except ValueError as exc:  # person_detect: LiteRT rejects the original too
        with pytest.raises(ValueError, match=re.escape(str(exc).split(".")[0][:40])):
            litert_outputs(written, x)
        return
    assert np.array_equal(litert_outputs(written, x), expected)


@pytest.mark.parametrize("sparsity", [0.25, 0.5])
@pytest.mark.parametrize("model", [PERSON, DIGITS], ids=lambda p: p.stem)
def test_removed_channels_shrink_everything_and_compute_the_zeroed_reference(model: Path, sparsity: float) -> None:
    mf = read_model(model)
    removed = prune_bytes(mf, method="channel", sparsity=sparsity)
    zeroed = prune_bytes(mf, method="channel", sparsity=sparsity, structural="zeroed")
    assert (removed.structural, zeroed.structural) == ("removed", "zeroed")
    before = inspect_bytes(mf.data, model, arena=True)
    after = inspect_bytes(removed.data, model, arena=True)
    same_shape = inspect_bytes(zeroed.data, model, arena=False)
    assert after.size_bytes < before.size_bytes * (1 - sparsity / 2)
    assert after.params < before.params * (1 - sparsity / 2)
    assert after.macs < before.macs * (1 - sparsity / 2)
    assert after.arena.minimum_bytes < before.arena.minimum_bytes
    assert (same_shape.params, same_shape.macs) == (before.params, before.macs)  # zeroing shrinks nothing
    assert [t.shape for t in after.outputs] == [t.shape for t in before.outputs]
    # Removing a channel takes its bias along; the zeroed reference zeroes weights and biases of the
    # same channels (and of the depthwise channels they feed), so the two are the same function.
    x = person_input() if model == PERSON else digits_inputs()
    assert np.array_equal(tflm_outputs(removed.data, x), tflm_outputs(zeroed.data, x))
    if model == DIGITS:
        assert np.array_equal(litert_outputs(removed.data, x), litert_outputs(zeroed.data, x))
    assert after.runtimes == before.runtimes  # accepted by exactly the runtimes that ran the original
    if model == PERSON:  # every hidden CONV_2D shrank; only the classifier and the two leading depthwise stay
        assert len(removed.layer_sparsity) == 13 + 13
        assert any("Logits" in n and "model's outputs" in n for n in removed.not_pruned)


def _person_detect_litert_accepts(tmp_path: Path) -> Path:
    """person_detect with its 1-D biases' quantized_dimension set to 0, the one thing LiteRT objects to."""
    model = tflite_writer.unpack(PERSON.read_bytes())
    for t in model.subgraphs[0].tensors:
        if t.quantization is not None and len(t.shape) == 1 and t.quantization.quantizedDimension:
            t.quantization.quantizedDimension = 0
    path = tmp_path / "person_detect_litert.tflite"
    path.write_bytes(tflite_writer.pack(model))
    return path


def test_removed_person_detect_runs_in_litert_too_when_the_original_does(tmp_path: Path) -> None:
    src = _person_detect_litert_accepts(tmp_path)
    mf = read_model(src)
    x = person_input()
    assert litert_outputs(mf.data, x).shape == (1, 2)
    removed = prune_bytes(mf, method="channel", sparsity=0.5)
    zeroed = prune_bytes(mf, method="channel", sparsity=0.5, structural="zeroed")
    assert np.array_equal(litert_outputs(removed.data, x), litert_outputs(zeroed.data, x))
    assert np.array_equal(litert_outputs(removed.data, x, kernels="builtin"),
                          litert_outputs(zeroed.data, x, kernels="builtin"))


def test_digits_at_half_width_has_the_retrained_half_width_model_s_size(tmp_path: Path) -> None:
    """The bundled channel-50w was rebuilt narrower in Keras: the same architecture, so the same counts."""
    variants = prune_family(DIGITS, tmp_path, ["channel"], [0.5], arena=False)
    v = variants[1]
    keras = {k.name: k for k in load_manifest(DIGITS_DIR / "manifest.json")}["channel-50w"]
    assert (v.params, v.macs) == (keras.params, keras.macs)
    assert v.structural == "removed" and v.size_bytes < variants[0].size_bytes / 2
    reloaded = load_manifest(tmp_path / "manifest.json")[1]
    assert reloaded.structural == "removed"


def _digits_with_residual_add(tmp_path: Path) -> Path:
    """digits with conv1's output added back after the depthwise layer (a residual join)."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    model = tflite_writer.unpack(DIGITS.read_bytes())
    g = model.subgraphs[0]
    names = [model.operatorCodes[op.opcodeIndex].builtinCode for op in g.operators]
    conv1, dw, conv2 = g.operators[0], g.operators[1], g.operators[2]
    assert names[:3] == [tflite.BuiltinOperator.CONV_2D, tflite.BuiltinOperator.DEPTHWISE_CONV_2D,
                         tflite.BuiltinOperator.CONV_2D]
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = tflite.BuiltinOperator.ADD
    code.version = 1
    model.operatorCodes.append(code)
    out = copy.deepcopy(g.tensors[dw.outputs[0]])
    out.name = "residual_add"
    g.tensors.append(out)
    add = schema.OperatorT()
    add.opcodeIndex = len(model.operatorCodes) - 1
    add.inputs = np.array([dw.outputs[0], conv1.outputs[0]], np.int32)
    add.outputs = np.array([len(g.tensors) - 1], np.int32)
    add.builtinOptionsType = schema.BuiltinOptions.AddOptions
    add.builtinOptions = schema.AddOptionsT()
    conv2.inputs = np.array([len(g.tensors) - 1, *conv2.inputs[1:]], np.int32)
    g.operators.insert(2, add)
    path = tmp_path / "digits_residual.tflite"
    path.write_bytes(tflite_writer.pack(model))
    return path


def test_a_residual_join_is_left_with_its_reason_and_the_rest_still_shrinks(tmp_path: Path) -> None:
    src = _digits_with_residual_add(tmp_path)
    x = digits_inputs()
    tflm_outputs(src.read_bytes(), x)  # the crafted model is a valid one
    mf = read_model(src)
    removed = prune_bytes(mf, method="channel", sparsity=0.5)
    zeroed = prune_bytes(mf, method="channel", sparsity=0.5, structural="zeroed")
    assert any(n.startswith("digits_cnn/conv1/Conv2D (CONV_2D): its channels meet another branch in ADD")
               for n in removed.not_pruned), removed.not_pruned
    assert "digits_cnn/conv2/Conv2D" in removed.layer_sparsity  # conv2 → pool → flatten → fc1 shrank
    assert "digits_cnn/conv1/Conv2D" not in removed.layer_sparsity
    assert inspect_bytes(removed.data, src, arena=False).params < inspect_model(src, arena=False).params
    assert np.array_equal(tflm_outputs(removed.data, x), tflm_outputs(zeroed.data, x))


def test_a_model_with_nothing_to_shrink_is_refused_with_the_reasons(tmp_path: Path) -> None:
    # keyword_scrambled: every hidden FULLY_CONNECTED feeds an SVDF, which channel removal cannot follow.
    with pytest.raises(ModelError, match=r"cannot shrink any layer.*flow into SVDF"):
        prune_family(KEYWORD, tmp_path / "out", ["channel"], [0.5], arena=False)
    assert not (tmp_path / "out").exists()


def test_prune_cli_shows_removal_and_which_runtimes_accept_the_variants(tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from harness.cli.models import prune_command

    app = typer.Typer()
    app.command("prune")(prune_command)
    app.command("unused")(lambda: None)  # two commands keep typer from collapsing to a single one
    out = tmp_path / "family"
    result = CliRunner().invoke(app, ["prune", str(PERSON), "--out", str(out), "--method", "channel",
                                      "--sparsity", "0.5"])
    assert result.exit_code == 0, result.output
    assert "channel (removed)" in result.output
    assert "LiteRT rejected: ValueError: quantized_dimension must be in range [0, 1)" in result.output
    original, pruned = load_manifest(out / "manifest.json")
    assert pruned.structural == "removed" and original.structural is None
    assert pruned.size_bytes < original.size_bytes / 2 and pruned.arena_bytes < original.arena_bytes
    for v in (original, pruned):
        assert v.runtimes["tflite-micro"] == "ok" and v.runtimes["litert"].startswith("rejected: ")
    zeroed = CliRunner().invoke(app, ["prune", str(DIGITS), "--out", str(tmp_path / "z"), "--method", "channel",
                                      "--sparsity", "0.5", "--structural", "zeroed"])
    assert zeroed.exit_code == 0, zeroed.output
    _, z = load_manifest(tmp_path / "z" / "manifest.json")
    assert z.structural == "zeroed" and z.name.endswith("-zeroed") and z.macs == original_macs(DIGITS)
    assert z.runtimes == {"litert": "ok", "tflite-micro": "ok"}


def original_macs(path: Path) -> int:
    return inspect_model(path, arena=False).macs

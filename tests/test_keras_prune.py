"""The keras pruning engine on a tiny model: channel pruning really narrows the layers (and the surgery
keeps the function when the removed channels were dead), magnitude pruning reaches its target, bad input
fails with the project's error types. Needs the `train` extra; skipped without TensorFlow."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.errors import ConfigError, DatasetError
from harness.models import keras_prune as kp
from harness.models.inspect import inspect_model

pytestmark = pytest.mark.train

SKIP_REASON = "TensorFlow/tf-keras/TF-MOT not importable: pip install 'hilbench[train]' (see ENVIRONMENT.md)"


@pytest.fixture(scope="module")
def tf_keras() -> Any:
    # Must be set before TensorFlow is first imported, or TF-MOT refuses tf_keras models.
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    pytest.importorskip("tensorflow", reason=SKIP_REASON)
    pytest.importorskip("tensorflow_model_optimization", reason=SKIP_REASON)
    return pytest.importorskip("tf_keras", reason=SKIP_REASON)


def _dataset(path: Path, *, drop: str | None = None) -> Path:
    """Three classes told apart by where a bright 3×3 patch sits; learnable in one epoch."""
    rng = np.random.default_rng(0)
    n = 120
    y = np.arange(n) % 3
    x = rng.uniform(0, 0.2, (n, 8, 8, 1)).astype(np.float32)
    for i, k in enumerate(y):
        x[i, 2 * k : 2 * k + 3, 2 * k : 2 * k + 3, 0] += 0.8
    arrays = {"x_train": x[:90], "y_train": y[:90], "x_test": x[90:], "y_test": y[90:]}
    if drop:
        arrays.pop(drop)
    np.savez(path, **arrays)
    return path


def _tiny_model(tf_keras: Any) -> Any:
    layers = tf_keras.layers
    kp.set_seed(0)
    return tf_keras.Sequential(
        [
            layers.InputLayer(input_shape=(8, 8, 1)),
            layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1"),
            layers.BatchNormalization(name="bn"),
            layers.DepthwiseConv2D(3, padding="same", activation="relu", name="dw"),
            layers.Conv2D(8, 1, activation="relu", name="conv2"),
            layers.MaxPooling2D(2, name="pool"),
            layers.Flatten(name="flatten"),
            layers.Dense(8, activation="relu", name="fc1"),
            layers.Dense(3, name="logits"),
        ],
        name="tiny",
    )


def _kill(model: Any, layer: str, channels: list[int]) -> None:
    """Zero some output channels' kernel and bias so their activations are exactly 0 after the ReLU."""
    w = model.get_layer(layer).get_weights()
    w[0][..., channels] = 0.0
    w[1][channels] = 0.0
    model.get_layer(layer).set_weights(w)


def test_channel_surgery_keeps_the_function_when_removed_channels_are_dead(tf_keras: Any, tmp_path: Path) -> None:
    model = _tiny_model(tf_keras)
    rng = np.random.default_rng(1)
    # Non-trivial batch-norm statistics, but the dead channels must stay 0 through it.
    bn = [rng.uniform(0.5, 1.5, 8), rng.normal(0, 0.1, 8), rng.normal(0, 0.1, 8), rng.uniform(0.5, 2, 8)]
    dead1 = [1, 3, 5, 7]
    for k in (1, 2):
        bn[k][dead1] = 0.0
    model.get_layer("bn").set_weights([a.astype(np.float32) for a in bn])
    _kill(model, "conv1", dead1)
    dw = model.get_layer("dw").get_weights()
    dw[1][dead1] = 0.0
    model.get_layer("dw").set_weights(dw)
    _kill(model, "conv2", [0, 2, 4, 6])
    _kill(model, "fc1", [0, 1, 2, 3])
    x = rng.uniform(0, 1, (16, 8, 8, 1)).astype(np.float32)
    ds = kp.load_dataset(_dataset(tmp_path / "d.npz"))

    narrow, not_pruned = kp.channel_prune(model, ds, 0.5, epochs=0)

    widths = {layer.name: layer.get_weights()[0].shape for layer in narrow.layers if layer.get_weights()}
    assert widths["conv1"] == (3, 3, 1, 4)
    assert widths["bn"] == (4,)
    assert widths["dw"] == (3, 3, 4, 1)
    assert widths["conv2"] == (1, 1, 4, 4)
    assert widths["fc1"] == (4 * 4 * 4, 4)  # the Flatten's rows for the kept channels only
    assert widths["logits"] == (4, 3)
    assert not_pruned == ["logits: output layer, its units are the classes"]
    np.testing.assert_allclose(narrow.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)


def test_channel_pruning_writes_narrower_int8_models(tf_keras: Any, tmp_path: Path) -> None:
    model_path = tmp_path / "tiny.keras"
    _tiny_model(tf_keras).save(model_path)
    data = _dataset(tmp_path / "d.npz")

    variants = kp.prune_keras(
        model_path, data, tmp_path / "out", method="channel", sparsities=[0.5], epochs=1, seed=0, command="t"
    )

    (v,) = variants
    assert v.name == "channel-50w" and v.path.name == "tiny_channel-50w.tflite" and v.engine == "keras"
    dense = tmp_path / "dense.tflite"
    ds = kp.load_dataset(data)
    dense.write_bytes(kp.convert_int8(kp.load_keras_model(model_path), ds.x_train))
    before, after = inspect_model(dense, arena=False), inspect_model(v.path, arena=False)
    assert after.params < 0.5 * before.params and after.macs < 0.5 * before.macs
    assert after.size_bytes < before.size_bytes
    assert v.params == after.params and v.macs == after.macs and v.arena_bytes
    conv_out = [op.output_shape[-1] for op in after.ops if op.op == "CONV_2D"]
    assert conv_out == [4, 4]
    assert v.accuracy is not None and 0.0 <= v.accuracy <= 1.0


def test_magnitude_pruning_reaches_target_and_reports_the_depthwise(tf_keras: Any, tmp_path: Path) -> None:
    model_path = tmp_path / "tiny.h5"
    _tiny_model(tf_keras).save(model_path)

    (v,) = kp.prune_keras(
        model_path, _dataset(tmp_path / "d.npz"), tmp_path, method="magnitude", sparsities=[0.75], epochs=1
    )

    assert v.name == "magnitude-75" and v.target_sparsity == 0.75 and v.scope == "layer"
    skipped = {entry.split(": ")[0] for entry in v.not_pruned}
    assert len(skipped) == 1 and "dw" in next(iter(skipped))
    pruned = {k: s for k, s in v.layer_sparsity.items() if k not in skipped}
    assert len(pruned) == 4
    for layer, s in pruned.items():
        assert 0.74 <= s <= 0.80, (layer, s)
    assert v.size_bytes == v.path.stat().st_size


def test_missing_dataset_key_is_a_dataset_error(tmp_path: Path) -> None:
    data = _dataset(tmp_path / "d.npz", drop="y_train")
    with pytest.raises(DatasetError, match="y_train"):
        kp.prune_keras(tmp_path / "m.keras", data, tmp_path, method="magnitude", sparsities=[0.5])


def test_unknown_method_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no method 'random'"):
        kp.prune_keras(tmp_path / "m.keras", tmp_path / "d.npz", tmp_path, method="random", sparsities=[0.5])


def test_missing_tensorflow_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes the next import fail as if the package were not installed.
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    with pytest.raises(ConfigError) as err:
        kp.import_tf()
    assert "hilbench[train]" in str(err.value) and "--no-deps" in str(err.value)

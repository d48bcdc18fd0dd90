"""Fine-tuned pruning of Keras models (`bench prune --engine keras`, the optional `train` extra).

Post-training pruning of a .tflite (harness.models.prune_tflite) is cheap but collapses accuracy at high
sparsity; this engine prunes while training so the network can recover. Two methods:

- ``magnitude``: gradual magnitude pruning with TF-MOT, fine-tuned, then `strip_pruning`. The weights stay
  dense tensors full of zeros, so only the gzip size shrinks on a device.
- ``channel``: structured pruning that physically removes the lowest-L1 filters/units and rebuilds a
  narrower model, so params, MACs, arena and latency really drop.

TensorFlow is imported lazily: importing this module must work in the plain runtime environment.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import ConfigError, DatasetError, ModelError
from harness.models.tflite_file import sha256_bytes
from harness.models.variant import ModelVariant

log = logging.getLogger(__name__)

DATASET_KEYS = ("x_train", "y_train", "x_test", "y_test")
ACCURACY_METHOD = "LiteRT BUILTIN_REF int8 kernels, top-1 on x_test/y_test ({n} samples)"
TRAIN_HINT = (
    "Install the optional extra: pip install 'hilbench[train]'. Install order matters: "
    "pip install tensorflow-cpu==2.21.0 scikit-learn dm-tree mock, then "
    "pip install --no-deps tf-keras==2.21.0 tensorflow-model-optimization==0.8.1 "
    "(without --no-deps tf-keras pulls the 572 MB GPU tensorflow wheel)."
)

# Layer classes that carry no weights along the channel axis and keep channel order unchanged.
_CHANNEL_PASSTHROUGH = {
    "Activation",
    "ReLU",
    "LeakyReLU",
    "Dropout",
    "SpatialDropout2D",
    "MaxPooling2D",
    "AveragePooling2D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling2D",
    "InputLayer",
    "ZeroPadding2D",
}


# --------------------------------------------------------------------------------------------- TF loading


def import_tf() -> tuple[Any, Any]:
    """(tensorflow, tf_keras), with legacy Keras selected; ConfigError naming the extra when absent."""
    # TF-MOT only wraps tf_keras models; the switch is read when tensorflow is first imported.
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow as tf
        import tf_keras
    except ImportError as exc:
        raise ConfigError(
            f"the keras pruning engine needs TensorFlow and tf-keras, which are not importable ({exc}).",
            hint=TRAIN_HINT,
        ) from None
    return tf, tf_keras


def import_tfmot() -> Any:
    import_tf()
    try:
        import tensorflow_model_optimization as tfmot
    except ImportError as exc:
        raise ConfigError(
            f"magnitude pruning needs tensorflow-model-optimization, which is not importable ({exc}).",
            hint=TRAIN_HINT,
        ) from None
    return tfmot


def set_seed(seed: int) -> None:
    """Seed every generator training touches and ask TF for deterministic kernels."""
    tf, tf_keras = import_tf()
    random.seed(seed)
    np.random.seed(seed)
    tf_keras.utils.set_random_seed(seed)
    # Raises if the runtime was already configured in this process; determinism is then already set.
    with contextlib.suppress(RuntimeError):
        tf.config.experimental.enable_op_determinism()


# ------------------------------------------------------------------------------------------------ dataset


@dataclass(frozen=True)
class Dataset:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_dataset(path: str | Path, keys: Sequence[str] = DATASET_KEYS) -> Dataset:
    """Load a labelled .npz; a missing file or key is a DatasetError naming it."""
    path = Path(path)
    try:
        with np.load(path) as npz:
            missing = [k for k in keys if k not in npz.files]
            if missing:
                raise DatasetError(
                    f"dataset {str(path)!r} lacks {missing} (has {sorted(npz.files)}).",
                    hint="Fine-tuning needs x_train, y_train, x_test and y_test in one .npz.",
                )
            arrays = {k: npz[k] for k in DATASET_KEYS if k in npz.files}
    except FileNotFoundError:
        raise DatasetError(f"dataset {str(path)!r} does not exist.") from None
    except (OSError, ValueError) as exc:
        raise DatasetError(f"dataset {str(path)!r} is not a readable .npz: {exc}.") from None
    for split in ("train", "test"):
        x, y = arrays.get(f"x_{split}"), arrays.get(f"y_{split}")
        if x is not None and y is not None and len(x) != len(y):
            raise DatasetError(
                f"dataset {str(path)!r}: x_{split} has {len(x)} samples but y_{split} has {len(y)}."
            )
    empty = np.zeros((0,), np.float32)
    return Dataset(
        x_train=arrays.get("x_train", empty).astype(np.float32),
        y_train=arrays.get("y_train", empty).astype(np.int64),
        x_test=arrays.get("x_test", empty).astype(np.float32),
        y_test=arrays.get("y_test", empty).astype(np.int64),
    )


# ------------------------------------------------------------------------------------------ int8 + LiteRT


def convert_int8(model: Any, representative: np.ndarray, *, samples: int = 200) -> bytes:
    """Full-integer int8 conversion (int8 input and output) calibrated on `representative`."""
    tf, _ = import_tf()
    calib = representative[:samples].astype(np.float32)

    def gen() -> Iterator[list[np.ndarray]]:
        for i in range(len(calib)):
            yield [calib[i : i + 1]]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = gen
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return bytes(converter.convert())


def litert_accuracy(model: bytes | str | Path, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy with LiteRT's reference kernels, inputs quantized the way the sweep does."""
    from harness.models.dataset import input_spec, quantize
    from harness.models.evaluate import litert_outputs
    from harness.models.tflite_file import parse_model

    path = Path(model) if isinstance(model, str | Path) else Path("<converted model>")
    data = path.read_bytes() if isinstance(model, str | Path) else model
    samples = quantize(x, input_spec(parse_model(data, path)), source=path)
    outputs = litert_outputs(data, samples, kernels="reference")
    return float(np.mean(outputs.reshape(len(samples), -1).argmax(axis=1) == y))


# ---------------------------------------------------------------------------------- what the int8 file holds


def _tflite_layer(keras_name: str, layers: Sequence[str]) -> str:
    """The converted layer key ('model/dw/depthwise') for a Keras layer name ('dw'), so `not_pruned` and
    `layer_sparsity` name layers the same way; the Keras name when the converter kept none."""
    matches = [key for key in layers if f"/{keras_name}/" in f"/{key}/"]
    return matches[0] if len(matches) == 1 else keras_name


def describe(
    data: bytes,
    path: Path,
    *,
    name: str,
    method: str,
    engine: str | None,
    target_sparsity: float | None,
    accuracy: float | None,
    n_test: int,
    command: str | None,
    scope: str | None = None,
    base_sha256: str | None = None,
    not_pruned: Sequence[str] = (),
) -> ModelVariant:
    """A ModelVariant for an int8 file already written at `path`, with figures measured from that file.

    Sparsity counts weights equal to their quantization zero point (what a pruned int8 weight becomes),
    over weight tensors only (biases are never pruned); the arena is TFLM's smallest working one.
    """
    from harness.models.inspect import inspect_bytes

    report = inspect_bytes(data, path)
    layers = report.layer_zero_fraction()
    named = []
    for entry in not_pruned:
        layer, sep, reason = entry.partition(": ")
        named.append(f"{_tflite_layer(layer, list(layers))}{sep}{reason}")
    return ModelVariant(
        name=name,
        path=path,
        sha256=report.sha256,
        method=method,
        engine=engine,
        scope=scope,
        base_sha256=base_sha256,
        target_sparsity=target_sparsity,
        measured_sparsity=round(report.zero_fraction, 4),
        layer_sparsity={k: round(v, 4) for k, v in layers.items()},
        params=report.params,
        macs=report.macs,
        size_bytes=report.size_bytes,
        gzip_bytes=report.gzip_bytes,
        arena_bytes=report.arena.minimum_bytes if report.arena else None,
        accuracy=None if accuracy is None else round(accuracy, 4),
        accuracy_method=None if accuracy is None else ACCURACY_METHOD.format(n=n_test),
        not_pruned=named,
        structural="removed" if method == "channel" else None,  # rebuilt narrower: the channels are gone
        runtimes=report.runtimes,
        command=command,
    )


# ------------------------------------------------------------------------------------------ Keras helpers


def load_keras_model(path: str | Path) -> Any:
    """Load a .keras or .h5 model without its optimizer (fine-tuning compiles afresh)."""
    _, tf_keras = import_tf()
    path = Path(path)
    if not path.exists():
        raise ModelError(f"Keras model {str(path)!r} does not exist.")
    if path.suffix not in (".keras", ".h5", ".hdf5"):
        raise ModelError(
            f"{str(path)!r} is not a Keras model file.",
            hint="The keras engine takes a .keras or .h5 model; prune a .tflite with --engine tflite.",
        )
    try:
        return tf_keras.models.load_model(path, compile=False)
    except (OSError, ValueError, TypeError) as exc:
        raise ModelError(f"Keras model {str(path)!r} cannot be loaded: {exc}") from None


def _labels(y: np.ndarray) -> np.ndarray:
    # One-hot labels are accepted; everything downstream (accuracy, loss) wants class indices.
    return np.argmax(y, axis=-1) if y.ndim == 2 else y.astype(np.int64)


def compile_for_finetune(model: Any, learning_rate: float = 1e-3) -> None:
    """Sparse categorical cross-entropy, from logits unless the model already ends in a softmax."""
    _, tf_keras = import_tf()
    # A TF-MOT wrapper hides the wrapped layer's activation.
    last = getattr(model.layers[-1], "layer", model.layers[-1])
    activation = getattr(last, "activation", None)
    ends_in_softmax = getattr(activation, "__name__", "") == "softmax" or type(last).__name__ == "Softmax"
    model.compile(
        optimizer=tf_keras.optimizers.Adam(learning_rate),
        loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=not ends_in_softmax),
        metrics=["accuracy"],
    )


def fit(model: Any, ds: Dataset, epochs: int, *, batch_size: int = 32, callbacks: Sequence[Any] = ()) -> None:
    if epochs <= 0:
        return
    if len(ds.x_train) == 0:
        raise DatasetError("fine-tuning needs x_train/y_train, and the dataset has no training samples.")
    model.fit(
        ds.x_train,
        _labels(ds.y_train),
        epochs=epochs,
        batch_size=batch_size,
        shuffle=True,
        verbose=0,
        callbacks=list(callbacks),
    )


# --------------------------------------------------------------------------------------- magnitude (TF-MOT)

SCHEDULES = ("polynomial", "constant")


def _has_kernel(layer: Any) -> bool:
    return any(key in w.name for w in layer.weights for key in ("kernel", "embeddings"))


def magnitude_prune(
    model: Any,
    ds: Dataset,
    sparsity: float,
    *,
    epochs: int,
    schedule: str = "polynomial",
    batch_size: int = 32,
    learning_rate: float = 1e-3,
) -> tuple[Any, list[str]]:
    """Gradual magnitude pruning with fine-tuning; returns the stripped model and what was left dense.

    The polynomial schedule ramps sparsity from 0 over all but the last epoch, which then runs at the
    final sparsity so the network recovers from the last pruning step.
    """
    _, tf_keras = import_tf()
    tfmot = import_tfmot()
    sk = tfmot.sparsity.keras
    if schedule not in SCHEDULES:
        raise ConfigError(f"unknown pruning schedule {schedule!r}; choose one of {list(SCHEDULES)}.")
    if not 0.0 < sparsity < 1.0:
        raise ConfigError(f"magnitude sparsity must lie in (0, 1), got {sparsity}.")
    epochs = max(1, epochs)
    steps_per_epoch = int(np.ceil(len(ds.x_train) / batch_size))
    frequency = max(1, min(10, steps_per_epoch))
    last_step = epochs * steps_per_epoch - 1
    # The final sparsity is applied only on a pruning step the run actually reaches: the ramp must end
    # on a multiple of the frequency, no later than the last step.
    end_step = min(max(1, epochs - 1) * steps_per_epoch, last_step) // frequency * frequency
    if schedule == "polynomial" and end_step > 0:
        sched = sk.PolynomialDecay(
            initial_sparsity=0.0, final_sparsity=sparsity, begin_step=0, end_step=end_step, frequency=frequency
        )
    else:
        # Also the fallback for runs too short to ramp: prune to the target from step 0.
        sched = sk.ConstantSparsity(sparsity, begin_step=0, frequency=frequency)

    not_pruned: list[str] = []

    def wrap(layer: Any) -> Any:
        try:
            return sk.prune_low_magnitude(layer, pruning_schedule=sched)
        except ValueError:
            # Normalisation layers have no kernel to prune (and fold into the conv on conversion).
            if _has_kernel(layer):
                not_pruned.append(f"{layer.name}: {type(layer).__name__}, not supported by TF-MOT")
            return layer

    # The wrappers hold the original layers, so the trained weights carry over without copying.
    pruned = tf_keras.models.clone_model(model, clone_function=wrap)
    for layer in pruned.layers:
        # TF-MOT wraps some layers (DepthwiseConv2D) without pruning anything in them. Its wrapper class
        # is not public API, so recognise it by the attributes it has.
        inner = getattr(layer, "layer", None)
        if inner is not None and _has_kernel(inner) and not getattr(layer, "prunable_weights", True):
            not_pruned.append(f"{inner.name}: {type(inner).__name__}, TF-MOT leaves its weights dense")
    compile_for_finetune(pruned, learning_rate)
    fit(pruned, ds, epochs, batch_size=batch_size, callbacks=[sk.UpdatePruningStep()])
    return sk.strip_pruning(pruned), sorted(not_pruned)


# ------------------------------------------------------------------------------------ structured channels

# Layers channel pruning narrows: the class name and the config key holding the output width.
_WIDTH_KEY = {"Conv2D": "filters", "Dense": "units"}


def _chain(model: Any) -> list[Any]:
    """The model's layers if they form one straight chain; channel surgery cannot follow branches."""
    layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    if type(model).__name__ == "Sequential":
        return layers
    for prev, layer in zip([None, *layers[:-1]], layers, strict=True):
        inbound = [node.inbound_layers for node in layer._inbound_nodes]
        flat = [n for group in inbound for n in (group if isinstance(group, list) else [group])]
        names = {getattr(n, "name", None) for n in flat}
        if len(flat) != 1 or (prev is not None and names != {prev.name}):
            raise ModelError(
                f"channel pruning needs a plain chain of layers, but {layer.name!r} "
                f"({type(layer).__name__}) is fed by {sorted(str(n) for n in names)}, "
                f"not only by the layer before it ({getattr(prev, 'name', 'the input')!r}).",
                hint="Use --method magnitude for models with branches or residual connections.",
            )
    return layers


def _rank_l1(kernel: np.ndarray, keep_n: int) -> np.ndarray:
    """Indices of the `keep_n` output channels (last axis) with the largest L1 norm, in original order."""
    l1 = np.abs(kernel.reshape(-1, kernel.shape[-1])).sum(axis=0)
    # A stable sort makes ties (e.g. dead filters) resolve the same way on every run.
    order = np.argsort(-l1, kind="stable")[:keep_n]
    return np.sort(order)


def channel_prune(
    model: Any,
    ds: Dataset,
    keep: float,
    *,
    epochs: int,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
) -> tuple[Any, list[str]]:
    """Remove the lowest-L1 filters/units so `keep` of each hidden Conv2D/Dense remains, then fine-tune.

    Every layer that consumes a narrowed tensor is sliced to match: depthwise convolutions and batch
    norms in between lose the same channels, a Flatten expands the kept channels over its spatial
    positions, and the next Conv2D/Dense loses the matching input rows. The last weighted layer keeps
    its outputs (they are the classes).
    """
    _, tf_keras = import_tf()
    if not 0.0 < keep <= 1.0:
        raise ConfigError(f"channel width to keep must lie in (0, 1], got {keep}.")
    layers = _chain(model)
    weighted = [i for i, layer in enumerate(layers) if type(layer).__name__ in _WIDTH_KEY]
    if len(weighted) < 2:
        raise ModelError(
            "channel pruning found no hidden Conv2D/Dense layer to narrow (only the output layer).",
        )
    last_weighted = weighted[-1]
    kept: np.ndarray | None = None  # kept indices along the current tensor's channel axis; None = all
    new_layers: list[Any] = []
    new_weights: list[list[np.ndarray]] = []
    not_pruned: list[str] = []
    for i, layer in enumerate(layers):
        kind = type(layer).__name__
        config = layer.get_config()
        weights = layer.get_weights()
        if kind in _WIDTH_KEY:
            if config.get("groups", 1) != 1:
                raise ModelError(f"channel pruning does not handle grouped convolution {layer.name!r}.")
            kernel = weights[0]
            if kept is not None:
                kernel = np.take(kernel, kept, axis=-2)
            if i == last_weighted:
                out = None
                not_pruned.append(f"{layer.name}: output layer, its units are the classes")
            else:
                width = kernel.shape[-1]
                out = _rank_l1(kernel, max(1, round(width * keep)))
                kernel = kernel[..., out]
                config[_WIDTH_KEY[kind]] = len(out)
            rest = [w if out is None else w[out] for w in weights[1:]]
            weights = [kernel, *rest]
            kept = out
        elif kind == "DepthwiseConv2D":
            mult = config.get("depth_multiplier", 1)
            if kept is not None:
                kernel = np.take(weights[0], kept, axis=2)
                # Output channel c*mult+m comes from input channel c.
                kept = (kept[:, None] * mult + np.arange(mult)[None, :]).ravel()
                weights = [kernel, *(w[kept] for w in weights[1:])]
        elif kind == "BatchNormalization":
            if kept is not None:
                weights = [w[kept] for w in weights]
        elif kind == "Flatten":
            if kept is not None:
                shape = layer.input_shape
                channels, positions = shape[-1], int(np.prod(shape[1:-1]))
                kept = (np.arange(positions)[:, None] * channels + kept[None, :]).ravel()
        elif kind not in _CHANNEL_PASSTHROUGH:
            if kept is not None:
                raise ModelError(
                    f"channel pruning cannot carry narrowed channels through {layer.name!r} ({kind}).",
                    hint="Supported between pruned layers: Conv2D, DepthwiseConv2D, Dense, "
                    "BatchNormalization, Flatten, pooling, activations, dropout.",
                )
            if weights:
                not_pruned.append(f"{layer.name}: {kind}, not handled by channel pruning")
        new_layers.append(type(layer).from_config(config))
        new_weights.append(weights)

    narrow = tf_keras.Sequential(
        [tf_keras.layers.InputLayer(input_shape=model.input_shape[1:]), *new_layers],
        # Same name as the original so converted layer keys ('digits_cnn/conv1/...') match across variants.
        name=model.name,
    )
    for layer, weights in zip(new_layers, new_weights, strict=True):
        layer.set_weights(weights)
    compile_for_finetune(narrow, learning_rate)
    fit(narrow, ds, epochs, batch_size=batch_size)
    return narrow, not_pruned


# ------------------------------------------------------------------------------------------- the engine

METHODS = ("magnitude", "channel")


def variant_name(method: str, sparsity: float) -> str:
    """'magnitude-50' (percent of weights zeroed) or 'channel-75w' (percent of width kept)."""
    if method == "channel":
        return f"channel-{round((1.0 - sparsity) * 100)}w"
    return f"{method}-{round(sparsity * 100)}"


def prune_keras(
    model_path: str | Path,
    dataset_npz: str | Path,
    out_dir: str | Path,
    *,
    method: str,
    sparsities: Sequence[float],
    epochs: int = 2,
    schedule: str = "polynomial",
    seed: int = 0,
    command: str | None = None,
    prefix: str | None = None,
    base_sha256: str | None = None,
    batch_size: int = 32,
) -> list[ModelVariant]:
    """Prune, fine-tune and int8-convert a Keras model once per sparsity; return the written variants.

    `sparsities` are fractions: for ``magnitude`` of weights zeroed in each pruned layer, for ``channel``
    of filters/units removed from each hidden Conv2D/Dense (0.25 keeps 75 % of the width: ``channel-75w``).
    Files are written as ``<prefix>_<variant>.tflite`` in `out_dir` (prefix defaults to the model's stem).
    The caller writes the manifest (`write_manifest`); `base_sha256` defaults to the Keras file's sha256.
    Each variant is trained from the same seed, so one variant's figures do not depend on the others.
    """
    if method not in METHODS:
        raise ConfigError(f"the keras engine has no method {method!r}; choose one of {list(METHODS)}.")
    if not sparsities:
        raise ConfigError("no sparsities given to prune to.")
    model_path, out_dir = Path(model_path), Path(out_dir)
    ds = load_dataset(dataset_npz)
    if not base_sha256:
        try:
            base_sha256 = sha256_bytes(model_path.read_bytes())
        except FileNotFoundError:
            raise ModelError(f"Keras model {str(model_path)!r} does not exist.") from None
    prefix = prefix or model_path.stem
    out_dir.mkdir(parents=True, exist_ok=True)
    variants = []
    for sparsity in sparsities:
        set_seed(seed)
        model = load_keras_model(model_path)
        name = variant_name(method, sparsity)
        log.info("keras engine: %s (%s, %d epochs)", name, method, epochs)
        if method == "magnitude":
            pruned, not_pruned = magnitude_prune(
                model, ds, sparsity, epochs=epochs, schedule=schedule, batch_size=batch_size
            )
        else:
            pruned, not_pruned = channel_prune(model, ds, 1.0 - sparsity, epochs=epochs, batch_size=batch_size)
        data = convert_int8(pruned, ds.x_train if len(ds.x_train) else ds.x_test)
        path = out_dir / f"{prefix}_{name}.tflite"
        path.write_bytes(data)
        accuracy = litert_accuracy(data, ds.x_test, _labels(ds.y_test)) if len(ds.x_test) else None
        variant = describe(
            data,
            path,
            name=name,
            method=method,
            engine="keras",
            scope="layer" if method == "magnitude" else None,
            target_sparsity=float(sparsity),
            accuracy=accuracy,
            n_test=len(ds.x_test),
            command=command,
            base_sha256=base_sha256,
            not_pruned=not_pruned,
        )
        variants.append(replace(variant, dataset=Path(dataset_npz)))
    return variants

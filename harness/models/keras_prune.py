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
import gzip
import logging
import os
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import ConfigError, DatasetError
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
    """Top-1 accuracy with LiteRT's reference kernels (what TFLM's kernels agree with on argmax)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    data = Path(model).read_bytes() if isinstance(model, str | Path) else model
    interp = Interpreter(
        model_content=data, experimental_op_resolver_type=OpResolverType.BUILTIN_REF
    )
    inp = interp.get_input_details()[0]
    interp.resize_tensor_input(inp["index"], [len(x), *inp["shape"][1:]])
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    out = interp.get_output_details()[0]
    scale, zero = inp["quantization"]
    if inp["dtype"] in (np.int8, np.uint8) and scale:
        info = np.iinfo(inp["dtype"])
        q = np.clip(np.round(x / scale + zero), info.min, info.max).astype(inp["dtype"])
    else:
        q = x.astype(inp["dtype"])
    interp.set_tensor(inp["index"], q)
    interp.invoke()
    pred = np.argmax(interp.get_tensor(out["index"]), axis=-1)
    return float(np.mean(pred == y))


# ---------------------------------------------------------------------------------- what the int8 file holds

# Builtin operator codes of the layers whose weights pruning touches (tflite schema BuiltinOperator).
_WEIGHTED_OPS = {3: "CONV_2D", 4: "DEPTHWISE_CONV_2D", 9: "FULLY_CONNECTED"}


@dataclass(frozen=True)
class LayerWeights:
    name: str
    op: str
    weights: int
    zeros: int
    bias: int
    macs: int


def _layer_name(tensor_name: str) -> str:
    """'model/conv1/Relu;model/conv1/BiasAdd;...' -> 'conv1': the converter fuses names, keep the layer's."""
    parts = tensor_name.split(";")[0].split("/")
    return parts[-2] if len(parts) >= 3 else parts[0]


def weighted_layers(data: bytes, path: str | Path = "<bytes>") -> list[LayerWeights]:
    """Per weighted operator: weight count, weights equal to the quantization zero point, bias, MACs.

    A minimal stand-in used when harness.models.inspect is not installed; the zero point (not the value 0)
    is what a pruned int8 weight becomes, so that is what is counted.
    """
    from harness.models.tflite_file import parse_model

    model = parse_model(data, Path(path)).model
    graph = model.Subgraphs(0)
    layers = []
    for o in range(graph.OperatorsLength()):
        op = graph.Operators(o)
        code = model.OperatorCodes(op.OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin not in _WEIGHTED_OPS:
            continue
        w_t = graph.Tensors(op.Inputs(1))
        buf = model.Buffers(w_t.Buffer())
        w = buf.DataAsNumpy().view(np.int8) if buf.DataLength() else np.zeros(0, np.int8)
        quant = w_t.Quantization()
        zp = quant.ZeroPointAsNumpy() if quant is not None and quant.ZeroPointLength() else np.zeros(1)
        shape = w_t.ShapeAsNumpy()
        # Per-channel zero points run along the quantized dimension; broadcast them over the rest.
        if np.size(zp) > 1:
            axis = quant.QuantizedDimension()
            bshape = [1] * len(shape)
            bshape[axis] = -1
            zeros = int(np.sum(w.reshape(shape) == np.asarray(zp).reshape(bshape)))
        else:
            zeros = int(np.sum(w == int(np.asarray(zp).ravel()[0])))
        bias = 0
        if op.InputsLength() > 2 and op.Inputs(2) >= 0:
            bias = int(np.prod(graph.Tensors(op.Inputs(2)).ShapeAsNumpy()))
        out_shape = graph.Tensors(op.Outputs(0)).ShapeAsNumpy()
        name = _layer_name(graph.Tensors(op.Outputs(0)).Name().decode())
        n_out = int(np.prod(out_shape))
        if builtin == 3:  # OHWI: every output element sums kh*kw*in_c products
            macs = n_out * int(np.prod(shape[1:]))
        elif builtin == 4:  # 1HWC: one kh*kw window per output element
            macs = n_out * int(shape[1] * shape[2])
        else:  # (units, in)
            macs = n_out * int(shape[-1])
        layers.append(LayerWeights(name, _WEIGHTED_OPS[builtin], int(w.size), zeros, bias, macs))
    return layers


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
    """A ModelVariant for an int8 file already written at `path`, with its measured figures."""
    layers = weighted_layers(data, path)
    weights = sum(lw.weights for lw in layers)
    zeros = sum(lw.zeros for lw in layers)
    return ModelVariant(
        name=name,
        path=path,
        sha256=sha256_bytes(data),
        method=method,
        engine=engine,
        scope=scope,
        base_sha256=base_sha256,
        target_sparsity=target_sparsity,
        measured_sparsity=round(zeros / weights, 4) if weights else 0.0,
        layer_sparsity={lw.name: round(lw.zeros / lw.weights, 4) for lw in layers if lw.weights},
        params=weights + sum(lw.bias for lw in layers),
        macs=sum(lw.macs for lw in layers),
        size_bytes=len(data),
        gzip_bytes=len(gzip.compress(data, compresslevel=9, mtime=0)),
        accuracy=None if accuracy is None else round(accuracy, 4),
        accuracy_method=None if accuracy is None else ACCURACY_METHOD.format(n=n_test),
        not_pruned=list(not_pruned),
        command=command,
    )

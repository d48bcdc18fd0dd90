"""Regenerate the bundled example family in harness/models/data/digits/ (needs the `train` extra).

    TF_USE_LEGACY_KERAS=1 python scripts/make_example_family.py --seed 0

A small int8 CNN trained on scikit-learn's bundled digits (8×8 grayscale, no download), with a fixed seed
and a held-out labelled test split, written with its manifest so the default sweep needs no network.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from harness.models import keras_prune as kp
from harness.models.variant import ModelVariant, write_manifest
from harness.models.zoo import EXAMPLE_DIR

COMMAND = "TF_USE_LEGACY_KERAS=1 python scripts/make_example_family.py --seed {seed}"
TEST_FRACTION = 0.2
EPOCHS = 40
DATASET = "digits_test.npz"
# (method, sparsities, fine-tune epochs). Channel sparsity is the fraction of filters removed:
# 0.25 -> channel-75w, 0.5 -> channel-50w. Narrow models start further from a good optimum, so more epochs.
FINE_TUNED = [("magnitude", [0.5, 0.75, 0.9], 10), ("channel", [0.25, 0.5], 20)]
PTQ_SPARSITIES = [0.5, 0.75, 0.9]

log = logging.getLogger("make_example_family")


def load_digits_split(seed: int) -> kp.Dataset:
    """Digits as float32 NHWC in [0, 1], split with a seeded stratified shuffle."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images.astype(np.float32) / 16.0)[..., None]
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=TEST_FRACTION, random_state=seed, stratify=y
    )
    return kp.Dataset(x_train, y_train, x_test, y_test)


def build_dense(tf_keras, seed: int):
    """Conv → depthwise → pointwise → pool → dense: small, but the dense layer carries enough weights
    (~16 K of ~18 K) for pruning to matter, and the depthwise shows what TF-MOT leaves alone."""
    init = tf_keras.initializers.GlorotUniform
    layers = tf_keras.layers
    return tf_keras.Sequential(
        [
            layers.InputLayer(input_shape=(8, 8, 1), name="image"),
            layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1",
                          kernel_initializer=init(seed)),
            layers.DepthwiseConv2D(3, padding="same", activation="relu", name="dw",
                                   depthwise_initializer=init(seed + 1)),
            layers.Conv2D(32, 1, activation="relu", name="conv2", kernel_initializer=init(seed + 2)),
            layers.MaxPooling2D(2, name="pool"),
            layers.Flatten(name="flatten"),
            layers.Dense(32, activation="relu", name="fc1", kernel_initializer=init(seed + 3)),
            layers.Dense(10, activation="softmax", name="fc2", kernel_initializer=init(seed + 4)),
        ],
        name="digits_cnn",
    )


def train(model, ds: kp.Dataset, epochs: int) -> None:
    _, tf_keras = kp.import_tf()
    model.compile(
        optimizer=tf_keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(ds.x_train, ds.y_train, epochs=epochs, batch_size=32, shuffle=True, verbose=0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=EXAMPLE_DIR)
    ap.add_argument("--keras-out", type=Path, default=None,
                    help="also keep the trained dense Keras model here (input for `bench prune --engine keras`)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    command = COMMAND.format(seed=args.seed)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("digits_*.tflite"):
        stale.unlink()
    t0 = time.monotonic()

    kp.set_seed(args.seed)
    _, tf_keras = kp.import_tf()
    ds = load_digits_split(args.seed)
    dataset = out / DATASET
    # The train split is small (~60 KB compressed) and lets `bench prune --engine keras` fine-tune on it.
    np.savez_compressed(dataset, x_test=ds.x_test, y_test=ds.y_test, x_train=ds.x_train, y_train=ds.y_train)

    model = build_dense(tf_keras, args.seed)
    train(model, ds, EPOCHS)
    dense_bytes = kp.convert_int8(model, ds.x_train)
    dense_path = out / "digits_dense.tflite"
    dense_path.write_bytes(dense_bytes)
    acc = kp.litert_accuracy(dense_bytes, ds.x_test, ds.y_test)
    dense = kp.describe(dense_bytes, dense_path, name="dense", method="dense", engine="keras",
                        target_sparsity=0.0, accuracy=acc, n_test=len(ds.y_test), command=command)
    variants: list[ModelVariant] = [dense]
    t_dense = time.monotonic() - t0

    with tempfile.TemporaryDirectory() as tmp:
        keras_path = Path(tmp) / "digits_dense.keras"
        model.save(keras_path)
        if args.keras_out:
            shutil.copyfile(keras_path, args.keras_out)
        for method, sparsities, epochs in FINE_TUNED:
            variants += kp.prune_keras(keras_path, dataset, out, method=method, sparsities=sparsities,
                                       epochs=epochs, schedule="polynomial", seed=args.seed, command=command,
                                       prefix="digits", base_sha256=dense.sha256)
    t_tuned = time.monotonic() - t0 - t_dense
    variants += post_training(dense_path, ds, command, dense.sha256)

    write_manifest(out / "manifest.json", variants, dataset=DATASET)
    for v in variants:
        log.info("%-20s sparsity %.3f params %6d macs %7d size %6d gzip %6d acc %.4f",
                 v.name, v.measured_sparsity, v.params, v.macs, v.size_bytes, v.gzip_bytes, v.accuracy)
    total = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
    log.info("dense training %.1f s, pruning fine-tunes %.1f s, total %.1f s; data dir %d bytes",
             t_dense, t_tuned, time.monotonic() - t0, total)
    return 0


def post_training(dense_path: Path, ds: kp.Dataset, command: str, base_sha256: str) -> list[ModelVariant]:
    """Magnitude pruning of the int8 file without fine-tuning, to contrast with the fine-tuned variants."""
    try:
        from harness.models.prune_tflite import prune_file
    except ImportError:
        log.warning("harness.models.prune_tflite is not available: post-training variants skipped")
        return []
    variants = []
    for s in PTQ_SPARSITIES:
        name = f"ptq-magnitude-{round(s * 100)}"
        dst = dense_path.with_name(f"digits_{name}.tflite")
        prune_file(dense_path, dst, method="magnitude", sparsity=s, scope="layer")
        data = dst.read_bytes()
        acc = kp.litert_accuracy(data, ds.x_test, ds.y_test)
        variants.append(kp.describe(data, dst, name=name, method="magnitude", engine="tflite", scope="layer",
                                    target_sparsity=s, accuracy=acc, n_test=len(ds.y_test), command=command,
                                    base_sha256=base_sha256))
    return variants


if __name__ == "__main__":
    sys.exit(main())

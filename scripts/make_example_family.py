"""Regenerate the bundled example family in harness/models/data/digits/ (needs the `train` extra).

    TF_USE_LEGACY_KERAS=1 python scripts/make_example_family.py --seed 0

A small int8 CNN trained on scikit-learn's bundled digits (8×8 grayscale, no download), with a fixed seed
and a held-out labelled test split, written with its manifest so the default sweep needs no network.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
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


def train(model, ds: kp.Dataset, epochs: int, seed: int) -> None:
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
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    command = COMMAND.format(seed=args.seed)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()

    kp.set_seed(args.seed)
    _, tf_keras = kp.import_tf()
    ds = load_digits_split(args.seed)
    # The train split is small (~60 KB compressed) and lets `bench prune --engine keras` fine-tune on it.
    np.savez_compressed(out / "digits_test.npz", x_test=ds.x_test, y_test=ds.y_test,
                        x_train=ds.x_train, y_train=ds.y_train)

    model = build_dense(tf_keras, args.seed)
    train(model, ds, EPOCHS, args.seed)
    dense_bytes = kp.convert_int8(model, ds.x_train)
    dense_path = out / "digits_dense.tflite"
    dense_path.write_bytes(dense_bytes)
    acc = kp.litert_accuracy(dense_bytes, ds.x_test, ds.y_test)
    variants: list[ModelVariant] = [
        kp.describe(dense_bytes, dense_path, name="dense", method="dense", engine="keras",
                    target_sparsity=0.0, accuracy=acc, n_test=len(ds.y_test), command=command)
    ]
    write_manifest(out / "manifest.json", variants, dataset="digits_test.npz")
    for v in variants:
        log.info("%-20s sparsity %.3f params %6d macs %7d size %6d gzip %6d acc %.4f",
                 v.name, v.measured_sparsity, v.params, v.macs, v.size_bytes, v.gzip_bytes, v.accuracy)
    log.info("done in %.1f s", time.monotonic() - t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The bundled example family: a digits CNN and its pruned variants, shipped as package data so the
default sweep needs no download. `scripts/make_example_family.py` regenerates it with a fixed seed."""

from __future__ import annotations

from pathlib import Path

EXAMPLE_DIR = Path(__file__).parent / "data" / "digits"
EXAMPLE_MANIFEST = EXAMPLE_DIR / "manifest.json"
EXAMPLE_DATASET = EXAMPLE_DIR / "digits_test.npz"

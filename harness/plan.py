"""From a config to the plan of a sweep: the variants to measure and the cells, in lane order."""

from __future__ import annotations

from pathlib import Path

from harness.cell import Cell
from harness.config import EXAMPLE_MODELS, BenchConfig
from harness.models import zoo
from harness.models.variant import ModelVariant, load_models

#: Methods that are the unpruned reference of a family; always measured, whatever the filters say.
BASELINE_METHODS = {"dense", "original"}


def resolve_model_ref(ref: str, base_dir: Path) -> Path:
    if ref == EXAMPLE_MODELS:
        return zoo.EXAMPLE_MANIFEST
    path = Path(ref).expanduser()
    return path if path.is_absolute() else base_dir / path


def select_variants(config: BenchConfig) -> list[ModelVariant]:
    """Every variant the config names, filtered by method and target sparsity, without duplicates."""
    sweep = config.sweep
    chosen: dict[str, ModelVariant] = {}
    for ref in sweep.models:
        for variant in load_models(resolve_model_ref(ref, config.base_dir)):
            if variant.method not in BASELINE_METHODS:
                if sweep.methods and variant.method not in sweep.methods:
                    continue
                if sweep.sparsities and not any(
                    variant.target_sparsity is not None and abs(variant.target_sparsity - s) < 1e-6
                    for s in sweep.sparsities
                ):
                    continue
            chosen.setdefault(variant.sha256, variant)
    return list(chosen.values())


def plan_cells(variants: list[ModelVariant], device_names: list[str], repeats: int) -> dict[str, list[Cell]]:
    """device -> its cells. Repeats are the outer loop so a slow drift (heat, a neighbour's load)
    spreads across variants instead of biasing one of them."""
    return {
        device: [Cell(device, v, r) for r in range(repeats) for v in variants]
        for device in device_names
    }

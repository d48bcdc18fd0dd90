"""From a config to the plan of a sweep: the variants to measure and the cells, in lane order."""

from __future__ import annotations

from pathlib import Path

from harness.cell import Cell
from harness.config import EXAMPLE_MODELS, BenchConfig
from harness.models import zoo
from harness.models.variant import ModelVariant, load_manifest, load_models

#: Methods the sweep can apply itself to a plain .tflite (post-training, no TensorFlow needed).
POST_TRAINING_METHODS = ("magnitude", "channel")
#: Where derived variants are cached, under the config's directory.
DERIVED_DIR = Path(".bench") / "variants"

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
        path = resolve_model_ref(ref, config.base_dir)
        found = _derive_variants(path, config) if _wants_derived(path, config) else load_models(path)
        for variant in found:
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


def _wants_derived(path: Path, config: BenchConfig) -> bool:
    """A plain .tflite with target sparsities asked for: the sweep prunes it post-training itself."""
    return path.suffix != ".json" and any(s > 0 for s in config.sweep.sparsities)


def _derive_variants(path: Path, config: BenchConfig) -> list[ModelVariant]:
    from harness.models.prune_tflite import prune_family
    from harness.models.tflite_file import read_model

    sweep = config.sweep
    methods = [m for m in (sweep.methods or ["magnitude"]) if m in POST_TRAINING_METHODS]
    sparsities = sorted({s for s in sweep.sparsities if s > 0})
    if not methods:
        return load_models(path)
    sha = read_model(path).sha256
    out = config.base_dir / DERIVED_DIR / f"{path.stem}-{sha[:12]}-{'-'.join(methods)}-{'-'.join(map(str, sparsities))}"
    manifest = out / "manifest.json"
    if manifest.is_file():
        return load_manifest(manifest)
    return prune_family(path, out, methods, sparsities, command=f"bench sweep (derived from {path})", arena=False)

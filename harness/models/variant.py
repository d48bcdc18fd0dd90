"""Model variants and the variant manifest that describes a pruned family.

A manifest is JSON beside the model files. `bench prune` writes it, the sweep reads it, and each entry
says what the variant is and how it was made, so every figure downstream keeps its provenance.

    {
      "format": "bench-variants/1",
      "dataset": "digits_test.npz",            # optional, relative to the manifest; x_test, y_test
      "variants": [ { "name": "...", "file": "...", "sha256": "...", ... }, ... ]
    }
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from harness.errors import ModelError
from harness.models.tflite_file import read_model

MANIFEST_FORMAT = "bench-variants/1"


@dataclass(frozen=True)
class ModelVariant:
    """One model file the sweep measures, with how it was made."""

    name: str
    path: Path
    sha256: str
    method: str = "original"  # original | dense | magnitude | channel
    engine: str | None = None  # keras (fine-tuned) | tflite (post-training) | None
    scope: str | None = None  # layer | global for magnitude pruning
    base_sha256: str | None = None
    target_sparsity: float | None = None
    measured_sparsity: float | None = None
    layer_sparsity: dict[str, float] = field(default_factory=dict)
    params: int | None = None
    macs: int | None = None
    size_bytes: int | None = None
    gzip_bytes: int | None = None
    arena_bytes: int | None = None
    accuracy: float | None = None
    accuracy_method: str | None = None
    not_pruned: list[str] = field(default_factory=list)
    # Channel pruning: "removed" (channels cut out, the model shrinks) or "zeroed" (same shape).
    structural: str | None = None
    # Which runtimes load and run the file: {"litert": "ok" | "rejected: ...", "tflite-micro": ...}.
    runtimes: dict[str, str] = field(default_factory=dict)
    command: str | None = None
    dataset: Path | None = None

    def provenance(self) -> dict[str, Any]:
        """Everything but the paths, as stored with the run."""
        d = asdict(self)
        d.pop("path")
        d.pop("dataset")
        return d


_MANIFEST_KEYS = {f.name for f in fields(ModelVariant)} - {"path", "dataset"} | {"file"}


def load_manifest(path: str | Path) -> list[ModelVariant]:
    """Read a manifest; every file must exist and match its recorded sha256."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError(f"variant manifest {str(path)!r} does not exist.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(
            f"variant manifest {str(path)!r} is not readable JSON: {exc}.",
            hint="Regenerate it with `bench prune`.",
        ) from None
    if not isinstance(doc, dict) or doc.get("format") != MANIFEST_FORMAT:
        raise ModelError(
            f"{str(path)!r} is not a bench variant manifest (expected \"format\": \"{MANIFEST_FORMAT}\").",
        )
    dataset = path.parent / doc["dataset"] if doc.get("dataset") else None
    variants = []
    for i, entry in enumerate(doc.get("variants", [])):
        unknown = set(entry) - _MANIFEST_KEYS
        if unknown:
            raise ModelError(f"{str(path)!r}: variant {i} has unknown keys {sorted(unknown)}.")
        entry = dict(entry)
        file = path.parent / entry.pop("file")
        model = read_model(file)
        if entry.get("sha256") != model.sha256:
            raise ModelError(
                f"{str(file)!r} does not match the sha256 recorded in {str(path)!r}.",
                hint="The file changed after the manifest was written; regenerate the family.",
            )
        variants.append(ModelVariant(path=file, dataset=dataset, **entry))
    if not variants:
        raise ModelError(f"variant manifest {str(path)!r} lists no variants.")
    return variants


def write_manifest(path: str | Path, variants: list[ModelVariant], dataset: str | None = None) -> None:
    path = Path(path)
    entries = []
    for v in variants:
        entry = {"file": v.path.relative_to(path.parent).as_posix(), **v.provenance()}
        entries.append(entry)
    doc: dict[str, Any] = {"format": MANIFEST_FORMAT, "variants": entries}
    if dataset:
        doc["dataset"] = dataset
    path.write_text(json.dumps(doc, indent=2) + "\n")


def variant_from_file(path: str | Path, dataset: str | Path | None = None) -> ModelVariant:
    """A plain .tflite given on the command line: measured as it is."""
    model = read_model(path)
    return ModelVariant(
        name=model.path.stem,
        path=model.path,
        sha256=model.sha256,
        size_bytes=len(model.data),
        dataset=Path(dataset) if dataset else None,
    )


def load_models(path: str | Path) -> list[ModelVariant]:
    """A model reference from bench.toml or --model: a manifest (.json) or a .tflite file."""
    path = Path(path)
    if path.suffix == ".json":
        return load_manifest(path)
    return [variant_from_file(path)]

"""The two sparsity figures of a model variant, named once so that every view shows the same two numbers.

A single "sparsity" hides which question it answers. Unstructured pruning keeps every weight and zeroes
some; structured pruning removes whole channels, so the smaller model's own weights are barely zero
while a large share of the dense model's weights is gone. Both answers are true; each view
(`bench show`, `bench prune`, the report's tables, figures and CSV) shows both, under these names:

- **zero weights** (`zero_weights`): the share of the variant's own weights that are zero
  (the manifest's `measured_sparsity`; a dense int8 model has a few zeros of its own);
- **removed or zero** (`removed_or_zero`): the share of the dense model's weights that this variant
  removed or holds as zero, ``1 - params × (1 - zero weights) / dense params``.

A pruning *target* (`target_sparsity`) is neither: it is what was asked for (for channel pruning,
the share of channels to remove).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

#: Methods that remove whole channels/filters; everything else zeroes individual weights.
METHOD_STRUCTURE: dict[str, str] = {
    "dense": "baseline", "original": "baseline",
    "magnitude": "unstructured", "random": "unstructured",
    "channel": "structured", "filter": "structured", "block": "structured",
}


@dataclass(frozen=True)
class SparsityFigure:
    column: str
    label: str
    meaning: str


ZERO_WEIGHTS = SparsityFigure("zero_weights", "zero weights", "share of the variant's own weights that are zero")
REMOVED_OR_ZERO = SparsityFigure("removed_or_zero", "removed or zero",
                                 "share of the dense model's weights removed or zero")
#: One sentence for a caption or a footnote that uses both labels.
LEGEND = f"{ZERO_WEIGHTS.label} = {ZERO_WEIGHTS.meaning}; {REMOVED_OR_ZERO.label} = {REMOVED_OR_ZERO.meaning}"


def structure(method: str | None) -> str:
    return METHOD_STRUCTURE.get(method or "original", "other")


def removed_or_zero(method: str | None, zero_weights: Any, params: Any, dense_params: Any) -> float | None:
    """Share of the dense model's weights removed or zero; None when it cannot be known.

    With both parameter counts it is exact for any method. Without the dense count, a method that
    never removes weights (the dense model itself, unstructured pruning) still answers with its
    zero share; a structured one cannot, and says so by returning None rather than a guess."""
    zero = _float(zero_weights)
    if math.isnan(zero):
        return None
    own, dense = _float(params), _float(dense_params)
    if not math.isnan(own) and not math.isnan(dense) and dense > 0:
        return float(1.0 - own * (1.0 - zero) / dense)
    if structure(method) in ("baseline", "unstructured"):
        return zero
    return None


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan

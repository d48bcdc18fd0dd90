"""Failed cells grouped by what went wrong, for the sweep's last lines and the report's warnings.

A model that one runtime rejects fails every cell of that device the same way (person_detect on
`local`: "quantized_dimension must be in range [0, 1)", once per variant and repeat). Printing that
error forty times hides the one fact that matters; printing it once with a count and a hint says it.
Errors that differ only by the variant's name (the step names it) are the same error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# (pattern in the error, what to do about it): the first match wins.
HINTS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"quantized_dimension must be in range|LiteRT rejected the model"),
     "LiteRT does not accept this model (TFLite Micro may: `bench models inspect MODEL` shows which "
     "runtimes do); measure it on a TFLite Micro device (sim, qemu, a board) or drop it from this device."),
    (re.compile(r"does not run in TFLite Micro|TFLM failed|Didn't find op|failed to allocate tensors"),
     "TFLite Micro does not accept this model or its arena; `bench models inspect MODEL` shows which "
     "runtimes do."),
]
SAME_ERROR_HINT = ("the same error on every one of these cells points at the model or the device, not at "
                   "chance; fix it, then `bench sweep --resume RUN --retry-failed` measures only these cells again.")


@dataclass(frozen=True)
class FailureGroup:
    device: str
    error: str  # the first cell's error as recorded
    cells: int
    variants: tuple[str, ...]
    hint: str | None

    def describe(self, *, limit: int = 3) -> str:
        shown = ", ".join(self.variants[:limit]) + (f", … ({len(self.variants)} variants)"
                                                     if len(self.variants) > limit else "")
        what = "1 cell failed" if self.cells == 1 else f"{self.cells} cells failed with the same error"
        text = f"{self.device}: {what} ({shown}): {short_error(self.error)}"
        return f"{text} — hint: {self.hint}" if self.hint else text


def short_error(error: str, limit: int = 400) -> str:
    """The error without LiteRT's per-tensor repetitions ("…Was 3.Tensor 36 has…"), at most `limit` chars."""
    text = error.split(".Tensor ")[0].strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def same_error_key(variant: str, error: str) -> str:
    """Errors that differ only by the variant's name (the failing step names it) are the same error."""
    return error.replace(variant, "<variant>") if variant else error


def hint_for(error: str, cells: int) -> str | None:
    for pattern, hint in HINTS:
        if pattern.search(error):
            return hint
    return SAME_ERROR_HINT if cells > 1 else None


def group_failures(cells: Iterable[tuple[str, str, str | None]]) -> list[FailureGroup]:
    """(device, variant, error) per failed cell -> one group per device and error, largest first."""
    groups: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for device, variant, error in cells:
        text = error or "no error recorded"
        key = (device, same_error_key(variant, text))
        groups.setdefault(key, []).append((variant, text))
    out = []
    for (device, _), members in groups.items():
        variants = tuple(dict.fromkeys(v for v, _ in members))
        out.append(FailureGroup(device=device, error=members[0][1], cells=len(members), variants=variants,
                                hint=hint_for(members[0][1], len(members))))
    return sorted(out, key=lambda g: (-g.cells, g.device))

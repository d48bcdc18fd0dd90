"""`bench models inspect|eval` and `bench prune`: argument adapters over harness.models.

Nothing here catches errors: library functions raise harness.errors types and the main CLI prints
them and exits 2. `prune_command` is a plain function so harness/cli.py can register it as
`bench prune`; engines plug into `PRUNE_ENGINES`.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from harness.defaults import KERNELS
from harness.errors import ConfigError

if TYPE_CHECKING:
    from harness.models.inspect import ModelReport
    from harness.models.variant import ModelVariant

# The model code loads numpy, tflite and LiteRT: each command imports what it uses when it runs.

models_app = typer.Typer(
    help="Inspect a .tflite model (operators, MACs, sparsity, sizes, TFLM arena) or measure its accuracy.",
    no_args_is_help=True,
)
console = Console(width=None if sys.stdout.isatty() else 200)

# engine -> fn(src, out_dir, methods, sparsities, scope, *, command, dataset) -> variants (manifest written).
PruneEngine = Callable[..., "list[ModelVariant]"]


def _keras_engine(src: Path, out_dir: Path, methods: Sequence[str], sparsities: Sequence[float], scope: str,
                  *, command: str | None = None, dataset: Path | None = None,
                  epochs: int | None = None) -> list[ModelVariant]:
    """Adapter to harness.models.keras_prune.prune_keras: one call per method, then the manifest."""
    if dataset is None:
        raise ConfigError("--engine keras fine-tunes, so it needs --data with x_train/y_train and x_test/y_test.")
    if scope != "layer":
        raise ConfigError("--engine keras prunes per layer only; drop --scope global.")
    # Imported on use: it needs the optional `train` extra (TensorFlow), which most installs lack.
    try:
        from harness.models.keras_prune import prune_keras
    except ImportError as exc:
        raise ConfigError(
            f"--engine keras is not available here ({exc}).",
            hint="Install the train extra: pip install 'hilbench[train]' (see docs for the install order).",
        ) from None
    variants = [v for method in methods
                for v in prune_keras(src, dataset, out_dir, method=method, sparsities=sparsities, command=command,
                                     **({"epochs": epochs} if epochs is not None else {}))]
    from harness.models.variant import write_manifest

    rel = os.path.relpath(Path(dataset).resolve(), Path(out_dir).resolve())
    write_manifest(Path(out_dir) / "manifest.json", variants, dataset=rel)
    return variants


def _tflite_engine(*args: Any, **kwargs: Any) -> list[ModelVariant]:
    from harness.models.prune_tflite import prune_family

    return prune_family(*args, **kwargs)


PRUNE_ENGINES: dict[str, PruneEngine] = {"tflite": _tflite_engine, "keras": _keras_engine}
FINE_TUNING_ENGINES = ("keras",)


@models_app.command("inspect")
def inspect_command(
    file: Annotated[Path, typer.Argument(help=".tflite model")],
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    no_arena: Annotated[bool, typer.Option("--no-arena", help="skip the TFLM arena search")] = False,
) -> None:
    """Operators, tensors, parameters, MACs, zero weights, file/gzip size and the TFLM arena."""
    from harness.models.inspect import inspect_model

    report = inspect_model(file, arena=not no_arena)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2, default=str))
        return
    _print_report(report)


@models_app.command("eval")
def eval_command(
    file: Annotated[Path, typer.Argument(help=".tflite model")],
    data: Annotated[Path, typer.Option("--data", help=".npz with x_test, y_test")],
    kernels: Annotated[str, typer.Option(help=f"LiteRT kernels: {' | '.join(KERNELS)}")] = "reference",
    samples: Annotated[int | None, typer.Option(help="use only the first N samples")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Top-1 accuracy (LiteRT) and agreement of TFLM's outputs with LiteRT's."""
    from harness.models.evaluate import evaluate

    report = evaluate(file, data, kernels=kernels, samples=samples)  # type: ignore[arg-type]
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2, default=str))
        return
    acc = "n/a" if report.accuracy is None else f"{report.accuracy:.4f}"
    console.print(f"{report.model}: top-1 {acc} on {report.samples} samples ({report.accuracy_runtime})")
    if report.agreement:
        a = report.agreement
        console.print(f"TFLM vs LiteRT: identical outputs {a.identical_outputs:.3f}, identical argmax "
                      f"{a.identical_argmax:.3f}, largest difference {a.max_lsb_diff} LSB")
    for note in report.notes:
        console.print(f"note: {note}")


def prune_command(
    model: Annotated[Path, typer.Argument(help="base model (.tflite for --engine tflite)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="directory for the variants and manifest.json")],
    method: Annotated[list[str], typer.Option("--method", help="magnitude | channel (repeatable)")] = ["magnitude"],  # noqa: B006 - typer reads the default, never mutates it
    sparsity: Annotated[list[float], typer.Option("--sparsity", help="target in [0, 1) (repeatable)")] = [0.5],  # noqa: B006
    scope: Annotated[str, typer.Option(help="layer | global (magnitude only)")] = "layer",
    engine: Annotated[str, typer.Option(help=f"{' | '.join(PRUNE_ENGINES)}")] = "tflite",
    data: Annotated[Path | None, typer.Option("--data", help=".npz to record each variant's accuracy")] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="fine-tuning epochs (--engine keras)")] = None,
) -> None:
    """Write a family of pruned variants and a manifest the sweep can measure."""
    fn = PRUNE_ENGINES.get(engine)
    if fn is None:
        raise ConfigError(f"unknown pruning engine {engine!r}; use one of {', '.join(PRUNE_ENGINES)}.")
    training: dict[str, Any] = {}
    if epochs is not None:
        if engine not in FINE_TUNING_ENGINES:
            raise ConfigError(f"--epochs applies to fine-tuning engines ({', '.join(FINE_TUNING_ENGINES)}), "
                              f"not to --engine {engine}.")
        training["epochs"] = epochs
    command = "bench prune " + shlex.join(sys.argv[2:]) if len(sys.argv) > 2 else None
    variants = fn(model, out, list(method), list(sparsity), scope, command=command, dataset=data, **training)
    _print_variants(variants, out / "manifest.json")


def _print_report(r: ModelReport) -> None:
    console.print(f"[bold]{r.path}[/]  sha256 {r.sha256[:12]}…")
    console.print(f"size {r.size_bytes} B, gzip -9 {r.gzip_bytes} B; params {r.params}; MACs {r.macs}"
                  f" (0 counted for {', '.join(r.ops_without_macs) or 'none'})")
    console.print(f"zero weights {r.zero_fraction:.2%} of {r.weight_elements}")
    for label, tensors in (("input", r.inputs), ("output", r.outputs)):
        for t in tensors:
            console.print(f"{label} {t.name!r} {t.shape} {t.dtype} scale {t.scale[:1]} zero point {t.zero_point[:1]}")
    if r.arena:
        console.print(f"TFLM arena: minimum {r.arena.minimum_bytes} B (to {r.arena.granularity_bytes} B, "
                      f"{r.arena.probes} probes), TFLM's recorded total {r.arena.tflm_total_bytes} B")
    table = Table("#", "op", "layer", "output", "MACs", "weights", "zero")
    for op in r.ops:
        zero = "" if op.zero_fraction is None else f"{op.zero_fraction:.1%}"
        table.add_row(str(op.index), op.op, op.layer if op.weight_tensor is not None else "",
                      "×".join(map(str, op.output_shape)), str(op.macs), str(op.weight_elements or ""), zero)
    console.print(table)
    for note in r.notes:
        console.print(f"note: {note}")


def _print_variants(variants: list[ModelVariant], manifest: Path) -> None:
    table = Table("variant", "method", "target", "measured", "size B", "gzip B", "arena B", "accuracy")
    for v in variants:
        table.add_row(v.name, v.method, _fmt(v.target_sparsity), _fmt(v.measured_sparsity), str(v.size_bytes),
                      str(v.gzip_bytes), str(v.arena_bytes), _fmt(v.accuracy))
    console.print(table)
    console.print(f"wrote {manifest}")


def _fmt(x: float | None) -> str:
    return "" if x is None else f"{x:.3f}"

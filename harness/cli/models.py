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
from rich.markup import escape

from harness.defaults import KERNELS
from harness.errors import ConfigError

if TYPE_CHECKING:
    from harness.models.inspect import ModelReport
    from harness.models.variant import ModelVariant

# The model code loads numpy, tflite and LiteRT: each command imports what it uses when it runs, and so
# do the printers (the tables, the sparsity legend, the runtime verdicts), so `bench --help` loads none.

models_app = typer.Typer(
    help="Inspect a .tflite model (operators, MACs, sparsity, sizes, TFLM arena) or measure its accuracy.",
    no_args_is_help=True,
)
console = Console(width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 200)

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

    report = inspect_model(file, arena=not no_arena, runtimes=True)
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
    structural: Annotated[str, typer.Option(
        help="--method channel: removed (cut the channels out, the model shrinks) | zeroed (same function, "
        "dense shape)")] = "removed",
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
    if structural != "removed":
        if engine != "tflite":
            raise ConfigError(f"--structural applies to --engine tflite, not to --engine {engine}.")
        training["structural"] = structural
    command = "bench prune " + shlex.join(sys.argv[2:]) if len(sys.argv) > 2 else None
    variants = fn(model, out, list(method), list(sparsity), scope, command=command, dataset=data, **training)
    _print_variants(variants, out / "manifest.json")


def _print_report(r: ModelReport) -> None:
    from harness.table import Col, fitted_table

    console.print(f"[bold]{r.path}[/]  sha256 {r.sha256[:12]}…")
    for line in runtime_lines(r.runtimes):
        console.print(line)
    console.print(f"size {r.size_bytes} B, gzip -9 {r.gzip_bytes} B; params {r.params}; MACs {r.macs}"
                  f" (0 counted for {', '.join(r.ops_without_macs) or 'none'})")
    console.print(f"zero weights {r.zero_fraction:.2%} of {r.weight_elements}")
    for label, tensors in (("input", r.inputs), ("output", r.outputs)):
        for t in tensors:
            console.print(f"{label} {t.name!r} {t.shape} {t.dtype} scale {t.scale[:1]} zero point {t.zero_point[:1]}")
    if r.arena:
        console.print(f"TFLM arena: minimum {r.arena.minimum_bytes} B (to {r.arena.granularity_bytes} B, "
                      f"{r.arena.probes} probes), TFLM's recorded total {r.arena.tflm_total_bytes} B")
    cols = [Col("#", keep=-1), Col("op", "left", figure=False, keep=-1), Col("layer", "left", figure=False, keep=10),
            Col("output", "left", keep=20), Col("MACs", keep=-1), Col("weights", keep=30), Col("zero", keep=40)]
    rows = [[str(op.index), op.op, op.layer if op.weight_tensor is not None else "",
             "×".join(map(str, op.output_shape)), str(op.macs), str(op.weight_elements or ""),
             "" if op.zero_fraction is None else f"{op.zero_fraction:.1%}"] for op in r.ops]
    console.print(fitted_table(cols, [[escape(c) for c in row] for row in rows], width=console.width,
                               hint="a wider terminal shows them"))
    for note in r.notes:
        console.print(f"note: {note}")


def runtime_lines(runtimes: dict[str, str]) -> list[str]:
    """'runs in: LiteRT, TFLite Micro', then one line per runtime that rejects the model and why."""
    if not runtimes:
        return []
    from harness.models.runtimes import accepted_by

    ok = [RUNTIME_LABELS.get(k, k) for k in accepted_by(runtimes)]
    lines = [f"runs in: {', '.join(ok) or '[red]no runtime[/]'}"]
    for name, verdict in runtimes.items():
        if verdict != "ok":
            devices = RUNTIME_DEVICES.get(name, "")
            lines.append(f"[yellow]{RUNTIME_LABELS.get(name, name)} {escape(verdict)}[/]"
                         + (f" — {devices} cells will fail on it" if devices else ""))
    return lines


RUNTIME_LABELS = {"litert": "LiteRT", "tflite-micro": "TFLite Micro"}
RUNTIME_DEVICES = {"litert": "local and ssh", "tflite-micro": "sim, qemu and MCU"}


def _print_variants(variants: list[ModelVariant], manifest: Path) -> None:
    from harness.models.runtimes import accepted_by
    from harness.sparsity import LEGEND as SPARSITY_LEGEND
    from harness.sparsity import REMOVED_OR_ZERO, ZERO_WEIGHTS, removed_or_zero
    from harness.table import Col, fitted_table

    cols = [Col("variant", "left", figure=False, keep=-1), Col("method", "left", figure=False, keep=10),
            Col("target", keep=20), Col(ZERO_WEIGHTS.label, keep=-1), Col(REMOVED_OR_ZERO.label, keep=-1),
            Col("params", keep=25), Col("MACs", keep=25), Col("size B", keep=-1), Col("gzip B", keep=30),
            Col("arena B", keep=40), Col("accuracy", keep=50), Col("runs in", "left", figure=False, keep=15)]
    rows = []
    params = {v.sha256: v.params for v in variants}
    for v in variants:
        method = f"{v.method} ({v.structural})" if v.structural else v.method
        runs = ", ".join(RUNTIME_LABELS.get(k, k) for k in accepted_by(v.runtimes)) if v.runtimes else ""
        removed = removed_or_zero(v.method, v.measured_sparsity, v.params, params.get(v.base_sha256 or ""))
        rows.append([v.name, method, _fmt(v.target_sparsity), _pct(v.measured_sparsity), _pct(removed),
                     str(v.params), str(v.macs), str(v.size_bytes), str(v.gzip_bytes), str(v.arena_bytes),
                     _fmt(v.accuracy), runs or ("none" if v.runtimes else "")])
    console.print(fitted_table(cols, [[escape(c) for c in row] for row in rows], width=console.width,
                               caption=f"{SPARSITY_LEGEND}; target = what pruning was asked for",
                               hint=f"{manifest} has them"))
    rejected = {k: verdict for v in variants for k, verdict in v.runtimes.items() if verdict != "ok"}
    for line in runtime_lines(rejected)[1:]:
        console.print(line)
    left: dict[str, list[str]] = {}
    for v in variants:
        for reason in v.not_pruned:
            left.setdefault(reason, []).append(v.name)
    for reason, names in left.items():
        where = names[0] if len(names) == 1 else f"{len(names)} variants"
        console.print(f"left as it was ({where}): {escape(reason)}")
    console.print(f"wrote {manifest}")


def _pct(x: float | None) -> str:
    return "" if x is None else f"{x:.1%}"


def _fmt(x: float | None) -> str:
    return "" if x is None else f"{x:.3f}"

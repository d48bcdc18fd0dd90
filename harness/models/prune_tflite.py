"""Post-training pruning of int8 .tflite models, without TensorFlow.

Pruning here means setting int8 weights to their zero point (the stored value for 0.0) in place:
the flatbuffer is parsed from a bytearray, whose buffers are writable NumPy views, so no byte moves
and the file stays loadable by LiteRT and TFLM. Biases are never touched. A buffer shared by several
weight tensors is pruned once. Weights without a constant buffer (computed at run time) are skipped.

- `magnitude` (unstructured): rank weights by |q − zero_point| × scale of their channel, the
  dequantized magnitude, and zero the smallest; scope `layer` takes that fraction from every layer,
  `global` uses one threshold across layers (so layers with small weights lose more).
- `channel` (structured): pick the output channels of each CONV_2D and FULLY_CONNECTED with the
  smallest L1 norm of dequantized weights and *remove* them (`structural="removed"`, the default):
  the layer's weights, bias and quantization parameters, the tensors downstream, any depthwise
  layer in between and the next layer's input channels all shrink, so file size, parameters, MACs,
  arena and latency fall (see `harness.models.channel_surgery`, which also says exactly what the
  result computes). `structural="zeroed"` writes the same function at the dense shape (the removed
  channels' weights and biases set to zero), to separate what the shape costs from what the
  arithmetic does. Layers whose outputs are the model's outputs (the classifier) are left alone:
  their channels are classes; so is a layer whose channels flow into something the surgery cannot
  follow (a residual ADD, a concatenation, an unknown operator), each listed in `not_pruned`.

Without fine-tuning, accuracy falls quickly with sparsity; these variants measure the *cost* side
(latency, RAM, flash, energy) of a sparsity pattern, and `--engine keras` exists for accuracy.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tflite

from harness.errors import ConfigError, ModelError
from harness.models import channel_surgery, tflite_writer
from harness.models.inspect import ModelReport, inspect_bytes, layer_name, zero_mask
from harness.models.tflite_file import (
    ModelFile,
    Quantization,
    constant_array,
    operator_name,
    quantization,
    read_model,
    type_name,
)
from harness.models.variant import ModelVariant, write_manifest

log = logging.getLogger(__name__)

# Per-channel quantization axis of the weights, which is also the output-channel axis.
PRUNABLE_AXES: dict[str, int] = {"CONV_2D": 0, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 0}
CHANNEL_OPS = ("CONV_2D", "FULLY_CONNECTED")
METHODS = ("magnitude", "channel")
SCOPES = ("layer", "global")
STRUCTURAL = ("removed", "zeroed")  # what channel pruning does with the channels it picks
# Operators whose output is the same values rearranged: a layer feeding one of these into a graph
# output still "is" the output layer for channel pruning.
_PASS_THROUGH = {"RESHAPE", "SOFTMAX", "LOGISTIC", "SQUEEZE", "QUANTIZE", "DEQUANTIZE", "ARG_MAX"}


@dataclass
class Target:
    """One prunable weight buffer and the layers that read it."""

    layers: list[str]
    op: str
    ops: list[int]  # operator indices in subgraph 0, one per layer
    buffer: int
    values: np.ndarray  # writable int8 view into the model bytes, shaped like the tensor
    quant: Quantization
    axis: int

    def magnitude(self) -> np.ndarray:
        scale, zero = self.quant.broadcast(self.values.shape)
        return np.abs(self.values.astype(np.int64) - zero) * scale

    def set_zero(self, mask: np.ndarray) -> None:
        _, zero = self.quant.broadcast(self.values.shape)
        np.copyto(self.values, np.broadcast_to(zero, self.values.shape).astype(np.int8), where=mask)


@dataclass
class PruneResult:
    data: bytes
    measured_sparsity: float  # zero weights / weights over the pruned buffers
    layer_sparsity: dict[str, float]
    not_pruned: list[str] = field(default_factory=list)
    structural: str | None = None  # channel pruning: "removed" or "zeroed"


def check_options(method: str, sparsity: float, scope: str, structural: str = "removed") -> None:
    if method not in METHODS:
        raise ConfigError(f"unknown pruning method {method!r}; use one of {', '.join(METHODS)}.")
    if scope not in SCOPES:
        raise ConfigError(f"unknown pruning scope {scope!r}; use one of {', '.join(SCOPES)}.")
    if not isinstance(sparsity, int | float) or not 0.0 <= float(sparsity) < 1.0:
        raise ConfigError(
            f"sparsity {sparsity!r} is outside [0, 1).",
            hint="Give the fraction of weights to zero, e.g. --sparsity 0.5 for 50 %.",
        )
    if method == "channel" and scope != "layer":
        raise ConfigError(
            "channel pruning ranks channels within each layer; --scope global applies to magnitude only.",
            hint="Use --scope layer with --method channel.",
        )
    if structural not in STRUCTURAL:
        raise ConfigError(f"unknown structural mode {structural!r}; use one of {', '.join(STRUCTURAL)}.")


def prune_bytes(
    mf: ModelFile,
    *,
    method: str,
    sparsity: float,
    scope: str = "layer",
    layers: Sequence[str] | None = None,
    structural: str = "removed",
) -> PruneResult:
    """Prune a parsed model in memory; the input `mf` is left as it was."""
    check_options(method, sparsity, scope, structural)
    data = bytearray(mf.data)
    model = tflite.Model.GetRootAs(data, 0)
    targets, not_pruned = find_targets(model, data, mf.path, method, layers)
    if method == "channel":
        return _channel_surgery(mf, targets, not_pruned, sparsity, structural)
    if scope == "global":
        _prune_smallest(targets, sparsity)
    else:
        for t in targets:
            _prune_smallest([t], sparsity)
    per_layer: dict[str, float] = {}
    zeros = total = 0
    for t in targets:
        z = int(zero_mask(t.values, t.quant).sum())
        zeros, total = zeros + z, total + t.values.size
        for name in t.layers:
            per_layer[name] = round(z / t.values.size, 4)
    return PruneResult(bytes(data), round(zeros / total, 4), per_layer, not_pruned)


def prune_file(
    src: str | Path,
    dst: str | Path,
    *,
    method: str,
    sparsity: float,
    scope: str = "layer",
    command: str | None = None,
    dataset: str | Path | None = None,
    arena: bool = True,
    layers: Sequence[str] | None = None,
    name: str | None = None,
    structural: str = "removed",
) -> ModelVariant:
    """Prune `src` into `dst` and describe the result; nothing is written if anything is wrong."""
    src, dst = Path(src), Path(dst)
    check_options(method, sparsity, scope, structural)
    _check_not_input(src, dst)
    mf = read_model(src)
    _check_dataset(mf, dataset)
    result = prune_bytes(mf, method=method, sparsity=sparsity, scope=scope, layers=layers, structural=structural)
    report = inspect_bytes(result.data, dst, arena=arena)
    _write_atomic(dst, result.data)
    variant = _variant(name or dst.stem, dst, mf, result, report, method, scope, sparsity, command)
    return _with_accuracy(variant, dataset)


def prune_family(
    src: str | Path,
    out_dir: str | Path,
    methods: Sequence[str],
    sparsities: Sequence[float],
    scope: str = "layer",
    *,
    command: str | None = None,
    dataset: str | Path | None = None,
    arena: bool = True,
    structural: str = "removed",
) -> list[ModelVariant]:
    """Write the original plus one variant per (method, sparsity) into `out_dir`, with a manifest.

    Everything is pruned in memory first, so a bad option or model leaves `out_dir` untouched.
    """
    src, out_dir = Path(src), Path(out_dir)
    if not methods or not sparsities:
        raise ConfigError("give at least one --method and one --sparsity.")
    for method in methods:
        for s in sparsities:
            check_options(method, s, scope, structural)
    mf = read_model(src)
    _check_dataset(mf, dataset)
    base_dst = out_dir / src.name
    plans = []
    for method in methods:
        for s in sparsities:
            name = f"{src.stem}-{method}-{scope}-{round(s * 100):02d}"
            if method == "channel" and structural != "removed":
                name += f"-{structural}"
            dst = out_dir / f"{name}.tflite"
            _check_not_input(src, dst)
            result = prune_bytes(mf, method=method, sparsity=s, scope=scope, structural=structural)
            # Inspecting (and the arena search, which runs the model in TFLM) before writing means a
            # model TFLM cannot run fails here, with nothing on disk.
            plans.append((name, dst, method, s, result, inspect_bytes(result.data, dst, arena=arena)))
    original = _original(mf, base_dst, command, arena)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not (base_dst.exists() and os.path.samefile(mf.path, base_dst)):
        _write_atomic(base_dst, mf.data)
    variants = [_with_accuracy(original, dataset)]
    for name, dst, method, s, result, report in plans:
        _write_atomic(dst, result.data)
        variant = _variant(name, dst, mf, result, report, method, scope, s, command)
        variants.append(_with_accuracy(variant, dataset))
        log.info("wrote %s (measured sparsity %.3f)", dst, result.measured_sparsity)
    rel = os.path.relpath(Path(dataset).resolve(), out_dir.resolve()) if dataset else None
    write_manifest(out_dir / "manifest.json", variants, dataset=rel)
    return variants


def find_targets(
    model: tflite.Model, data: bytearray, path: Path, method: str, only: Sequence[str] | None = None
) -> tuple[list[Target], list[str]]:
    """The weight buffers `method` will prune, and why the other weight-bearing layers are not."""
    graph = model.Subgraphs(0)
    outputs = _output_layers(model, graph)
    by_buffer: dict[int, Target] = {}
    not_pruned: list[str] = []
    seen: list[str] = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        opname = operator_name(model, op)
        if op.InputsLength() < 2:
            continue
        weight = op.Inputs(1)
        if opname not in PRUNABLE_AXES:
            if opname in _WEIGHTED_OPS and weight >= 0:
                layer = layer_name(graph, 0, i, opname, weight)
                not_pruned.append(f"{layer} ({opname}): post-training pruning covers {_COVERED} only")
            continue
        name = layer_name(graph, 0, i, opname, weight)
        seen.append(name)
        if only is not None and name not in only:
            continue
        reason = _reject(model, data, path, graph, op, opname, name, method, i in outputs, only is not None)
        if reason:
            not_pruned.append(f"{name} ({opname}): {reason}")
            continue
        tensor = graph.Tensors(weight)
        if tensor.Buffer() in by_buffer:
            by_buffer[tensor.Buffer()].layers.append(name)  # shared buffer: prune once
            by_buffer[tensor.Buffer()].ops.append(i)
            continue
        by_buffer[tensor.Buffer()] = Target(
            layers=[name],
            op=opname,
            buffer=tensor.Buffer(),
            values=constant_array(model, data, tensor),
            quant=quantization(tensor),
            axis=PRUNABLE_AXES[opname],
            ops=[i],
        )
    _check_selection(path, only, seen)
    if not by_buffer:
        raise ModelError(
            f"{str(path)!r} has no weights that {method} pruning can prune"
            + (f": {'; '.join(not_pruned)}." if not_pruned else " (no CONV_2D, DEPTHWISE_CONV_2D or FULLY_CONNECTED)."),
            hint="Choose a model with int8 CONV_2D/FULLY_CONNECTED layers"
            + (", or --method magnitude." if method == "channel" else "."),
        )
    return list(by_buffer.values()), not_pruned


_COVERED = "CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED"
_WEIGHTED_OPS = {"TRANSPOSE_CONV", "SVDF", "UNIDIRECTIONAL_SEQUENCE_LSTM", "LSTM", "BATCH_MATMUL"}


def _reject(
    model: tflite.Model,
    data: bytearray,
    path: Path,
    graph: tflite.SubGraph,
    op: tflite.Operator,
    opname: str,
    name: str,
    method: str,
    is_output: bool,
    explicit: bool,
) -> str | None:
    """Why this layer is skipped (None if it is pruned); raises where skipping would mislead."""
    tensor = graph.Tensors(op.Inputs(1))
    activation = graph.Tensors(op.Inputs(0))
    q = quantization(tensor)
    if type_name(tensor) != "INT8" or q is None:
        raise ModelError(
            f"{str(path)!r}: layer {name!r} ({opname}) has {type_name(tensor)} weights; post-training "
            "pruning needs a fully int8-quantized model (it ranks and zeroes quantized weights).",
            hint="Convert with full-integer quantization (representative dataset, int8 inputs/outputs), "
            "or prune before conversion with --engine keras.",
        )
    if type_name(activation) not in ("INT8", "INT16"):
        raise ModelError(
            f"{str(path)!r}: layer {name!r} ({opname}) has int8 weights but {type_name(activation)} "
            "activations: a hybrid (dynamic-range) model, which TFLM does not run.",
            hint="Convert with full-integer quantization (a representative dataset), then prune.",
        )
    if constant_array(model, data, tensor) is None:
        return "weights are computed at run time (no constant buffer)"
    axis = PRUNABLE_AXES[opname]
    if q.axis is not None and q.axis != axis:
        raise ModelError(
            f"{str(path)!r}: layer {name!r} ({opname}) is quantized per channel along axis {q.axis}, "
            f"but {opname} weights keep channels on axis {axis}; bench cannot tell which scale is whose.",
            hint="Re-convert the model with a current converter, or exclude the layer with --layer.",
        )
    if method != "channel":
        return None
    if opname not in CHANNEL_OPS:
        if explicit:
            raise ModelError(
                f"{str(path)!r}: channel pruning cannot prune layer {name!r} ({opname}): zeroing a "
                "depthwise channel cuts the channel for every layer after it, which is not a per-layer choice.",
                hint="Prune the pointwise CONV_2D that feeds it instead, or use --method magnitude.",
            )
        return "a depthwise layer loses channels only with a pruned CONV_2D/FULLY_CONNECTED feeding it"
    if is_output:
        if explicit:
            raise ModelError(
                f"{str(path)!r}: channel pruning cannot prune layer {name!r} ({opname}): its output "
                "channels are the model's outputs (classes), so zeroing them removes classes.",
                hint="Leave the classifier out of --layer, or use --method magnitude for it.",
            )
        return "its output channels are the model's outputs"
    return None


def _check_selection(path: Path, only: Sequence[str] | None, seen: list[str]) -> None:
    unknown = sorted(set(only or ()) - set(seen))
    if unknown:
        raise ConfigError(
            f"{str(path)!r} has no prunable layer named {', '.join(map(repr, unknown))}.",
            hint=f"Layers: {', '.join(seen) or 'none'} (see `bench models inspect`).",
        )


def _output_layers(model: tflite.Model, graph: tflite.SubGraph) -> set[int]:
    """Operators whose output reaches a graph output through pass-through operators only."""
    producer = {}
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        for k in range(op.OutputsLength()):
            producer[op.Outputs(k)] = i
    found: set[int] = set()
    frontier = [graph.Outputs(k) for k in range(graph.OutputsLength())]
    while frontier:
        i = producer.get(frontier.pop())
        if i is None or i in found:
            continue
        found.add(i)
        op = graph.Operators(i)
        if operator_name(model, op) in _PASS_THROUGH and op.InputsLength():
            frontier.append(op.Inputs(0))
    return found


def _prune_smallest(targets: list[Target], sparsity: float) -> None:
    """Zero the round(sparsity × n) weights of smallest dequantized magnitude across `targets`.

    A stable sort makes ties (many equal int8 values) resolve the same way on every run, and
    pruning exactly k weights keeps the measured sparsity on target even when values repeat.
    """
    scores = np.concatenate([t.magnitude().ravel() for t in targets])
    k = round(sparsity * scores.size)
    if k == 0:
        return
    mask = np.zeros(scores.size, dtype=bool)
    mask[np.argsort(scores, kind="stable")[:k]] = True
    start = 0
    for t in targets:
        t.set_zero(mask[start : start + t.values.size].reshape(t.values.shape))
        start += t.values.size


def _channels_to_keep(t: Target, sparsity: float) -> np.ndarray:
    """True for the output channels to keep: all but the round(sparsity × n) of smallest L1 norm."""
    channels = t.values.shape[t.axis]
    # Keep at least one channel: an all-zero layer turns the rest of the network into constants.
    k = min(round(sparsity * channels), channels - 1)
    keep = np.ones(channels, dtype=bool)
    if k > 0:
        l1 = np.moveaxis(t.magnitude(), t.axis, 0).reshape(channels, -1).sum(axis=1)
        keep[np.argsort(l1, kind="stable")[:k]] = False
    return keep


def _channel_surgery(
    mf: ModelFile, targets: list[Target], not_pruned: list[str], sparsity: float, structural: str
) -> PruneResult:
    """Plan every layer's removal on the unedited model, then apply the plans and re-serialise.

    Planning first means every layer ranks its channels on its original weights, whatever the
    order, and the removed and zeroed variants pick the same channels.
    """
    graph = channel_surgery.Graph(tflite_writer.unpack(mf.data))
    plans, wanted, refused = [], 0, []
    for t in targets:
        keep = _channels_to_keep(t, sparsity)
        if keep.all():
            continue
        wanted += 1
        if len(t.ops) > 1:
            refused.append(f"{t.layers[0]} ({t.op}): its weights are shared with {', '.join(t.layers[1:])}")
            continue
        try:
            plans.append(channel_surgery.plan_removal(graph, t.ops[0], keep))
        except channel_surgery.CannotRemove as exc:
            refused.append(f"{t.layers[0]} ({t.op}): {exc}")
    not_pruned = not_pruned + refused
    if wanted and not plans:
        raise ModelError(
            f"{str(mf.path)!r}: channel pruning cannot shrink any layer: {'; '.join(refused)}.",
            hint="Use --method magnitude, or a model whose hidden CONV_2D/FULLY_CONNECTED layers feed "
            "convolutions, pooling or activations (no residual joins).",
        )
    for plan in plans:
        channel_surgery.apply(graph, plan, remove=structural == "removed")
    out = tflite_writer.pack(graph.model)
    # Zeroing edits the producers and their depthwise followers; removal also cuts consumers' inputs.
    touched = sorted({op for plan in plans for op in plan.touched_layers if structural == "removed"
                      or op == plan.producer or op in {f for f, _ in plan.slice_out}})
    report = inspect_bytes(out, mf.path, arena=False)
    # A depthwise layer that lost its channels with the layer feeding it was pruned after all.
    followers = {report.ops[op].layer for plan in plans for op, _ in plan.slice_out}
    not_pruned = [n for n in not_pruned if n.split(" (")[0] not in followers]
    per_layer: dict[str, float] = {}
    zeros = total = 0
    for op in touched:
        info = report.ops[op]
        zeros, total = zeros + info.zero_weights, total + info.weight_elements
        per_layer[info.layer] = round(info.zero_fraction or 0.0, 4)
    measured = round(zeros / total, 4) if total else 0.0
    return PruneResult(out, measured, per_layer, not_pruned, structural=structural)


def _check_not_input(src: Path, dst: Path) -> None:
    if dst.resolve() == src.resolve() or (dst.exists() and src.exists() and os.path.samefile(src, dst)):
        raise ConfigError(
            f"output {str(dst)!r} would overwrite the input model {str(src)!r}.",
            hint="Write pruned variants to another file or directory (--out).",
        )


def _write_atomic(dst: Path, data: bytes) -> None:
    # A crash mid-write must not leave a truncated model that a later sweep would load.
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", dir=dst.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _variant(
    name: str,
    dst: Path,
    mf: ModelFile,
    result: PruneResult,
    report: ModelReport,
    method: str,
    scope: str,
    sparsity: float,
    command: str | None,
) -> ModelVariant:
    return ModelVariant(
        name=name,
        path=dst,
        sha256=report.sha256,
        method=method,
        engine="tflite",
        scope=scope,
        base_sha256=mf.sha256,
        target_sparsity=float(sparsity),
        measured_sparsity=result.measured_sparsity,
        layer_sparsity=result.layer_sparsity,
        params=report.params,
        macs=report.macs,
        size_bytes=report.size_bytes,
        gzip_bytes=report.gzip_bytes,
        arena_bytes=report.arena.minimum_bytes if report.arena else None,
        not_pruned=result.not_pruned,
        structural=result.structural,
        runtimes=report.runtimes,
        command=command,
    )


def _original(mf: ModelFile, dst: Path, command: str | None, arena: bool) -> ModelVariant:
    """The unpruned model as the family's baseline, described as it will sit beside its variants."""
    report = inspect_bytes(mf.data, dst, arena=arena)
    return ModelVariant(
        name=mf.path.stem,
        path=dst,
        sha256=mf.sha256,
        method="original",
        engine="tflite",
        target_sparsity=0.0,
        measured_sparsity=round(report.zero_fraction, 4),
        layer_sparsity={k: round(v, 4) for k, v in report.layer_zero_fraction().items()},
        params=report.params,
        macs=report.macs,
        size_bytes=report.size_bytes,
        gzip_bytes=report.gzip_bytes,
        arena_bytes=report.arena.minimum_bytes if report.arena else None,
        runtimes=report.runtimes,
        command=command,
    )


def _check_dataset(mf: ModelFile, dataset: str | Path | None) -> None:
    """Fail on a bad dataset before any file is written, not after the variants are."""
    if dataset is not None:
        from harness.models.dataset import input_spec, load_dataset

        load_dataset(dataset, input_spec(mf), samples=1)


def _with_accuracy(variant: ModelVariant, dataset: str | Path | None) -> ModelVariant:
    if dataset is None:
        return variant
    from dataclasses import replace

    from harness.models.evaluate import evaluate

    ev = evaluate(variant.path, dataset)
    return replace(
        variant,
        accuracy=None if ev.accuracy is None else round(ev.accuracy, 4),
        accuracy_method=f"top-1 on x_test/y_test ({ev.samples} samples), {ev.accuracy_runtime}",
        dataset=Path(dataset),
    )

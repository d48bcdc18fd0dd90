"""What a .tflite model is made of: operators, tensors, parameters, MACs, sparsity, sizes, arena.

The figures are the ones a pruning study needs to explain its measurements: MACs and parameters say
what work and flash pruning could save, the zero-weight fraction says what the pruner actually did
(a weight is "zero" when it equals its quantization zero point, per channel where the model is
quantized per channel), gzip size is how unstructured sparsity shows up in a compressed image, and
the arena is the RAM TFLM needs. `runtimes` says which runtimes load and run the file (LiteRT for
`local`/`ssh`, TFLite Micro for the MCU-side devices), so a model one of them rejects is found here
rather than in every cell of a sweep.

MACs are counted for CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, TRANSPOSE_CONV, SVDF and the LSTM
operators (one multiply-accumulate per weight use; LSTM and SVDF per time step and batch row).
Every other operator counts 0 — pooling, element-wise arithmetic, activations, reshapes — and is
listed in `ModelReport.ops_without_macs`, so a total is never silently padded with guesses.
"""

from __future__ import annotations

import gzip
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tflite

from benchcore.tflite_model import MAC_RULES, prod
from benchcore.tflite_model import macs as count_macs
from harness.models.arena import ArenaReport, probe_arena
from harness.models.runtimes import probe_runtimes
from harness.models.tflite_file import (
    ModelFile,
    Quantization,
    buffer_array,
    constant_array,
    operator_name,
    parse_model,
    quantization,
    read_model,
    tensor_name,
    tensor_shape,
    type_name,
)

# Inputs that hold learned weights (not biases), by operator. Biases are excluded on purpose: they are
# never pruned and their zeros say nothing about sparsity.
WEIGHT_INPUTS: dict[str, tuple[int, ...]] = {
    "CONV_2D": (1,),
    "DEPTHWISE_CONV_2D": (1,),
    "FULLY_CONNECTED": (1,),
    "TRANSPOSE_CONV": (1,),
    "SVDF": (1, 2),
    "UNIDIRECTIONAL_SEQUENCE_LSTM": (1, 2, 3, 4, 5, 6, 7, 8),
    "LSTM": (1, 2, 3, 4, 5, 6, 7, 8),
}


@dataclass(frozen=True)
class TensorInfo:
    index: int
    name: str
    shape: list[int]
    dtype: str
    scale: list[float]
    zero_point: list[int]
    quantized_dimension: int | None  # per-channel axis, None when per-tensor or unquantized
    constant: bool
    buffer: int


@dataclass(frozen=True)
class OpInfo:
    subgraph: int
    index: int
    op: str
    layer: str  # the weight tensor's name, or "<op>_<index>" when it has none
    output_shape: list[int]
    weight_tensor: int | None
    weight_elements: int
    zero_weights: int
    macs: int

    @property
    def zero_fraction(self) -> float | None:
        return self.zero_weights / self.weight_elements if self.weight_elements else None


@dataclass
class ModelReport:
    path: str
    sha256: str
    size_bytes: int
    gzip_bytes: int  # gzip -9, the compressed image size that unstructured sparsity shrinks
    operators: dict[str, int]
    ops: list[OpInfo]
    tensors: list[TensorInfo]
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    params: int  # elements of constant weight and bias tensors (shared buffers counted once)
    macs: int
    ops_without_macs: list[str]
    weight_elements: int
    zero_weights: int
    arena: ArenaReport | None = None
    runtimes: dict[str, str] = field(default_factory=dict)  # runtime -> "ok" | "rejected: ..."
    notes: list[str] = field(default_factory=list)

    @property
    def zero_fraction(self) -> float:
        return self.zero_weights / self.weight_elements if self.weight_elements else 0.0

    def layer_zero_fraction(self) -> dict[str, float]:
        return {op.layer: op.zero_fraction for op in self.ops if op.zero_fraction is not None}

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["zero_fraction"] = self.zero_fraction
        for op, row in zip(self.ops, d["ops"], strict=True):
            row["zero_fraction"] = op.zero_fraction
        return d


def inspect_model(path: str | Path, *, arena: bool = True, runtimes: bool | None = None) -> ModelReport:
    """Inspect a .tflite file; `arena=False` skips the TFLM arena search (the slow part) and, unless
    `runtimes=True`, the check of which runtimes accept the model (a second or so)."""
    return inspect_file(read_model(path), arena=arena, runtimes=runtimes)


def inspect_bytes(data: bytes, path: str | Path, *, arena: bool = True, runtimes: bool | None = None) -> ModelReport:
    """Inspect model bytes not (yet) on disk, such as a pruned variant before it is written."""
    return inspect_file(parse_model(data, Path(path)), arena=arena, runtimes=runtimes)


def inspect_file(mf: ModelFile, *, arena: bool = True, runtimes: bool | None = None) -> ModelReport:
    model, data = mf.model, mf.data
    graph0 = model.Subgraphs(0)
    ops = [
        _op_info(model, data, s, o)
        for s in range(model.SubgraphsLength())
        for o in range(model.Subgraphs(s).OperatorsLength())
    ]
    counted_buffers: set[int] = set()
    weight_elements = zero_weights = 0
    for op in ops:
        if op.weight_tensor is None:
            continue
        buffer = model.Subgraphs(op.subgraph).Tensors(op.weight_tensor).Buffer()
        if buffer not in counted_buffers:
            counted_buffers.add(buffer)
            weight_elements += op.weight_elements
            zero_weights += op.zero_weights
    report = ModelReport(
        path=str(mf.path),
        sha256=mf.sha256,
        size_bytes=len(data),
        gzip_bytes=len(gzip.compress(data, compresslevel=9, mtime=0)),
        operators=dict(Counter(op.op for op in ops)),
        ops=ops,
        tensors=[_tensor_info(model, data, graph0, t) for t in range(graph0.TensorsLength())],
        inputs=[_tensor_info(model, data, graph0, graph0.Inputs(i)) for i in range(graph0.InputsLength())],
        outputs=[_tensor_info(model, data, graph0, graph0.Outputs(i)) for i in range(graph0.OutputsLength())],
        params=_count_params(model, data),
        macs=sum(op.macs for op in ops),
        ops_without_macs=sorted({op.op for op in ops if op.op not in MAC_RULES}),
        weight_elements=weight_elements,
        zero_weights=zero_weights,
    )
    if model.SubgraphsLength() > 1:
        report.notes.append(f"{model.SubgraphsLength()} subgraphs; tensors, inputs and outputs are subgraph 0's")
    if arena if runtimes is None else runtimes:
        report.runtimes = probe_runtimes(data, n_inputs=graph0.InputsLength())
    if arena:
        report.arena = probe_arena(data, name=str(mf.path), n_inputs=graph0.InputsLength())
    return report


def layer_name(graph: tflite.SubGraph, subgraph: int, index: int, op: str, weight: int | None) -> str:
    """A stable, readable key for a layer: its weight tensor's name when the converter kept one."""
    name = tensor_name(graph.Tensors(weight)) if weight is not None else ""
    if not name:
        name = f"{op.lower()}_{index}"
    return name if subgraph == 0 else f"subgraph{subgraph}/{name}"


def zero_mask(values: np.ndarray, q: Quantization | None) -> np.ndarray:
    """True where a stored weight represents 0.0: its zero point (per channel if so quantized)."""
    if q is None:
        return values == 0
    _, zero = q.broadcast(values.shape)
    return values.astype(np.int64) == zero


def _tensor_info(model: tflite.Model, data: bytes, graph: tflite.SubGraph, index: int) -> TensorInfo:
    tensor = graph.Tensors(index)
    q = quantization(tensor)
    return TensorInfo(
        index=index,
        name=tensor_name(tensor),
        shape=list(tensor_shape(tensor)),
        dtype=type_name(tensor),
        scale=[float(s) for s in q.scale] if q else [],
        zero_point=[int(z) for z in q.zero_point] if q else [],
        quantized_dimension=q.axis if q else None,
        constant=buffer_array(model, data, tensor.Buffer()) is not None,
        buffer=tensor.Buffer(),
    )


def _op_info(model: tflite.Model, data: bytes, subgraph: int, index: int) -> OpInfo:
    graph = model.Subgraphs(subgraph)
    op = graph.Operators(index)
    name = operator_name(model, op)
    inputs = [op.Inputs(k) for k in range(op.InputsLength())]
    weights = [inputs[k] for k in WEIGHT_INPUTS.get(name, ()) if k < len(inputs) and inputs[k] >= 0]
    elements = zeros = 0
    for t in weights:
        values = constant_array(model, data, graph.Tensors(t))
        if values is not None:
            elements += values.size
            zeros += int(zero_mask(values, quantization(graph.Tensors(t))).sum())
    out = tensor_shape(graph.Tensors(op.Outputs(0))) if op.OutputsLength() and op.Outputs(0) >= 0 else ()
    shapes = [tensor_shape(graph.Tensors(t)) if t >= 0 else () for t in inputs]
    first = weights[0] if weights else None
    return OpInfo(
        subgraph=subgraph,
        index=index,
        op=name,
        layer=layer_name(graph, subgraph, index, name, first),
        output_shape=list(out),
        weight_tensor=first,
        weight_elements=elements,
        zero_weights=zeros,
        macs=count_macs(name, shapes, out),
    )


_prod = prod


def _count_params(model: tflite.Model, data: bytes) -> int:
    """Elements of constant tensors that are learned values: float, or integer with a scale.

    Shape operands (a RESHAPE's int32 target shape) have no scale and are not parameters.
    """
    seen: set[int] = set()
    total = 0
    for s in range(model.SubgraphsLength()):
        graph = model.Subgraphs(s)
        for t in range(graph.TensorsLength()):
            tensor = graph.Tensors(t)
            buffer = tensor.Buffer()
            if buffer in seen or buffer_array(model, data, buffer) is None:
                continue
            if not type_name(tensor).startswith("FLOAT") and quantization(tensor) is None:
                continue
            seen.add(buffer)
            total += _prod(tensor_shape(tensor))
    return total

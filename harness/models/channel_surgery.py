"""Removing output channels from a .tflite graph, and everything downstream that reads them.

Dropping output channel c of a CONV_2D or FULLY_CONNECTED (the *producer*) means cutting, in one
consistent edit: the producer's weights and bias along the output axis and its per-channel scales and
zero points; the output tensor's last dimension; through operators that treat channels independently
(activations, pooling, PAD, MEAN over other axes, RESHAPE that keeps or flattens the channel axis) the
same channel of every tensor; a DEPTHWISE_CONV_2D on the way loses the channel's filters, bias and
quantization parameters too; and every consumer CONV_2D / FULLY_CONNECTED loses the matching *input*
channels of its weights (after a flatten, every position's copy of the channel).

What it computes. A removed channel takes its bias with it. The pruned graph therefore computes
exactly what the original computes with the dropped channels' weights *and biases* set to zero — in
the producer and in every depthwise channel they feed — because then those channels carry the
zero point (real 0.0) and add exactly 0 to every consumer's accumulator; per-tensor activation
quantization is unchanged. `apply(..., remove=False)` writes that reference (same shapes, channels
zeroed), which is what the tests compare against bit for bit. Zeroing the weights alone, as a
compiler-oriented sparsity pattern would, keeps act(bias) flowing downstream as a constant, so it is
a different function; neither variant is fine-tuned.

A producer is left alone, with the reason, when a path from it reaches something this cannot carry
channels through: a graph output, a join of two branches (ADD, MUL, CONCATENATION...), an operator not
listed here, or a grouped convolution. Only subgraph 0 is edited.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.models.tflite_file import NUMPY_DTYPES, OPERATOR_NAMES, TYPE_NAMES

# Operators that act on every channel separately and keep the channel as the last axis of their
# output; each maps 0.0 to 0.0, which is what keeps removal equal to the zeroed reference.
_PER_CHANNEL = {
    "RELU", "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1", "LEAKY_RELU", "HARD_SWISH", "TANH", "QUANTIZE",
    "DEQUANTIZE", "MAX_POOL_2D", "AVERAGE_POOL_2D", "PAD", "MEAN",
}


# Operators that combine tensors element by element or stack them: a residual join or a concat.
_JOINS = {"ADD", "SUB", "MUL", "DIV", "MAXIMUM", "MINIMUM", "SQUARED_DIFFERENCE", "CONCATENATION", "PACK",
          "ADD_N", "SELECT", "SELECT_V2"}


class CannotRemove(Exception):
    """Why a producer's channels cannot be removed (the message goes into `not_pruned`)."""


@dataclass
class Plan:
    """The edits that remove one producer's channels; built from the unedited model."""

    producer: int
    keep: np.ndarray  # bool over the producer's output channels
    slice_out: list[tuple[int, np.ndarray]] = field(default_factory=list)  # (op, keep) depthwise followers
    slice_in: list[tuple[int, np.ndarray]] = field(default_factory=list)  # (op, keep over input features)
    shapes: list[tuple[int, np.ndarray]] = field(default_factory=list)  # (tensor, keep over its last axis)
    reshapes: list[int] = field(default_factory=list)  # RESHAPE ops whose target shape follows
    touched_layers: list[int] = field(default_factory=list)  # ops whose weights change


class Graph:
    """Subgraph 0 of a `ModelT` with the lookups the surgery needs."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.g = model.subgraphs[0]
        self.consumers: dict[int, list[tuple[int, int]]] = {}
        for i, op in enumerate(self.g.operators or []):
            for pos, t in enumerate(_ints(op.inputs)):
                if t >= 0:
                    self.consumers.setdefault(t, []).append((i, pos))
        self.outputs = set(_ints(self.g.outputs))
        # Buffers referenced by more than one tensor anywhere: editing one must not edit the others.
        counts: dict[int, int] = {}
        for sg in model.subgraphs:
            for t in sg.tensors or []:
                counts[t.buffer] = counts.get(t.buffer, 0) + 1
        self.buffer_users = counts

    def op_name(self, i: int) -> str:
        code = self.model.operatorCodes[self.g.operators[i].opcodeIndex]
        return OPERATOR_NAMES.get(max(code.builtinCode, code.deprecatedBuiltinCode), "?")

    def inputs(self, i: int) -> list[int]:
        return _ints(self.g.operators[i].inputs)

    def output(self, i: int) -> int:
        return _ints(self.g.operators[i].outputs)[0]

    def shape(self, t: int) -> tuple[int, ...]:
        return tuple(int(d) for d in _ints(self.g.tensors[t].shape))

    def const(self, t: int) -> np.ndarray | None:
        tensor = self.g.tensors[t]
        buf = self.model.buffers[tensor.buffer]
        dtype = NUMPY_DTYPES.get(TYPE_NAMES.get(tensor.type, ""))
        if buf.data is None or len(buf.data) == 0 or dtype is None:
            return None
        raw = np.asarray(buf.data, dtype=np.uint8)
        shape = self.shape(t)
        if raw.size != int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize:
            return None
        return raw.view(dtype).reshape(shape).copy()

    def set_const(self, t: int, values: np.ndarray) -> None:
        """Store new contents for tensor `t`; a buffer shared with another tensor is copied first."""
        tensor = self.g.tensors[t]
        if self.buffer_users.get(tensor.buffer, 0) > 1:
            self.buffer_users[tensor.buffer] -= 1
            fresh = type(self.model.buffers[tensor.buffer])()
            self.model.buffers.append(fresh)
            tensor.buffer = len(self.model.buffers) - 1
            self.buffer_users[tensor.buffer] = 1
        self.model.buffers[tensor.buffer].data = np.frombuffer(
            np.ascontiguousarray(values).tobytes(), dtype=np.uint8).copy()
        tensor.shape = np.array(values.shape, dtype=np.int32)
        if tensor.shapeSignature is not None and len(tensor.shapeSignature) == values.ndim:
            sig = np.array(tensor.shapeSignature, dtype=np.int32)
            sig[sig >= 0] = np.array(values.shape, dtype=np.int32)[sig >= 0]
            tensor.shapeSignature = sig


def plan_removal(graph: Graph, producer: int, keep: np.ndarray) -> Plan:
    """Trace where the producer's channels go; raises `CannotRemove` with the reason."""
    plan = Plan(producer=producer, keep=keep, touched_layers=[producer])
    _follow(graph, graph.output(producer), keep, plan)
    return plan


def _follow(graph: Graph, tensor: int, keep: np.ndarray, plan: Plan) -> None:
    if tensor in graph.outputs:
        raise CannotRemove("its channels reach a model output")
    for op, pos in graph.consumers.get(tensor, []):
        name = graph.op_name(op)
        ins = graph.inputs(op)
        joined = [t for t in ins if t >= 0 and t != tensor and graph.const(t) is None]
        if name in _JOINS and joined:
            raise CannotRemove(f"its channels meet another branch in {name} (operator {op}); both branches "
                               "would have to lose the same channels")
        if pos != 0:
            raise CannotRemove(f"its output is operand {pos} of {name} (operator {op})")
        if name in ("CONV_2D", "FULLY_CONNECTED", "DEPTHWISE_CONV_2D") and graph.const(ins[1]) is None:
            raise CannotRemove(f"{name} (operator {op}) computes its weights at run time")
        if name == "CONV_2D":
            filt = graph.shape(ins[1])
            if filt[3] != keep.size:
                raise CannotRemove(f"CONV_2D (operator {op}) is a grouped convolution")
            plan.slice_in.append((op, keep))
            plan.touched_layers.append(op)
        elif name == "FULLY_CONNECTED":
            features = graph.shape(ins[1])[-1]
            shape = graph.shape(tensor)
            if features == keep.size:
                plan.slice_in.append((op, keep))
            elif int(np.prod(shape[1:])) == features:
                plan.slice_in.append((op, np.tile(keep, features // keep.size)))
            else:
                raise CannotRemove(f"FULLY_CONNECTED (operator {op}) reads its input in a layout bench cannot map")
            plan.touched_layers.append(op)
        elif name == "DEPTHWISE_CONV_2D":
            channels = graph.shape(ins[1])[3]
            if channels % keep.size:
                raise CannotRemove(f"DEPTHWISE_CONV_2D (operator {op}) has {channels} channels for {keep.size} inputs")
            out_keep = np.repeat(keep, channels // keep.size)  # output c*m+k comes from input c
            plan.slice_out.append((op, out_keep))
            plan.touched_layers.append(op)
            _carry(graph, op, out_keep, plan)
        elif name == "RESHAPE":
            src, dst = graph.shape(tensor), graph.shape(graph.output(op))
            if dst and dst[-1] == keep.size and np.prod(dst[:-1]) == np.prod(src[:-1]):
                out_keep = keep
            elif len(dst) == 2 and dst[0] == src[0] and dst[1] == np.prod(src[1:]):
                out_keep = np.tile(keep, dst[1] // keep.size)  # a flatten: channels vary fastest
            else:
                raise CannotRemove(f"RESHAPE (operator {op}) to {list(dst)} moves the channel axis")
            plan.reshapes.append(op)
            _carry(graph, op, out_keep, plan)
        elif name in _PER_CHANNEL:
            _check_per_channel(graph, op, name, len(graph.shape(tensor)))
            _carry(graph, op, keep, plan)
        else:
            raise CannotRemove(f"its channels flow into {name} (operator {op}), which channel removal does not handle")


def _carry(graph: Graph, op: int, keep: np.ndarray, plan: Plan) -> None:
    out = graph.output(op)
    if not graph.shape(out) or graph.shape(out)[-1] != keep.size:
        raise CannotRemove(f"{graph.op_name(op)} (operator {op}) changes the channel axis")
    plan.shapes.append((out, keep))
    _follow(graph, out, keep, plan)


def _check_per_channel(graph: Graph, op: int, name: str, rank: int) -> None:
    ins = graph.inputs(op)
    if name in ("PAD", "MEAN"):
        arg = graph.const(ins[1]) if len(ins) > 1 else None
        if arg is None:
            raise CannotRemove(f"{name} (operator {op}) has a computed second operand")
        if name == "PAD" and np.any(arg.reshape(-1, 2)[-1] != 0):
            raise CannotRemove(f"PAD (operator {op}) pads the channel axis")
        if name == "MEAN" and rank - 1 in {int(a) % rank for a in arg.ravel()}:
            raise CannotRemove(f"MEAN (operator {op}) averages over the channel axis")
    elif len([t for t in ins if t >= 0]) > 1:
        raise CannotRemove(f"{name} (operator {op}) has more than one input")


def apply(graph: Graph, plan: Plan, *, remove: bool = True) -> None:
    """Edit the model: remove the channels, or (`remove=False`) zero them as the reference."""
    _edit_layer(graph, plan.producer, weight_axis=0, keep=plan.keep, remove=remove)
    for op, keep in plan.slice_out:
        _edit_layer(graph, op, weight_axis=3, keep=keep, remove=remove)
    if not remove:
        return
    for op, keep in plan.slice_in:
        t = graph.inputs(op)[1]
        w = graph.const(t)
        axis = w.ndim - 1  # CONV_2D OHWI: I is last; FULLY_CONNECTED [units, in]: in is last
        graph.set_const(t, np.compress(keep, w, axis=axis))
    for t, keep in plan.shapes:
        _set_last_dim(graph, t, int(keep.sum()))
        _slice_quant(graph.g.tensors[t], keep)  # per-channel activation parameters, if any
    for op in plan.reshapes:
        _retarget_reshape(graph, op)


def _edit_layer(graph: Graph, op: int, *, weight_axis: int, keep: np.ndarray, remove: bool) -> None:
    ins = graph.inputs(op)
    w_t, b_t = ins[1], ins[2] if len(ins) > 2 and ins[2] >= 0 else None
    w = graph.const(w_t)
    b = graph.const(b_t) if b_t is not None else None
    if remove:
        graph.set_const(w_t, np.compress(keep, w, axis=weight_axis))
        _slice_quant(graph.g.tensors[w_t], keep)
        if b is not None:
            graph.set_const(b_t, b[keep])
            _slice_quant(graph.g.tensors[b_t], keep)
        _set_last_dim(graph, graph.output(op), int(keep.sum()))
        _slice_quant(graph.g.tensors[graph.output(op)], keep)
        return
    zero = _zero_points(graph.g.tensors[w_t], keep.size)
    drop = ~keep
    index = [slice(None)] * w.ndim
    index[weight_axis] = drop
    view = [1] * w.ndim
    view[weight_axis] = -1
    w[tuple(index)] = np.broadcast_to(zero.reshape(view), w.shape)[tuple(index)].astype(w.dtype)
    graph.set_const(w_t, w)
    if b is not None:
        b[drop] = 0
        graph.set_const(b_t, b)


def _zero_points(tensor: Any, channels: int) -> np.ndarray:
    q = tensor.quantization
    zp = np.asarray(q.zeroPoint if q is not None and q.zeroPoint is not None else [0], dtype=np.int64)
    return zp if zp.size == channels else np.full(channels, int(zp[0]) if zp.size else 0)


def _slice_quant(tensor: Any, keep: np.ndarray) -> None:
    q = tensor.quantization
    if q is None:
        return
    for attr in ("scale", "zeroPoint", "min", "max"):
        values = getattr(q, attr)
        if values is not None and len(values) == keep.size and keep.size > 1:
            setattr(q, attr, np.asarray(values)[keep])


def _set_last_dim(graph: Graph, t: int, n: int) -> None:
    tensor = graph.g.tensors[t]
    shape = np.array(_ints(tensor.shape), dtype=np.int32)
    shape[-1] = n
    tensor.shape = shape
    if tensor.shapeSignature is not None and len(tensor.shapeSignature):
        sig = np.array(_ints(tensor.shapeSignature), dtype=np.int32)
        if sig[-1] >= 0:
            sig[-1] = n
        tensor.shapeSignature = sig


def _retarget_reshape(graph: Graph, op: int) -> None:
    """A RESHAPE's target shape (operand 1 and/or its options) follows its edited output tensor."""
    out = np.array(graph.shape(graph.output(op)), dtype=np.int32)
    ins = graph.inputs(op)
    if len(ins) > 1 and ins[1] >= 0:
        target = graph.const(ins[1])
        if target is not None:
            graph.set_const(ins[1], np.where(target < 0, target, out).astype(target.dtype))
    options = graph.g.operators[op].builtinOptions
    if options is not None and getattr(options, "newShape", None) is not None and len(options.newShape):
        old = np.asarray(options.newShape, dtype=np.int32)
        options.newShape = np.where(old < 0, old, out).astype(np.int32)


def _ints(values: Any) -> list[int]:
    return [] if values is None else [int(v) for v in values]

"""What a .tflite operator is and how much arithmetic it does: one analysis for every side.

`bench models inspect` (the harness) and the simulated MCU's cost model (a device) both count MACs;
they used to count them apart and disagreed (TRANSPOSE_CONV). Here are the operator names and the
MAC rules both use. Shapes come in as plain tuples, so the rules need no flatbuffer reader.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tflite

#: Builtin operator code -> name ("CONV_2D").
OPERATOR_NAMES: dict[int, str] = {
    v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_") and isinstance(v, int)
}

Shape = tuple[int, ...]


def operator_name(model: tflite.Model, op: tflite.Operator) -> str:
    """The operator's builtin name, or CUSTOM:<code> for a custom operator."""
    code = model.OperatorCodes(op.OpcodeIndex())
    builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
    if builtin == tflite.BuiltinOperator.CUSTOM:
        return f"CUSTOM:{(code.CustomCode() or b'?').decode(errors='replace')}"
    return OPERATOR_NAMES.get(builtin, f"BUILTIN_{builtin}")


def prod(shape: Shape | list[int]) -> int:
    return int(np.prod(shape, dtype=np.int64)) if len(shape) else 1


def _lstm_macs(inputs: list[Shape], out: Shape) -> int:
    # Each of the eight gate matrices is used once per time step and batch row.
    steps = prod(inputs[0][:-1])
    return steps * sum(prod(inputs[k]) for k in range(1, 9) if inputs[k])


#: name -> MACs from (input shapes, output shape). An operator not listed does no multiply-accumulate
#: we count (reshape, softmax, pooling…); `inspect` lists such ops rather than guess.
MAC_RULES: dict[str, Callable[[list[Shape], Shape], int]] = {
    # filter OHWI: each output element sums KH*KW*I products
    "CONV_2D": lambda i, o: prod(o) * prod(i[1][1:]),
    # filter 1HWC: each output element sums KH*KW products
    "DEPTHWISE_CONV_2D": lambda i, o: prod(o) * i[1][1] * i[1][2],
    # weights [units, in]: each output element sums `in` products
    "FULLY_CONNECTED": lambda i, o: prod(o) * i[1][-1],
    # inputs (output_shape, filter OHWI, input): every input element meets KH*KW*O weights
    "TRANSPOSE_CONV": lambda i, o: prod(i[2]) * prod(i[1][:3]),
    # feature weights [filters, in] and time weights [filters, memory], per batch row
    "SVDF": lambda i, o: i[0][0] * (prod(i[1]) + prod(i[2])),
    "UNIDIRECTIONAL_SEQUENCE_LSTM": _lstm_macs,
    "LSTM": _lstm_macs,
}


def macs(name: str, inputs: list[Shape], out: Shape) -> int:
    """Multiply-accumulates of one operator; 0 for an uncounted operator or a malformed/dynamic shape."""
    rule = MAC_RULES.get(name)
    if rule is None:
        return 0
    try:
        n = int(rule(inputs, out))
    except (IndexError, ValueError):
        return 0
    return max(n, 0)


POOLS = ("AVERAGE_POOL_2D", "MAX_POOL_2D")


def pool_window_ops(op: tflite.Operator, out: Shape) -> int:
    """Element operations of a pooling operator: every output element reads its filter window."""
    table = op.BuiltinOptions()
    if table is None:
        return prod(out)
    opts = tflite.Pool2DOptions()
    opts.Init(table.Bytes, table.Pos)
    return prod(out) * max(1, opts.FilterHeight()) * max(1, opts.FilterWidth())

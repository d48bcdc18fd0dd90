"""The simulated MCU's latency and energy estimates: named target profiles and a per-op cost model.

cycles(op) = overhead + macs × cycles_per_mac[class] + elements × cycles_per_element[class]

MACs come from the .tflite itself (parsed with the `tflite` package). The coefficients are ROUGH:
order-of-magnitude figures derived from a few published kernel benchmarks (cited beside each
profile), not fitted to any board. They make the simulator's figures plausible and let pruning
move them in the right direction; they are labelled "estimated" everywhere and must never be read
as measurements. Real numbers come from a real board (DWT/CCOUNT) through the same protocol.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import tflite

from benchcore.tflite_model import MAC_RULES, OPERATOR_NAMES, POOLS, operator_name, pool_window_ops
from benchcore.tflite_model import macs as count_macs

#: builtin operator code -> name, from the schema the `tflite` package ships.
OP_NAMES = OPERATOR_NAMES  # kept for callers of the old name

CONV = "conv"
DEPTHWISE = "depthwise"
DENSE = "dense"
POOL = "pool"
ELEMENTWISE = "elementwise"
SOFTMAX = "softmax"
RECURRENT = "recurrent"
MOVE = "move"

_CLASS_OF = {
    "CONV_2D": CONV,
    "TRANSPOSE_CONV": CONV,
    "DEPTHWISE_CONV_2D": DEPTHWISE,
    "FULLY_CONNECTED": DENSE,
    "BATCH_MATMUL": DENSE,
    "AVERAGE_POOL_2D": POOL,
    "MAX_POOL_2D": POOL,
    "SOFTMAX": SOFTMAX,
    "LOG_SOFTMAX": SOFTMAX,
    "SVDF": RECURRENT,
    "UNIDIRECTIONAL_SEQUENCE_LSTM": RECURRENT,
    "RESHAPE": MOVE,
    "SQUEEZE": MOVE,
    "EXPAND_DIMS": MOVE,
}


@dataclass(frozen=True)
class TargetProfile:
    name: str
    board: str
    cpu: str
    clock_hz: int
    arena_capacity: int
    max_model_size: int
    #: Nominal active power in W at this clock (CPU running from SRAM, peripherals idle).
    active_power_w: float
    overhead_cycles: int
    cycles_per_mac: dict[str, float]
    cycles_per_element: dict[str, float]
    marker_pin: int
    max_payload: int = 4096
    rx_window: int = 4
    max_cycle_log: int = 1024
    sources: tuple[str, ...] = field(default=())


# Cortex-M7 @216 MHz (STM32F746-class), TFLM + CMSIS-NN.
# - conv 1.7 cycles/MAC: Lai, Suda, Chandra, "CMSIS-NN: Efficient Neural Network Kernels for Arm
#   Cortex-M CPUs" (arXiv:1801.06601): their CIFAR-10 CNN (~12 M MACs by our count of its layers)
#   ran in 99.1 ms on a Cortex-M7 at 216 MHz, i.e. ~1.7 cycles/MAC end to end.
# - depthwise/dense/elementwise: scaled from conv by the ratios seen on ESP32-S3 below (dense is
#   memory-bound: one weight byte per MAC). A guess in the same spirit.
# - power: STM32F746 datasheet (DS10916) run-mode supply current is of the order of 100 mA at
#   216 MHz and 3.3 V → ~0.33 W. Rough.
CORTEX_M7 = TargetProfile(
    name="cortex-m7@216MHz", board="sim-stm32f746", cpu="cortex-m7", clock_hz=216_000_000,
    arena_capacity=256 * 1024, max_model_size=1024 * 1024, active_power_w=0.33,
    overhead_cycles=900,
    cycles_per_mac={CONV: 1.7, DEPTHWISE: 2.6, DENSE: 1.5, POOL: 1.0, RECURRENT: 2.0},
    cycles_per_element={ELEMENTWISE: 4.0, SOFTMAX: 40.0, MOVE: 0.5, POOL: 1.0, CONV: 0, DEPTHWISE: 0,
                        DENSE: 0, RECURRENT: 8.0},
    marker_pin=0x0105,  # PB5 as port*256+pin, an arbitrary free header pin on a Nucleo
    sources=("arXiv:1801.06601 (CMSIS-NN CIFAR-10 on M7)", "STM32F746 datasheet run current"),
)  # fmt: skip

# Cortex-M4 @80 MHz (STM32L4-class), TFLM + CMSIS-NN.
# - The M4 issues one 16-bit SIMD MAC pair per cycle at best and has no dual issue or cache in the
#   L4; CMSIS-NN kernels on M4 are commonly reported at roughly 1.5-2x the M7's cycles per MAC.
#   We take 1.7 × the M7 figures — consistent in order of magnitude with the MLPerf Tiny reference
#   submissions (TFLM + CMSIS-NN on NUCLEO-L4R5ZI), not fitted to them.
# - power: STM32L476 datasheet (DS10198) quotes ~100 µA/MHz in run mode: ~8 mA at 80 MHz, plus
#   regulator/flash overhead; ~0.03 W at 3.3 V. Rough.
CORTEX_M4 = TargetProfile(
    name="cortex-m4@80MHz", board="sim-stm32l476", cpu="cortex-m4", clock_hz=80_000_000,
    arena_capacity=192 * 1024, max_model_size=768 * 1024, active_power_w=0.03,
    overhead_cycles=1200,
    cycles_per_mac={CONV: 2.9, DEPTHWISE: 4.4, DENSE: 2.5, POOL: 1.7, RECURRENT: 3.4},
    cycles_per_element={ELEMENTWISE: 7.0, SOFTMAX: 70.0, MOVE: 0.8, POOL: 1.7, CONV: 0, DEPTHWISE: 0,
                        DENSE: 0, RECURRENT: 14.0},
    marker_pin=0x0005,  # PA5
    max_payload=2048,
    sources=("scaled from the M7 profile", "MLPerf Tiny reference (order of magnitude)",
             "STM32L476 datasheet run current"),
)  # fmt: skip

# ESP32-S3 @240 MHz, TFLM + ESP-NN.
# - conv 1.2 cycles/MAC: ESP-NN README (v1.0.x, "Kernelwise performance on ESP32-S3", 240 MHz):
#   optimised 1x1 convolution 10x10x64 -> 64 took 461 398 ticks for 409 600 MACs (1.13/MAC);
#   small layers were 2.7/MAC (16 channels) and 5.8/MAC (3 input channels), so 1.2 is optimistic
#   for thin layers. Depthwise was ~6x over ANSI C in the same table; we take 2.0/MAC.
# - elementwise: the same table's elementwise_add took ~44 ticks/element in external PSRAM; we
#   take 20 for internal SRAM (a guess).
# - power: ESP32-S3 datasheet, CPU at 240 MHz with RF off draws of the order of 40-50 mA at 3.3 V
#   → ~0.15 W. Rough.
ESP32_S3 = TargetProfile(
    name="esp32s3@240MHz", board="sim-esp32s3-devkitc", cpu="xtensa-lx7", clock_hz=240_000_000,
    arena_capacity=320 * 1024, max_model_size=2 * 1024 * 1024, active_power_w=0.15,
    overhead_cycles=1500,
    cycles_per_mac={CONV: 1.2, DEPTHWISE: 2.0, DENSE: 1.6, POOL: 1.5, RECURRENT: 2.5},
    cycles_per_element={ELEMENTWISE: 20.0, SOFTMAX: 90.0, MOVE: 1.0, POOL: 1.5, CONV: 0, DEPTHWISE: 0,
                        DENSE: 0, RECURRENT: 20.0},
    marker_pin=4,  # GPIO4
    sources=("ESP-NN README kernel table (ESP32-S3, 240 MHz)", "ESP32-S3 datasheet active current"),
)  # fmt: skip

PROFILES: dict[str, TargetProfile] = {p.name: p for p in (CORTEX_M4, CORTEX_M7, ESP32_S3)}


def profile(name: str) -> TargetProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown sim profile {name!r}; known: {', '.join(PROFILES)}") from None


@dataclass(frozen=True)
class OpInfo:
    index: int
    code: int
    name: str
    macs: int
    elements: int


def _shape(graph: tflite.SubGraph, t: int) -> tuple[int, ...]:
    if t < 0:
        return ()
    tensor = graph.Tensors(t)
    return tuple(int(d) for d in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()


def _size(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape, dtype=np.int64)) if shape else 1


def model_ops(data: bytes) -> list[OpInfo]:
    """Ops of the first subgraph with their MACs (benchcore.tflite_model's rules, the ones `bench models
    inspect` reports) — pooling counts its window reads, and an operator without a rule its constant
    matrices once per step; raises ValueError on a model it cannot read."""
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ValueError("not a TFLite flatbuffer (no TFL3 identifier)")
    model = tflite.Model.GetRootAs(data, 0)
    if model.SubgraphsLength() < 1:
        raise ValueError("model has no subgraph")
    graph = model.Subgraphs(0)
    n_codes = model.OperatorCodesLength()
    n_tensors = graph.TensorsLength()
    ops = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        if op.OpcodeIndex() >= n_codes:
            raise ValueError(f"operator {i} names opcode {op.OpcodeIndex()} of {n_codes}")
        oc = model.OperatorCodes(op.OpcodeIndex())
        code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
        name = operator_name(model, op)
        ins = [op.Inputs(k) for k in range(op.InputsLength())]
        outs = [op.Outputs(k) for k in range(op.OutputsLength())]
        if any(t >= n_tensors for t in ins + outs):
            raise ValueError(f"operator {i} names a tensor beyond {n_tensors}")
        out_shape = _shape(graph, outs[0]) if outs else ()
        ops.append(OpInfo(i, code, name, _work(name, graph, model, ins, out_shape, op), _size(out_shape)))
    return ops


def _work(name: str, graph, model, ins: list[int], out_shape: tuple[int, ...], op) -> int:
    """What the cost model multiplies by cycles per MAC: MACs where a rule counts them."""
    if name in MAC_RULES:
        return count_macs(name, [_shape(graph, t) for t in ins], out_shape)
    if name in POOLS:
        return pool_window_ops(op, out_shape)
    # Anything else: every constant matrix is used once per batch row.
    weights = 0
    for t in ins:
        if t < 0:
            continue
        shape = _shape(graph, t)
        buf = graph.Tensors(t).Buffer()
        if len(shape) >= 2 and buf < model.BuffersLength() and model.Buffers(buf).DataLength() > 0:
            weights += _size(shape)
    return weights


def op_class(name: str) -> str:
    return _CLASS_OF.get(name, ELEMENTWISE)


def op_cycles(ops: list[OpInfo], target: TargetProfile) -> list[int]:
    """Estimated cycles for each op of one inference."""
    cycles = []
    for op in ops:
        cls = op_class(op.name)
        c = target.overhead_cycles
        c += op.macs * target.cycles_per_mac.get(cls, 0.0)
        c += op.elements * target.cycles_per_element.get(cls, target.cycles_per_element[ELEMENTWISE])
        cycles.append(round(c))
    return cycles


def energy_uj(cycles: float, target: TargetProfile) -> float:
    """Estimated energy of `cycles` at the profile's active power (µJ)."""
    return target.active_power_w * cycles / target.clock_hz * 1e6

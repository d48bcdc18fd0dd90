"""Editing a .tflite flatbuffer whose buffers change length, and writing it back.

The `tflite` package only reads; pruning by zeroing edits bytes in place. Removing channels changes
tensor shapes and buffer lengths, which needs a real serialiser. TFLite Micro's wheel ships the
generated schema with flatbuffers' object API (`ModelT`): unpack, edit plain Python objects, pack.
Its own packing writes every constant buffer aligned to 1 byte; TFLite's converter aligns them to 16
(the schema's `force_align: 16`) and kernels may read int32/int64 biases with aligned loads, so the
buffers are packed here with that alignment. TFLM's `compression.model_editor` is not used: its
round-trip writes empty buffers that LiteRT rejects.

A no-op round-trip of every example model gives a file both runtimes accept with identical outputs
(tests/test_prune_tflite.py checks it).
"""

from __future__ import annotations

from typing import Any

import flatbuffers
import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

from harness.models.tflite_file import FILE_IDENTIFIER

BUFFER_ALIGNMENT = 16

ModelT = schema.ModelT


def unpack(data: bytes) -> Any:
    """The whole model as editable objects (`schema.ModelT`)."""
    return schema.ModelT.InitFromPackedBuf(bytearray(data), 0)


class _AlignedBuffer:
    """Stands in for a `BufferT` while packing: same table, data aligned to `BUFFER_ALIGNMENT`."""

    def __init__(self, buffer: Any) -> None:
        self.buffer = buffer

    def Pack(self, builder: flatbuffers.Builder) -> int:  # the object API calls Pack(builder)
        raw = self.buffer.data
        data = None
        if raw is not None:
            payload = np.asarray(raw, dtype=np.uint8).tobytes()
            builder.StartVector(1, len(payload), BUFFER_ALIGNMENT)
            builder.head -= len(payload)
            builder.Bytes[builder.head : builder.head + len(payload)] = payload
            data = builder.EndVector()
        schema.BufferStart(builder)
        if data is not None:
            schema.BufferAddData(builder, data)
        schema.BufferAddOffset(builder, self.buffer.offset)
        schema.BufferAddSize(builder, self.buffer.size)
        return schema.BufferEnd(builder)


def pack(model: Any) -> bytes:
    """Serialise a `ModelT` with the TFL3 identifier and 16-byte aligned buffers."""
    buffers = model.buffers
    model.buffers = [_AlignedBuffer(b) for b in buffers or []]
    try:
        builder = flatbuffers.Builder(1024 + sum(len(b.data) for b in buffers or [] if b.data is not None))
        builder.Finish(model.Pack(builder), file_identifier=FILE_IDENTIFIER)
    finally:
        model.buffers = buffers
    return bytes(builder.Output())


def round_trip(data: bytes) -> bytes:
    return pack(unpack(data))

"""A run bundle: the runs, device snapshots, variants and cells (with every latency sample) that a report or a
comparison needs, read from the store or from a file written by `bench export`.

Both sources give the same frames, so a nightly job can compare tonight's run in the store with last
night's good baseline kept as a CI artifact, and the report code never knows the difference.

Reading from the store is built for size: decoding every JSON column row by row through SQLAlchemy
costs seconds at 100,000 rows; here the latency arrays come back as text and are parsed in one pass
by numpy. `harness.results.load` reads through here too, so there is one reader of cells.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from harness.errors import BenchError
from harness.store import Store, device_snapshots, measurements, op_profiles, variants

log = logging.getLogger(__name__)

EXPORT_FORMAT = "bench-export/1"

#: Columns of `measurements` read into the cell frame (latency_ns and details are handled apart).
_SCALAR_COLUMNS = [c for c in measurements.c if c.name not in ("latency_ns", "details")]
_VARIANT_COLUMNS = ["method", "engine", "scope", "target_sparsity", "measured_sparsity", "params", "macs",
                    "size_bytes", "gzip_bytes", "base_sha256"]
_DEVICE_COLUMNS = {"kind": "device_kind", "runtime": "runtime", "runtime_version": "runtime_version",
                   "cpu": "cpu", "clock_hz": "clock_hz"}


class BundleError(BenchError):
    """An exported run file is missing, empty, unreadable or not a bench export."""


@dataclass
class RunBundle:
    """Runs in the order asked for, and their cells in the order they were committed."""

    runs: list[dict[str, Any]]
    cells: pd.DataFrame
    devices: pd.DataFrame
    variants: pd.DataFrame
    source: str
    #: Per-op profile rows (run_id, cell_key, op_index, op, ticks, unit, time_us, share), when any.
    ops: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def run_ids(self) -> list[str]:
        return [r["id"] for r in self.runs]


# --- from the store -------------------------------------------------------------------------------

def load_bundle(run_ids: list[str], store_url: str) -> RunBundle:
    """Read runs from the store; an unknown run id is a StoreError naming it."""
    store = Store.open(store_url, create=False)
    try:
        run_rows = [_plain(store.get_run(r)) for r in run_ids]
        with store.engine.connect() as conn:
            cells = _read_cells(conn, run_ids)
            snaps = pd.DataFrame([_plain(dict(r)) for r in conn.execute(
                sa.select(device_snapshots).where(device_snapshots.c.run_id.in_(run_ids))
                .order_by(device_snapshots.c.id)).mappings()])
            shas = sorted(set(cells["variant_sha256"])) if len(cells) else []
            var_rows = pd.DataFrame([_plain(dict(r)) for r in conn.execute(
                sa.select(variants).where(variants.c.sha256.in_(shas))).mappings()])
            ops = pd.DataFrame([dict(r) for r in conn.execute(
                sa.select(op_profiles).where(op_profiles.c.run_id.in_(run_ids))
                .order_by(op_profiles.c.run_id, op_profiles.c.cell_key, op_profiles.c.op_index)).mappings()])
    finally:
        store.close()
    return RunBundle(runs=run_rows, cells=_join(cells, snaps, var_rows), devices=snaps, variants=var_rows,
                     source=store_url, ops=ops)


def _read_cells(conn: sa.Connection, run_ids: list[str]) -> pd.DataFrame:
    # NullType: values come back as the driver gives them, without SQLAlchemy's per-value processors.
    plain = [sa.type_coerce(c, sa.types.NullType()).label(c.name) for c in _SCALAR_COLUMNS]
    query = (sa.select(*plain, sa.cast(measurements.c.latency_ns, sa.Text).label("latency_text"),
                       sa.cast(measurements.c.details, sa.Text).label("details_text"))
             .where(measurements.c.run_id.in_(run_ids)).order_by(measurements.c.id))
    result = conn.execute(query)
    keys = list(result.keys())
    # Column-wise construction: pandas inspects every Row object when given rows, which costs seconds.
    columns = dict(zip(keys, list(zip(*result.fetchall(), strict=True)) or [() for _ in keys], strict=True))
    latency_text, details_text = columns.pop("latency_text"), columns.pop("details_text")
    frame = pd.DataFrame({k: pd.Series(list(c), dtype=object) for k, c in columns.items()}).infer_objects()
    frame["latency_ns"] = pd.Series(_parse_latencies(list(latency_text)), dtype=object)
    frame["details"] = pd.Series([_parse_details(t) for t in details_text], dtype=object)
    if len(frame):
        frame["estimated"] = frame["estimated"].astype(bool)
    return frame


def _parse_latencies(texts: list[Any]) -> list[np.ndarray]:
    """Every cell's samples from its JSON text, parsed as one comma-separated string by numpy."""
    bodies = []
    for t in texts:
        if isinstance(t, str) and t.startswith("[") and len(t) > 2:
            bodies.append(t[1:-1])
        elif isinstance(t, list | tuple):  # a driver that already decoded JSON (some PostgreSQL set-ups)
            bodies.append(",".join(repr(float(x)) for x in t))
        else:
            bodies.append("")
    lengths = [b.count(",") + 1 if b.strip() else 0 for b in bodies]
    joined = ",".join(b for b in bodies if b.strip())
    flat = np.array([], dtype=np.float64)
    if joined:
        flat = np.fromstring(joined, dtype=np.float64, sep=",")
    if flat.size != sum(lengths):  # something numpy could not read: fall back to JSON, row by row
        log.debug("latency text did not parse in one pass; decoding row by row")
        return [np.asarray(json.loads(f"[{b}]"), dtype=np.float64) for b in bodies]
    return np.split(flat, np.cumsum(lengths)[:-1]) if lengths else []


def _parse_details(text: Any) -> dict[str, Any]:
    if isinstance(text, dict):
        return text
    if not isinstance(text, str) or text in ("", "{}", "null"):
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _join(cells: pd.DataFrame, snaps: pd.DataFrame, var_rows: pd.DataFrame) -> pd.DataFrame:
    """Each cell with its variant's and its device snapshot's columns."""
    if cells.empty:
        return cells
    if len(var_rows):
        vcols = var_rows[["sha256", *_VARIANT_COLUMNS]].rename(columns={"sha256": "variant_sha256"})
        cells = cells.merge(vcols, on="variant_sha256", how="left")
    if len(snaps):
        dcols = snaps[["id", *_DEVICE_COLUMNS]].rename(columns={"id": "device_snapshot_id", **_DEVICE_COLUMNS})
        cells = cells.merge(dcols, on="device_snapshot_id", how="left")
    for col in [*_VARIANT_COLUMNS, *_DEVICE_COLUMNS.values()]:
        if col not in cells:
            cells[col] = None
    return cells


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """JSON columns arrive as text on some back-ends; give every consumer dicts."""
    for key in ("config", "details", "provenance"):
        if isinstance(row.get(key), str):
            with contextlib.suppress(json.JSONDecodeError):
                row[key] = json.loads(row[key])
    return row


# --- to and from a file ---------------------------------------------------------------------------

def write_bundle(bundle: RunBundle, path: Path) -> Path:
    """Write a bundle as JSON (gzip-compressed when the name ends in .gz), samples included."""
    cells = bundle.cells.drop(columns=[c for c in ("board",) if c in bundle.cells])
    doc = {
        "format": EXPORT_FORMAT,
        "runs": bundle.runs,
        "devices": _records(bundle.devices),
        "variants": _records(bundle.variants),
        "cells": _records(cells),
        "ops": _records(bundle.ops),
    }
    text = json.dumps(doc, default=_json_default, separators=(",", ":"))
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode(), mtime=0))
    else:
        path.write_text(text)
    return path


def read_bundle(path: Path) -> RunBundle:
    """Read a file written by `write_bundle`; anything else is a BundleError saying what is wrong."""
    hint = "Write one with `bench export RUN --out FILE`."
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise BundleError(f"baseline file {str(path)!r} does not exist.", hint=hint) from None
    except OSError as exc:
        raise BundleError(f"baseline file {str(path)!r} is not readable: {exc.strerror}.", hint=hint) from None
    if not raw.strip():
        raise BundleError(f"baseline file {str(path)!r} is empty.", hint=hint)
    try:
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        doc = json.loads(raw)
    except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"baseline file {str(path)!r} is not a readable bench export: {exc}.", hint=hint) from None
    if not isinstance(doc, dict) or doc.get("format") != EXPORT_FORMAT:
        raise BundleError(f"{str(path)!r} is not a bench export (expected \"format\": \"{EXPORT_FORMAT}\").",
                          hint=hint)
    try:
        cells = pd.DataFrame(doc["cells"])
        if len(cells):
            cells["latency_ns"] = [np.asarray(s if s is not None else [], dtype=np.float64)
                                   for s in cells["latency_ns"]]
            cells["details"] = [d if isinstance(d, dict) else {} for d in cells["details"]]
            cells["estimated"] = cells["estimated"].astype(bool)
        return RunBundle(runs=list(doc["runs"]), cells=cells, devices=pd.DataFrame(doc["devices"]),
                         variants=pd.DataFrame(doc["variants"]), source=str(path),
                         ops=pd.DataFrame(doc.get("ops") or []))
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"bench export {str(path)!r} is damaged: {exc!r}.", hint=hint) from None


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: _cell_value(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def _cell_value(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)

"""Provenance tables and figure captions: which models (sha256, how made), on which boards (identity,
firmware, runtime, clock), when, by which bench — shown before any figure, so none is read without them."""

from __future__ import annotations

from typing import Any

import pandas as pd

from harness.report.data import ENGINE_LABEL, ReportData
from harness.report.tables import MISSING, Table, missing, num, pct
from harness.sparsity import LEGEND as SPARSITY_LEGEND
from harness.sparsity import REMOVED_OR_ZERO, ZERO_WEIGHTS, removed_or_zero

#: Keys of a device snapshot's details that identify a board and its firmware, in display order.
IDENTITY_KEYS = ("board", "firmware", "protocol", "serial", "hostname", "os", "machine", "cores", "python",
                 "profile", "port", "threads", "kernels", "governors")


def runs_table(data: ReportData) -> Table:
    table = Table(["run", "started (UTC)", "finished (UTC)", "status", "host", "bench", "git commit", "command"])
    for r in data.runs.to_dict(orient="records"):
        table.rows.append([
            str(r["id"]), _when(r.get("created_at")), _when(r.get("finished_at")), str(r.get("status") or MISSING),
            str(r.get("host") or MISSING), str(r.get("bench_version") or MISSING),
            str(r.get("git_commit") or "not from a git checkout"), str(r.get("command") or MISSING),
        ])
    return table


def devices_table(data: ReportData) -> Table:
    table = Table(["board", "kind", "runtime", "CPU", "clock", "firmware / identity", "latency", "captured (UTC)"])
    for d in data.devices.to_dict(orient="records"):
        details = d.get("details") if isinstance(d.get("details"), dict) else {}
        identity = "; ".join(f"{k} {details[k]}" for k in IDENTITY_KEYS if not missing_detail(details.get(k)))
        table.rows.append([
            str(d["board"]), _text(d.get("kind")), f"{_text(d.get('runtime'))} {_text(d.get('runtime_version'), '')}"
            .strip(), _text(d.get("cpu")), _clock(d.get("clock_hz")), identity or MISSING,
            _text(d.get("latency_source")), _when(d.get("captured_at")),
        ])
    return table


def models_table(data: ReportData) -> Table:
    """Every variant measured, with its sha256 and how it was made (engine, command, layers left dense)."""
    table = Table(["variant", "sha256", "method", "target", ZERO_WEIGHTS.label, REMOVED_OR_ZERO.label, "params",
                   "MACs", "size KiB (gzip)", "host top-1", "how it was made"], numeric={3, 4, 5, 6, 7, 8, 9},
                  caption=f"{SPARSITY_LEGEND}. Target = what pruning was asked for (magnitude: the share of "
                          "weights to zero; channel: the share of channels to remove).")
    if data.variants.empty:
        return table
    order = {sha: i for i, sha in enumerate(dict.fromkeys(data.summary["variant_sha256"]))}
    variants = data.variants.sort_values("sha256", key=lambda s: s.map(order), kind="stable")
    # The summary's figure where the variant was measured, so this table and the board tables agree.
    measured = dict(zip(data.summary["variant_sha256"], data.summary[REMOVED_OR_ZERO.column], strict=True))
    params_of = dict(zip(variants["sha256"], variants["params"], strict=True))
    for v in variants.to_dict(orient="records"):
        prov: dict[str, Any] = v.get("provenance") if isinstance(v.get("provenance"), dict) else {}
        share = measured.get(v["sha256"])
        if missing(share):
            share = removed_or_zero(v.get("method"), v.get("measured_sparsity"), v.get("params"),
                                    params_of.get(v.get("base_sha256")))
        table.rows.append([
            str(v["name"]), str(v["sha256"]),
            _method(v.get("method"), v.get("engine"), v.get("scope")),
            pct(v.get("target_sparsity")), pct(v.get("measured_sparsity"), 1), pct(share, 1),
            num(v.get("params"), ",.0f"), num(v.get("macs"), ",.0f"),
            f"{num(v.get('size_bytes'), '.1f', 1024)} ({num(v.get('gzip_bytes'), '.1f', 1024)})",
            pct(v.get("host_accuracy"), 1), _how_made(v, prov),
        ])
    return table


def figure_caption(data: ReportData, boards: list[str]) -> str:
    """What every point of a figure rests on: samples, warm-up, how latency was obtained, on what."""
    ok = data.ok_summary()
    parts = []
    for board in boards:
        rows = ok[ok["board"] == board]
        dev = data.devices[data.devices["board"] == board]
        d = dev.iloc[-1].to_dict() if len(dev) else {}
        n = pd.to_numeric(rows["n"], errors="coerce")
        warm = data.warmups.get(board, [])
        sources = ",".join(sorted({s for v in rows["latency_source"].dropna() for s in str(v).split(",") if s}))
        parts.append(
            f"{board}: {_text(d.get('runtime'))} {_text(d.get('runtime_version'), '')} on {_text(d.get('cpu'))}"
            f"{' @ ' + _clock(d.get('clock_hz')) if not missing(d.get('clock_hz')) else ''}; "
            f"{sources or MISSING}; n = {_span(n)} samples per point over {_span(rows['repeats'])} repeat(s); "
            f"warm-up {'/'.join(map(str, warm)) or MISSING}"
        )
    dense = ok[ok["is_reference"]].drop_duplicates("variant_sha256")
    models = ", ".join(f"{r.variant_name} {str(r.variant_sha256)[:12]}" for r in dense.itertuples(index=False))
    return f"Dense model(s): {models or MISSING}. " + " · ".join(parts) + \
        f". Sparsity axes: {REMOVED_OR_ZERO.label} = {REMOVED_OR_ZERO.meaning}; variants' sha256 in the Models table."


def _text(value: Any, default: str = MISSING) -> str:
    return default if missing(value) or value == "" else str(value)


def _span(values: pd.Series) -> str:
    v = pd.to_numeric(values, errors="coerce").dropna()
    if v.empty:
        return MISSING
    lo, hi = int(v.min()), int(v.max())
    return str(lo) if lo == hi else f"{lo}–{hi}"


def _method(method: Any, engine: Any, scope: Any) -> str:
    text = str(method or "original")
    extras = [ENGINE_LABEL.get(str(engine), str(engine)) if not missing(engine) else "",
              f"{scope} scope" if not missing(scope) else ""]
    extras = [e for e in extras if e]
    return f"{text} ({', '.join(extras)})" if extras else text


def _how_made(v: dict[str, Any], prov: dict[str, Any]) -> str:
    bits = []
    if not missing(v.get("base_sha256")):
        bits.append(f"from {str(v['base_sha256'])[:12]}")
    if prov.get("command"):
        bits.append(f"`{prov['command']}`")
    if prov.get("not_pruned"):
        bits.append("left dense: " + "; ".join(map(str, prov["not_pruned"])))
    if prov.get("accuracy_method"):
        bits.append(f"host top-1: {prov['accuracy_method']}")
    return "; ".join(bits) or MISSING


def _clock(hz: Any) -> str:
    if missing(hz):
        return MISSING
    return f"{float(hz) / 1e6:g} MHz"


def _when(value: Any) -> str:
    if missing(value) or not value:
        return MISSING
    return str(value)[:19].replace("T", " ")


def missing_detail(value: Any) -> bool:
    return value is None or value == "" or value == {} or value == []

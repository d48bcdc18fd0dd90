"""The results store: SQLAlchemy Core over SQLite (WAL) by default, PostgreSQL by URL, same code.

Only the sweep's writer (the main thread) calls the write methods, and each finished cell is
committed on its own transaction, so whatever stops a sweep, every finished measurement is kept.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from benchcore import metrics as metric_registry
from benchcore.record import Measurement, OpProfile, ThermalState, utcnow
from harness.errors import StoreError

log = logging.getLogger(__name__)

__all__ = ["SCHEMA_VERSION", "Store", "measurement_row", "measurements", "new_run_id", "op_profiles", "utcnow"]

SCHEMA_VERSION = 2

metadata = sa.MetaData()

meta_table = sa.Table(
    "bench_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("finished_at", sa.String(32)),
    # running | complete | interrupted  (a killed sweep stays "running" until resumed)
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("bench_version", sa.String(32), nullable=False),
    sa.Column("git_commit", sa.String(64)),
    sa.Column("host", sa.String(255)),
    sa.Column("command", sa.Text),
    sa.Column("config", sa.JSON, nullable=False),
    sa.Column("n_cells", sa.Integer, nullable=False),
)

device_snapshots = sa.Table(
    "device_snapshots",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.ForeignKey("runs.id"), nullable=False, index=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("runtime", sa.String(128)),
    sa.Column("runtime_version", sa.String(128)),
    sa.Column("cpu", sa.String(255)),
    sa.Column("clock_hz", sa.BigInteger),
    sa.Column("details", sa.JSON, nullable=False),
    sa.Column("captured_at", sa.String(32), nullable=False),
)

variants = sa.Table(
    "model_variants",
    metadata,
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("base_sha256", sa.String(64)),
    sa.Column("engine", sa.String(32)),
    sa.Column("method", sa.String(32), nullable=False),
    sa.Column("scope", sa.String(16)),
    sa.Column("target_sparsity", sa.Float),
    sa.Column("measured_sparsity", sa.Float),
    sa.Column("params", sa.BigInteger),
    sa.Column("macs", sa.BigInteger),
    sa.Column("size_bytes", sa.BigInteger),
    sa.Column("gzip_bytes", sa.BigInteger),
    sa.Column("arena_bytes", sa.BigInteger),
    sa.Column("host_accuracy", sa.Float),
    sa.Column("provenance", sa.JSON, nullable=False),
)

_SQL_TYPES = {"float": sa.Float, "int": sa.BigInteger}


def _metric_column(metric: metric_registry.Metric) -> sa.Column[Any]:
    """A stored metric's column: nullable, typed by the registry (a cell that did not measure it has NULL)."""
    return sa.Column(metric.column, _SQL_TYPES[metric.sql_type]())


#: One row per cell. The fixed columns say which cell, when and how; the metric columns come from
#: the metric registry (benchcore.metrics), so a new metric is a registry entry, not an edit here.
measurements = sa.Table(
    "measurements",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.ForeignKey("runs.id"), nullable=False, index=True),
    sa.Column("cell_key", sa.String(512), nullable=False),
    sa.Column("device_name", sa.String(255), nullable=False),
    sa.Column("device_snapshot_id", sa.ForeignKey("device_snapshots.id")),
    sa.Column("variant_sha256", sa.ForeignKey("model_variants.sha256"), nullable=False),
    sa.Column("variant_name", sa.String(255), nullable=False),
    sa.Column("repeat", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # ok | failed
    sa.Column("error", sa.Text),
    sa.Column("started_at", sa.String(32), nullable=False),
    sa.Column("finished_at", sa.String(32), nullable=False),
    sa.Column("warmup", sa.Integer),
    sa.Column("latency_ns", sa.JSON),
    *(_metric_column(m) for m in metric_registry.stored()),
    sa.Column("estimated", sa.Boolean, nullable=False, default=False),
    sa.Column("latency_source", sa.String(16)),
    sa.Column("timing_method", sa.String(255)),
    sa.Column("details", sa.JSON),
    sa.UniqueConstraint("run_id", "cell_key", name="uq_measurement_cell"),
)

#: The per-op profile of a cell (schema v2): where one inference spends its time, op by op.
op_profiles = sa.Table(
    "op_profiles",
    metadata,
    sa.Column("run_id", sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("cell_key", sa.String(512), primary_key=True),
    sa.Column("op_index", sa.Integer, primary_key=True),
    sa.Column("op", sa.String(64), nullable=False),
    #: Per inference, in `unit` (cycles, emulated cycles, ticks).
    sa.Column("ticks", sa.Float, nullable=False),
    sa.Column("unit", sa.String(32), nullable=False),
    sa.Column("time_us", sa.Float),
    sa.Column("share", sa.Float, nullable=False),
)


def _migrate_v1_to_v2(conn: Connection) -> None:
    """v2 keeps per-op profiles in their own table (v1 left them in each cell's details), and flags
    cells whose board throttled during the timed window (v1 left that nested in thermal_before/after)."""
    op_profiles.create(conn)
    rows = conn.execute(sa.select(measurements.c.id, measurements.c.run_id, measurements.c.cell_key,
                                  measurements.c.details).where(measurements.c.details.is_not(None))).all()
    for mid, run_id, cell_key, details in rows:
        if isinstance(details, str):
            details = json.loads(details)
        if not isinstance(details, dict):
            continue
        changed = False
        entries = details.get("op_profile")
        if isinstance(entries, list) and entries:
            clock = details.get("clock_hz")
            profile = OpProfile.from_entries(entries, unit="cycles", clock_hz=float(clock) if clock else None)
            conn.execute(op_profiles.insert(), _op_rows(run_id, cell_key, profile))
            del details["op_profile"]
            changed = True
        reason = _throttle_reason(details)
        if reason and not details.get("throttled"):
            details.update(throttled=True, throttle_reason=reason)
            changed = True
        if changed:
            conn.execute(measurements.update().where(measurements.c.id == mid).values(details=details))


#: from_version -> function upgrading a connection's schema to from_version + 1.
MIGRATIONS: dict[int, Any] = {1: _migrate_v1_to_v2}


def add_metric_columns(conn: Connection) -> list[str]:
    """Add to `measurements` every stored metric column of the registry it lacks; the names added.

    Not a numbered migration: a new metric is one registry entry, and its column is additive and nullable
    (older cells simply did not measure it), so whether a store has it is read off the table itself, on
    every open, after the numbered migrations (which own renames and moves). A bench that predates the
    metric still reads and writes such a store: it names the columns it selects and inserts."""
    have = {c["name"] for c in sa.inspect(conn).get_columns(measurements.name)}
    added = []
    table = conn.dialect.identifier_preparer.format_table(measurements)
    for metric in metric_registry.stored():
        if metric.column in have:
            continue
        spec = sa.schema.CreateColumn(_metric_column(metric)).compile(dialect=conn.dialect)
        # Two processes opening an old store at once may both try: PostgreSQL skips an existing column,
        # SQLite (no IF NOT EXISTS here) reports a duplicate, which is the same outcome.
        if_absent = "IF NOT EXISTS " if conn.dialect.name == "postgresql" else ""
        try:
            conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {if_absent}{spec}")
        except sa.exc.OperationalError as exc:
            if "duplicate column" not in str(exc.orig).lower():
                raise
        added.append(metric.column)
    return added


def _throttle_reason(details: dict[str, Any]) -> str | None:
    thermal = ThermalState.from_readings(details.get("thermal_before"), details.get("thermal_after"))
    return thermal.throttle_reason() if thermal is not None else None


def _op_rows(run_id: str, cell_key: str, profile: OpProfile) -> list[dict[str, Any]]:
    return [{"run_id": run_id, "cell_key": cell_key, "op_index": o.index, "op": o.op, "ticks": o.ticks,
             "unit": profile.unit, "time_us": o.time_us, "share": o.share} for o in profile.ops]


def measurement_row(record: Measurement, run_id: str, device_snapshot_id: int | None) -> dict[str, Any]:
    """The `measurements` row of a record: fixed fields, one column per stored metric, and the
    artefacts that have no table of their own folded into `details`."""
    details = dict(record.details or {})
    if record.histogram is not None:
        h = record.histogram
        details["histogram"] = {"base": h.base, "width": h.width, "counts": list(h.counts)}
    if record.thermal is not None:
        details["thermal_before"], details["thermal_after"] = record.thermal.before, record.thermal.after
        reason = record.thermal.throttle_reason()
        if reason:  # the report warns on this flag
            details.update(throttled=True, throttle_reason=reason)
    row: dict[str, Any] = {
        "run_id": run_id, "device_snapshot_id": device_snapshot_id, "cell_key": record.cell_key,
        "device_name": record.device_name, "variant_sha256": record.variant_sha256,
        "variant_name": record.variant_name, "repeat": record.repeat, "status": record.status,
        "error": record.error, "started_at": record.started_at, "finished_at": record.finished_at,
        "warmup": record.warmup, "estimated": bool(record.estimated), "latency_source": record.latency_source,
        "timing_method": record.timing_method, "details": details or None,
        "latency_ns": list(record.latency_ns) if record.latency_ns is not None else None,
    }
    for m in metric_registry.stored():
        value = record.metrics.get(m.column)
        row[m.column] = None if value is None else (int(value) if m.sql_type == "int" else float(value))
    return row


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def _sqlite_path(url: sa.URL) -> Path | None:
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


def _on_sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets `bench show` read while a sweep writes; busy_timeout rides out the writer's commits.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


class Store:
    """A results database. Open with `Store.open(url)`; nothing touches the disk before that."""

    def __init__(self, engine: Engine, url: str) -> None:
        self.engine = engine
        self.url = url

    @classmethod
    def open(cls, url: str, *, create: bool = True) -> Store:
        try:
            parsed = sa.make_url(url)
        except sa.exc.ArgumentError:
            raise StoreError(
                f"store URL {url!r} is not a database URL.",
                hint="Use sqlite:///path/to/bench.db or postgresql+psycopg://user@host/db in [store] url.",
            ) from None
        path = _sqlite_path(parsed)
        if path is not None:
            _check_sqlite_path(path, url, create)
        try:
            engine = sa.create_engine(parsed)
        except (sa.exc.ArgumentError, ImportError) as exc:
            raise StoreError(f"cannot open store {url!r}: {exc}.") from None
        if parsed.get_backend_name() == "sqlite":
            sa.event.listen(engine, "connect", _on_sqlite_connect)
        store = cls(engine, url)
        try:
            store._prepare_schema(create)
        except sa.exc.OperationalError as exc:
            engine.dispose()
            raise StoreError(
                f"cannot open store {url!r}: {exc.orig}.",
                hint="Check that the path or server is reachable and writable.",
            ) from None
        return store

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    # --- schema --------------------------------------------------------------------------------
    def _prepare_schema(self, create: bool) -> None:
        with self._tx() as conn:
            inspector = sa.inspect(conn)
            if not inspector.has_table(meta_table.name):
                if not create:
                    raise StoreError(f"store {self.url!r} holds no bench results yet.", hint="Run `bench sweep`.")
                metadata.create_all(conn)
                conn.execute(meta_table.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))
                return
            version = int(conn.execute(sa.select(meta_table.c.value).where(meta_table.c.key == "schema_version"))
                          .scalar_one())
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"store {self.url!r} has schema version {version}, newer than this bench ({SCHEMA_VERSION}).",
                    hint="Upgrade bench (pip install -U hilbench) to read it.",
                )
            while version < SCHEMA_VERSION:
                MIGRATIONS[version](conn)
                version += 1
                conn.execute(meta_table.update().where(meta_table.c.key == "schema_version")
                             .values(value=str(version)))
            added = add_metric_columns(conn)
            if added:
                log.info("store %s: added metric column(s) %s to measurements",
                         sa.make_url(self.url).render_as_string(hide_password=True), ", ".join(added))

    # --- runs ----------------------------------------------------------------------------------
    def create_run(self, run_id: str, *, config: dict[str, Any], n_cells: int, bench_version: str,
                   git_commit: str | None, host: str, command: str) -> None:
        with self._tx() as conn:
            conn.execute(runs.insert().values(
                id=run_id, created_at=utcnow(), status="running", bench_version=bench_version,
                git_commit=git_commit, host=host, command=command, config=config, n_cells=n_cells,
            ))

    def set_run_status(self, run_id: str, status: str) -> None:
        finished = utcnow() if status != "running" else None
        with self._tx() as conn:
            conn.execute(runs.update().where(runs.c.id == run_id).values(status=status, finished_at=finished))

    def get_run(self, run_id: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(runs).where(runs.c.id == run_id)).mappings().first()
        if row is None:
            raise StoreError(
                f"there is no run {run_id!r} in store {self.url!r}.",
                hint="`bench runs` lists the runs it holds.",
            )
        return dict(row)

    def list_runs(self) -> list[dict[str, Any]]:
        counts = (
            sa.select(
                measurements.c.run_id,
                sa.func.count().label("cells_done"),
                sa.func.sum(sa.case((measurements.c.status == "failed", 1), else_=0)).label("cells_failed"),
            )
            .group_by(measurements.c.run_id)
            .subquery()
        )
        query = (
            sa.select(runs.c.id, runs.c.created_at, runs.c.finished_at, runs.c.status, runs.c.n_cells,
                      runs.c.bench_version, runs.c.git_commit,
                      sa.func.coalesce(counts.c.cells_done, 0).label("cells_done"),
                      sa.func.coalesce(counts.c.cells_failed, 0).label("cells_failed"))
            .select_from(runs.outerjoin(counts, counts.c.run_id == runs.c.id))
            .order_by(runs.c.created_at)
        )
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def latest_run_id(self) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(runs.c.id).order_by(runs.c.created_at.desc()).limit(1)).scalar()

    # --- cells ---------------------------------------------------------------------------------
    def committed_cells(self, run_id: str) -> dict[str, str]:
        """cell_key -> status of every cell already committed to the run."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(measurements.c.cell_key, measurements.c.status)
                                .where(measurements.c.run_id == run_id))
            return {k: s for k, s in rows}

    def forget_failed_cells(self, run_id: str) -> int:
        with self._tx() as conn:
            failed = sa.select(measurements.c.cell_key).where(
                (measurements.c.run_id == run_id) & (measurements.c.status == "failed"))
            conn.execute(op_profiles.delete().where((op_profiles.c.run_id == run_id)
                                                    & op_profiles.c.cell_key.in_(failed)))
            result = conn.execute(measurements.delete().where(
                (measurements.c.run_id == run_id) & (measurements.c.status == "failed")))
            return result.rowcount

    def add_device_snapshot(self, run_id: str, info: dict[str, Any]) -> int:
        with self._tx() as conn:
            result = conn.execute(device_snapshots.insert().values(
                run_id=run_id, name=info["name"], kind=info["kind"], runtime=info.get("runtime"),
                runtime_version=info.get("runtime_version"), cpu=info.get("cpu"), clock_hz=info.get("clock_hz"),
                details=info.get("details") or {}, captured_at=utcnow(),
            ))
            return int(result.inserted_primary_key[0])

    def upsert_variant(self, provenance: dict[str, Any]) -> None:
        """Variants are keyed by content: the same file measured in many runs is one row."""
        row = {
            "sha256": provenance["sha256"], "name": provenance["name"],
            "base_sha256": provenance.get("base_sha256"), "engine": provenance.get("engine"),
            "method": provenance.get("method") or "original", "scope": provenance.get("scope"),
            "target_sparsity": provenance.get("target_sparsity"),
            "measured_sparsity": provenance.get("measured_sparsity"),
            "params": provenance.get("params"), "macs": provenance.get("macs"),
            "size_bytes": provenance.get("size_bytes"), "gzip_bytes": provenance.get("gzip_bytes"),
            "arena_bytes": provenance.get("arena_bytes"), "host_accuracy": provenance.get("accuracy"),
            "provenance": provenance,
        }
        with self._tx() as conn:
            exists = conn.execute(sa.select(variants.c.sha256).where(variants.c.sha256 == row["sha256"])).first()
            if exists is None:
                conn.execute(variants.insert().values(**row))

    def add_measurement(self, record: Measurement, *, run_id: str, device_snapshot_id: int | None = None
                        ) -> dict[str, Any]:
        """Commit one cell and its per-op profile in one transaction; returns the row as stored."""
        row = measurement_row(record, run_id, device_snapshot_id)
        with self._tx() as conn:
            conn.execute(measurements.insert().values(**row))
            if record.op_profile is not None and record.op_profile.ops:
                conn.execute(op_profiles.insert(), _op_rows(run_id, record.cell_key, record.op_profile))
        return row

    def op_profiles(self, run_id: str) -> list[dict[str, Any]]:
        """Every per-op row of a run, cell by cell in commit order, ops in execution order."""
        query = (sa.select(op_profiles, measurements.c.device_name, measurements.c.variant_name,
                           measurements.c.variant_sha256, measurements.c.repeat)
                 .join(measurements, (measurements.c.run_id == op_profiles.c.run_id)
                       & (measurements.c.cell_key == op_profiles.c.cell_key))
                 .where(op_profiles.c.run_id == run_id)
                 .order_by(measurements.c.id, op_profiles.c.op_index))
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]


def _check_sqlite_path(path: Path, url: str, create: bool) -> None:
    hint = "Point [store] url in bench.toml (or --store) at a writable directory."
    if path.exists():
        if path.is_dir():
            raise StoreError(f"store path {str(path)!r} is a directory, not a database file.", hint=hint)
        if create and not os.access(path, os.W_OK):
            raise StoreError(f"store file {str(path)!r} is not writable.", hint=hint)
        return
    if not create:
        raise StoreError(f"there is no store at {str(path)!r}.", hint="Run `bench sweep` first, or pass --store.")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise StoreError(f"store path {str(path)!r} cannot be written: {str(parent)!r} is not a directory.",
                         hint=hint)
    if not os.access(parent, os.W_OK):
        raise StoreError(f"store path {str(path)!r} cannot be written: no write permission on {str(parent)!r}.",
                         hint=hint)


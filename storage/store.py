"""The ``Store``: circuits, datasets, simulation results and model versions in SQLite or PostgreSQL.

Writes go through SQLAlchemy Core in bulk (``INSERT ... ON CONFLICT DO NOTHING`` executemany), so
adding the same rows twice, or from several processes at once, is harmless. Each public write is
one transaction: it either lands whole or leaves the store as it was.

SQLite runs in WAL mode with a 30 s busy timeout and real transactions (write transactions start
with ``BEGIN IMMEDIATE``), so concurrent writers queue instead of failing. On PostgreSQL, rows are
inserted in a fixed global order (topologies, circuits, memberships; each sorted) so overlapping
writers cannot deadlock, and a transaction that still hits a deadlock is retried.
"""

from __future__ import annotations

import json
import math
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from alembic.util.exc import CommandError
from sqlalchemy import (
    Connection,
    Engine,
    Insert,
    Table,
    and_,
    bindparam,
    create_engine,
    event,
    exists,
    func,
    select,
    update,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

from circuits.circuit import Circuit
from circuits.errors import CktLoopError
from circuits.family import Sample
from circuits.performance import Performance
from storage import migrate
from storage.models import circuits, dataset_circuits, datasets, model_versions, simulations, topologies

T = TypeVar("T")

ENV_VAR = "CKTLOOP_DB"
DEFAULT_URL = "sqlite:///cktloop.db"
BUSY_TIMEOUT_S = 30.0
PG_CONNECT_TIMEOUT_S = 10
CHUNK_SIZE = 5000  # rows per executemany
LOOKUP_CHUNK = 500  # keys per IN (...) lookup
PAGE_SIZE = 2000  # rows per page when streaming a dataset
_RETRIES = 5  # attempts for a PostgreSQL transaction that deadlocks or fails to serialise
_RETRY_SQLSTATES = {"40P01", "40001"}
_SUPPORTED = ("sqlite", "postgresql")


class StoreError(CktLoopError):
    """The database cannot be opened, or a request contradicts what it holds."""


def default_url() -> str:
    """The database URL: ``$CKTLOOP_DB`` when set, else ``sqlite:///cktloop.db`` in the working directory."""
    return os.environ.get(ENV_VAR) or DEFAULT_URL


@dataclass(frozen=True)
class DatasetRow:
    """One member of a dataset: its place in the generated stream, its split and its circuit."""

    position: int
    topology_number: int
    sizing: int
    split: str
    circuit: Circuit

    @classmethod
    def from_sample(cls, sample: Sample, split: str) -> DatasetRow:
        return cls(sample.index, sample.topology, sample.sizing, split, sample.circuit)


@dataclass(frozen=True)
class _Identity:
    key: str
    topology_key: str
    circuit_json: str
    structure_json: str
    n_stages: int
    n_nodes: int
    grid: str


def _identify(circuit: Circuit) -> _Identity:
    """What the tables store about a circuit, from its (cached) canonical form."""
    c = circuit.canonical()
    edges = [list(e) for e in c.edges]
    structure = {"types": [n.type for n in c.nodes], "pos": [n.pos for n in c.nodes], "edges": edges}
    return _Identity(
        key=circuit.key,
        topology_key=circuit.topology_key,
        circuit_json=circuit.to_json(),
        structure_json=json.dumps(structure, separators=(",", ":")),
        n_stages=circuit.n_stages,
        n_nodes=len(c.nodes),
        grid=circuit.grid,
    )


# --- URLs and errors ----------------------------------------------------------------------------


def _mask(url: str | URL) -> str:
    """The URL with its password hidden."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


def _cause(exc: BaseException) -> str:
    """A one-line description of a database error, without SQLAlchemy's SQL and background link."""
    orig = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(orig).splitlines() if line.strip()]
    text = lines[0] if lines else type(orig).__name__
    text = re.sub(r"^\(\S+\)\s*", "", text)  # "(sqlite3.OperationalError) ..." → "..."
    return text.removeprefix("connection failed: ")


def _json(value: Any, what: str) -> str:
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"{what} is not JSON-serialisable: {exc}") from None


def _finite(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# --- SQLite connection setup --------------------------------------------------------------------


def _sqlite_on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # let SQLAlchemy's BEGIN (below) govern transactions, DDL included
    cur = dbapi_conn.cursor()
    try:
        cur.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.execute("PRAGMA foreign_keys = ON")
    finally:
        cur.close()


def _sqlite_on_begin(conn: Connection) -> None:
    # A write transaction takes the write lock up front: a deferred transaction that reads first
    # and then writes fails at once (SQLITE_BUSY_SNAPSHOT) when another writer got in between.
    immediate = conn.get_execution_options().get(migrate.WRITE_OPTION, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _create_engine(url: URL) -> Engine:
    backend = url.get_backend_name()
    if backend not in _SUPPORTED:
        raise StoreError(
            f"cannot open database {_mask(url)}: unsupported backend {backend!r} (use sqlite or postgresql)"
        )
    if backend == "sqlite":
        db = url.database or ""
        if db and db != ":memory:" and not db.startswith("file:"):
            parent = Path(db).expanduser().absolute().parent
            if not parent.is_dir():
                raise StoreError(f"cannot open database {_mask(url)}: directory {parent} does not exist")
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S})
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    connect_args = {} if "connect_timeout" in url.query else {"connect_timeout": PG_CONNECT_TIMEOUT_S}
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)


# --- the store ----------------------------------------------------------------------------------


class Store:
    """A CktLoop database. Open with ``Store.open(url)``; thread- and process-safe for writing."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        else:
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        self._dialect_insert = dialect_insert

    @classmethod
    def open(cls, url: str | None = None) -> Store:
        """Connect to ``url`` (default: ``default_url()``) and migrate it to the newest schema."""
        raw = url if url is not None else default_url()
        try:
            parsed = make_url(raw)
        except ArgumentError:
            raise StoreError(f"cannot open database {_mask(raw)}: not a database URL") from None
        engine = None
        try:
            engine = _create_engine(parsed)
            with engine.connect():
                pass
            migrate.upgrade(engine)
        except StoreError:
            if engine is not None:
                engine.dispose()
            raise
        except (SQLAlchemyError, sqlite3.Error, CommandError, OSError) as exc:
            if engine is not None:
                engine.dispose()
            cause = _cause(exc)
            if isinstance(exc, CommandError):
                cause = f"schema migration failed ({cause}); is the database from a newer CktLoop?"
            elif isinstance(exc, NoSuchModuleError):
                cause = f"no database driver for {parsed.drivername!r}"
            raise StoreError(f"cannot open database {_mask(parsed)}: {cause}") from None
        return cls(engine)

    @property
    def url(self) -> str:
        """The database URL, password hidden."""
        return _mask(self.engine.url)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    # --- transactions ---------------------------------------------------------------------------

    def _write(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in one write transaction, retrying PostgreSQL deadlocks; errors → StoreError."""
        for attempt in range(_RETRIES):
            try:
                with self.engine.connect() as conn:
                    conn.execution_options(**{migrate.WRITE_OPTION: True})
                    with conn.begin():
                        return work(conn)
            except DBAPIError as exc:
                sqlstate = getattr(exc.orig, "sqlstate", None)
                if sqlstate in _RETRY_SQLSTATES and attempt + 1 < _RETRIES:
                    time.sleep(0.05 * (attempt + 1))
                    continue
                raise StoreError(f"database error on {self.url}: {_cause(exc)}") from None
            except SQLAlchemyError as exc:
                raise StoreError(f"database error on {self.url}: {_cause(exc)}") from None
        raise AssertionError("unreachable")

    def _read(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in one read transaction (a consistent snapshot); errors → StoreError."""
        try:
            with self.engine.connect() as conn, conn.begin():
                return work(conn)
        except SQLAlchemyError as exc:
            raise StoreError(f"database error on {self.url}: {_cause(exc)}") from None

    def _insert(self, table: Table) -> Insert:
        """``INSERT ... ON CONFLICT DO NOTHING`` for this backend."""
        return self._dialect_insert(table).on_conflict_do_nothing()

    # --- datasets -------------------------------------------------------------------------------

    def ensure_dataset(self, name: str, seed: int, n: int, config: dict[str, Any]) -> int:
        """The id of dataset ``name``, creating it if new. An existing one must have the same seed and
        config; a larger ``n`` grows it (a smaller one is its prefix and changes nothing)."""
        if not isinstance(name, str) or not name.strip():
            raise StoreError(f"a dataset name must be a non-empty string, got {name!r}")
        if n < 0:
            raise StoreError(f"dataset size must be >= 0, got {n}")
        config_json = _json(config, f"the config of dataset {name!r}")

        def work(conn: Connection) -> int:
            conn.execute(self._insert(datasets), {"name": name, "seed": int(seed), "n": int(n), "config": config_json})
            row = conn.execute(
                select(datasets.c.id, datasets.c.seed, datasets.c.config).where(datasets.c.name == name)
            ).one()
            problems = []
            if row.seed != seed:
                problems.append(f"seed {row.seed} (requested {seed})")
            if row.config != config_json:
                problems.extend(_config_differences(json.loads(row.config), json.loads(config_json)))
            if problems:
                raise StoreError(
                    f"dataset {name!r} already exists with different settings: {'; '.join(problems)}"
                    " (choose another name to make a new dataset)"
                )
            conn.execute(update(datasets).where(datasets.c.id == row.id, datasets.c.n < n).values(n=n))
            return int(row.id)

        return self._write(work)

    def _dataset_id(self, conn: Connection, name_or_id: int | str) -> int:
        if isinstance(name_or_id, str):
            found = conn.execute(select(datasets.c.id).where(datasets.c.name == name_or_id)).scalar()
            if found is None:
                raise StoreError(f"no dataset named {name_or_id!r}")
            return int(found)
        found = conn.execute(select(datasets.c.id).where(datasets.c.id == name_or_id)).scalar()
        if found is None:
            raise StoreError(f"no dataset with id {name_or_id}")
        return int(found)

    def add_dataset_circuits(
        self, dataset_id: int | str, rows: Sequence[DatasetRow], *, chunk_size: int = CHUNK_SIZE
    ) -> None:
        """Add circuits (and their topologies) to a dataset; rows already there are left alone."""
        if not rows:
            return
        idents = [_identify(r.circuit) for r in rows]
        topo_rows: dict[str, dict[str, Any]] = {}
        circ_rows: dict[str, dict[str, Any]] = {}
        for ident in idents:
            topo_rows.setdefault(
                ident.topology_key,
                {
                    "key": ident.topology_key,
                    "n_stages": ident.n_stages,
                    "n_nodes": ident.n_nodes,
                    "structure": ident.structure_json,
                },
            )
            circ_rows.setdefault(
                ident.key,
                {
                    "p_key": ident.key,
                    "p_tkey": ident.topology_key,
                    "grid": ident.grid,
                    "circuit_json": ident.circuit_json,
                },
            )
        members = sorted(
            (
                {
                    "position": int(r.position),
                    "p_ckey": ident.key,
                    "topology_number": int(r.topology_number),
                    "sizing": int(r.sizing),
                    "split": r.split,
                }
                for r, ident in zip(rows, idents)
            ),
            key=lambda m: m["position"],
        )
        insert_circuit = self._insert(circuits).values(
            key=bindparam("p_key"),
            topology_id=select(topologies.c.id).where(topologies.c.key == bindparam("p_tkey")).scalar_subquery(),
        )
        insert_member = self._insert(dataset_circuits).values(
            dataset_id=bindparam("p_dataset"),
            circuit_id=select(circuits.c.id).where(circuits.c.key == bindparam("p_ckey")).scalar_subquery(),
        )

        def work(conn: Connection) -> None:
            did = self._dataset_id(conn, dataset_id)
            # Fixed global order (tables, then sorted keys) so concurrent writers never deadlock.
            for chunk in _chunks([topo_rows[k] for k in sorted(topo_rows)], chunk_size):
                conn.execute(self._insert(topologies), list(chunk))
            for chunk in _chunks([circ_rows[k] for k in sorted(circ_rows)], chunk_size):
                conn.execute(insert_circuit, list(chunk))
            for chunk in _chunks(members, chunk_size):
                conn.execute(insert_member, [{**m, "p_dataset": did} for m in chunk])
            self._check_members(conn, did, members)

        self._write(work)

    def _check_members(self, conn: Connection, did: int, members: list[dict[str, Any]]) -> None:
        """Refuse rows whose position already holds another circuit (skipped silently by ON CONFLICT):
        the stream for this seed and config changed, e.g. with the generator's code."""
        stored = dict(
            conn.execute(
                select(dataset_circuits.c.position, circuits.c.key)
                .join(circuits, circuits.c.id == dataset_circuits.c.circuit_id)
                .where(
                    dataset_circuits.c.dataset_id == did,
                    dataset_circuits.c.position.between(members[0]["position"], members[-1]["position"]),
                )
            ).all()
        )
        for m in members:
            have = stored.get(m["position"])
            if have is not None and have != m["p_ckey"]:
                name = conn.execute(select(datasets.c.name).where(datasets.c.id == did)).scalar_one()
                raise StoreError(
                    f"dataset {name!r} holds circuit {have} at position {m['position']}, not {m['p_ckey']}:"
                    " the circuit stream changed (new generator code?); nothing added, use a new dataset name"
                )

    def pending(self, dataset_id: int | str, simulator: str) -> list[tuple[str, Circuit]]:
        """(key, circuit) of the dataset's members not yet simulated by ``simulator``, in position order."""

        def work(conn: Connection) -> list[tuple[str, str]]:
            did = self._dataset_id(conn, dataset_id)
            done = exists().where(simulations.c.circuit_id == circuits.c.id, simulations.c.simulator == simulator)
            stmt = (
                select(circuits.c.key, circuits.c.circuit_json)
                .join(dataset_circuits, dataset_circuits.c.circuit_id == circuits.c.id)
                .where(dataset_circuits.c.dataset_id == did, ~done)
                .order_by(dataset_circuits.c.position)
            )
            return [(k, j) for k, j in conn.execute(stmt)]

        return [(key, Circuit.from_json(text)) for key, text in self._read(work)]

    def dataset_rows(self, name_or_id: int | str, simulator: str = "ngspice") -> Iterator[dict[str, Any]]:
        """Every member of a dataset with its circuit and ``simulator``'s result, in position order.

        Streams in pages (each its own short read), so it never holds the database for long.
        Unsimulated members have status and specs ``None``.
        """
        did = self._read(lambda conn: self._dataset_id(conn, name_or_id))
        sim = simulations.alias("s")
        base = (
            select(
                circuits.c.key,
                dataset_circuits.c.position,
                topologies.c.key.label("topology"),
                dataset_circuits.c.topology_number,
                dataset_circuits.c.sizing,
                dataset_circuits.c.split,
                circuits.c.circuit_json,
                sim.c.status,
                sim.c.gain_db,
                sim.c.ugbw_hz,
                sim.c.pm_deg,
                sim.c.pm_ocb_deg,
                sim.c.fom,
                sim.c.error,
            )
            .select_from(dataset_circuits)
            .join(circuits, circuits.c.id == dataset_circuits.c.circuit_id)
            .join(topologies, topologies.c.id == circuits.c.topology_id)
            .outerjoin(sim, and_(sim.c.circuit_id == circuits.c.id, sim.c.simulator == simulator))
            .where(dataset_circuits.c.dataset_id == did)
            .order_by(dataset_circuits.c.position)
            .limit(PAGE_SIZE)
        )
        last = None
        while True:
            stmt = base if last is None else base.where(dataset_circuits.c.position > last)
            page = self._read(lambda conn, stmt=stmt: conn.execute(stmt).all())
            for r in page:
                yield {
                    "id": r.key,
                    "position": r.position,
                    "topology": r.topology,
                    "topology_number": r.topology_number,
                    "sizing": r.sizing,
                    "split": r.split,
                    "circuit": json.loads(r.circuit_json),
                    "status": r.status,
                    "gain_db": r.gain_db,
                    "ugbw_hz": r.ugbw_hz,
                    "pm_deg": r.pm_deg,
                    "fom": r.fom,
                    "pm_ocb_deg": r.pm_ocb_deg,
                    "error": r.error,
                }
            if len(page) < PAGE_SIZE:
                return
            last = page[-1].position

    def datasets(self) -> list[dict[str, Any]]:
        """Every dataset: id, name, seed, n, config, created_at, members and simulated counts per simulator."""

        def work(conn: Connection) -> list[dict[str, Any]]:
            members = dict(
                conn.execute(
                    select(dataset_circuits.c.dataset_id, func.count()).group_by(dataset_circuits.c.dataset_id)
                ).all()
            )
            simulated: dict[int, dict[str, int]] = {}
            counts = conn.execute(
                select(dataset_circuits.c.dataset_id, simulations.c.simulator, func.count())
                .join(simulations, simulations.c.circuit_id == dataset_circuits.c.circuit_id)
                .group_by(dataset_circuits.c.dataset_id, simulations.c.simulator)
            )
            for did, simulator, count in counts:
                simulated.setdefault(did, {})[simulator] = count
            out = []
            for d in conn.execute(select(datasets).order_by(datasets.c.id)):
                out.append(
                    {
                        "id": d.id,
                        "name": d.name,
                        "seed": d.seed,
                        "n": d.n,
                        "config": json.loads(d.config),
                        "created_at": d.created_at,
                        "members": members.get(d.id, 0),
                        "simulated": simulated.get(d.id, {}),
                    }
                )
            return out

        return self._read(work)

    # --- simulations ----------------------------------------------------------------------------

    def add_simulations(
        self, simulator: str, version: str, results: Sequence[tuple[str, Performance, float | None]]
    ) -> None:
        """Record results as (circuit key, performance, seconds). A circuit already simulated by
        ``simulator`` keeps its first result; an unknown key fails the whole batch."""
        for what, value in (("simulator", simulator), ("simulator version", version)):
            if not isinstance(value, str) or not value or len(value) > 64:
                raise StoreError(f"{what} must be a non-empty string of at most 64 characters, got {value!r}")
        if not results:
            return
        keys = sorted({key for key, _, _ in results})

        def work(conn: Connection) -> None:
            ids: dict[str, int] = {}
            for chunk in _chunks(keys, LOOKUP_CHUNK):
                ids.update(conn.execute(select(circuits.c.key, circuits.c.id).where(circuits.c.key.in_(chunk))).all())
            missing = [k for k in keys if k not in ids]
            if missing:
                shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
                raise StoreError(f"cannot record {simulator} results for unknown circuit(s) {shown}; nothing recorded")
            rows = sorted(
                (
                    {
                        "circuit_id": ids[key],
                        "simulator": simulator,
                        "simulator_version": version,
                        "status": perf.status.value,
                        "gain_db": _finite(perf.gain_db),
                        "ugbw_hz": _finite(perf.ugbw_hz),
                        "pm_deg": _finite(perf.pm_deg),
                        "pm_ocb_deg": _finite(perf.pm_ocb_deg),
                        "fom": _finite(perf.fom),
                        "error": perf.error,
                        "seconds": _finite(seconds),
                    }
                    for key, perf, seconds in results
                ),
                key=lambda r: r["circuit_id"],
            )
            for chunk in _chunks(rows, CHUNK_SIZE):
                conn.execute(self._insert(simulations), list(chunk))

        self._write(work)

    # --- model versions -------------------------------------------------------------------------

    def register_model(
        self, kind: str, version: str, path: str | os.PathLike[str], config: dict[str, Any], metrics: dict[str, Any]
    ) -> int:
        """Record a trained model; registering the same (kind, version) again with the same data is a no-op."""
        row = {
            "kind": kind,
            "version": version,
            "path": str(path),
            "config": _json(config, f"the config of model {kind} {version}"),
            "metrics": _json(metrics, f"the metrics of model {kind} {version}"),
        }

        def work(conn: Connection) -> int:
            conn.execute(self._insert(model_versions), row)
            have = conn.execute(
                select(model_versions).where(model_versions.c.kind == kind, model_versions.c.version == version)
            ).one()
            differs = [f for f in ("path", "config", "metrics") if getattr(have, f) != row[f]]
            if differs:
                raise StoreError(
                    f"model {kind} version {version!r} is already registered with a different {', '.join(differs)}"
                )
            return int(have.id)

        return self._write(work)

    def model_versions(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Registered models (of ``kind``, or all), oldest first."""
        stmt = select(model_versions).order_by(model_versions.c.id)
        if kind is not None:
            stmt = stmt.where(model_versions.c.kind == kind)
        rows = self._read(lambda conn: conn.execute(stmt).all())
        return [
            {
                "id": r.id,
                "kind": r.kind,
                "version": r.version,
                "path": r.path,
                "config": json.loads(r.config),
                "metrics": json.loads(r.metrics),
                "created_at": r.created_at,
            }
            for r in rows
        ]


def _config_differences(old: dict[str, Any], new: dict[str, Any]) -> Iterable[str]:
    missing = object()
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k, missing), new.get(k, missing)
        if a != b:
            show_a = "unset" if a is missing else json.dumps(a)
            show_b = "unset" if b is missing else json.dumps(b)
            yield f"config {k} {show_a} (requested {show_b})"

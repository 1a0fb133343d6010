"""The ``Store``: circuits, datasets, simulation results, model versions and design campaigns in
SQLite or PostgreSQL.

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
import numbers
import operator
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
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
from circuits.targets import Target
from storage import migrate
from storage.models import (
    campaign_targets,
    campaigns,
    candidates,
    circuits,
    dataset_circuits,
    datasets,
    model_versions,
    refinements,
    simulations,
    topologies,
)

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
_PREDICTED = ("gain_db", "ugbw_hz", "pm_deg", "fom")  # the specs a candidate's prediction may hold
_MEASURED = ("status", "gain_db", "ugbw_hz", "pm_deg", "fom", "pm_ocb_deg", "error")  # a simulation's verdict
_TARGET_STATUSES = ("pending", "done", "failed")
REASON_LIMIT = 2000  # characters of a failed target's reason kept


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
class CandidateRecord:
    """A circuit proposed for a campaign target: who proposed it (``source``: generator, random,
    refine, seed, ...), the spec class it was asked for, what a model predicted, and the candidate it
    was refined from (``parent_id``). ``round`` is the bandit pull or NSGA-II generation."""

    circuit: Circuit
    source: str
    spec_class: tuple[int, ...] | None = None
    predicted: dict[str, float | None] | None = None
    model_version: str | None = None
    parent_id: int | None = None
    round: int = 0


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


def _name(value: Any, what: str, limit: int = 200) -> str:
    """A non-empty name that fits its column, or a StoreError naming ``what``."""
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise StoreError(f"{what} must be a non-empty string of at most {limit} characters, got {value!r}")
    return value


def _integer(value: Any) -> int | None:
    """``value`` as an int if it is an integer (numpy's too) but not a bool, else None."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def _count(value: Any, what: str) -> int:
    """A non-negative integer, or a StoreError naming ``what``."""
    n = _integer(value)
    if n is None or n < 0:
        raise StoreError(f"{what} must be a non-negative integer, got {value!r}")
    return n


def _id(value: Any, what: str) -> int:
    """A row id, or a StoreError naming ``what``."""
    n = _integer(value)
    if n is None:
        raise StoreError(f"{what} must be an integer id, got {value!r}")
    return n


def _number(value: Any, what: str) -> float | None:
    """A float for a nullable Float column (NaN stored as NULL), or a StoreError naming ``what``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise StoreError(f"{what} must be a number or None, got {value!r}")
    return _finite(float(value))


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
        insert_member = self._insert(dataset_circuits).values(
            dataset_id=bindparam("p_dataset"),
            circuit_id=select(circuits.c.id).where(circuits.c.key == bindparam("p_ckey")).scalar_subquery(),
        )

        def work(conn: Connection) -> None:
            did = self._dataset_id(conn, dataset_id)
            self._add_circuits(conn, idents, chunk_size)
            for chunk in _chunks(members, chunk_size):
                conn.execute(insert_member, [{**m, "p_dataset": did} for m in chunk])
            self._check_members(conn, did, members)

        self._write(work)

    def _add_circuits(self, conn: Connection, idents: Sequence[_Identity], chunk_size: int = CHUNK_SIZE) -> None:
        """Insert the circuits and their topologies, skipping those already stored. Rows go in a fixed
        global order (topologies, then circuits, each sorted by key) so concurrent writers never deadlock."""
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
        insert_circuit = self._insert(circuits).values(
            key=bindparam("p_key"),
            topology_id=select(topologies.c.id).where(topologies.c.key == bindparam("p_tkey")).scalar_subquery(),
        )
        for chunk in _chunks([topo_rows[k] for k in sorted(topo_rows)], chunk_size):
            conn.execute(self._insert(topologies), list(chunk))
        for chunk in _chunks([circ_rows[k] for k in sorted(circ_rows)], chunk_size):
            conn.execute(insert_circuit, list(chunk))

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
                *(sim.c[f] for f in _MEASURED),
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
                    **{f: getattr(r, f) for f in _MEASURED},
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

    # --- campaigns ------------------------------------------------------------------------------
    #
    # A campaign runner may be killed at any point and re-run: every write below is idempotent
    # (unique constraints + ON CONFLICT DO NOTHING, then a read-back that refuses contradictions),
    # so re-running the same steps finds the rows already there and adds no duplicates.

    def ensure_campaign(self, name: str, config: dict[str, Any]) -> int:
        """The id of campaign ``name``, creating it if new. An existing one must have the same config
        (the validated campaign file): re-running a file resumes it, a changed file is refused."""
        _name(name, "a campaign name")
        if not isinstance(config, dict):
            raise StoreError(f"the config of campaign {name!r} must be a JSON object, got {type(config).__name__}")
        config_json = _json(config, f"the config of campaign {name!r}")

        def work(conn: Connection) -> int:
            conn.execute(self._insert(campaigns), {"name": name, "config": config_json})
            row = conn.execute(select(campaigns.c.id, campaigns.c.config).where(campaigns.c.name == name)).one()
            if row.config != config_json:
                problems = _config_differences(json.loads(row.config), json.loads(config_json))
                raise StoreError(
                    f"campaign {name!r} already exists with different settings: {'; '.join(problems)}"
                    " (choose another name to start a new campaign)"
                )
            return int(row.id)

        return self._write(work)

    def add_campaign_time(self, campaign: int | str, seconds: float) -> None:
        """Add ``seconds`` of running time to a campaign's ``wall_s`` (each run adds its own share)."""
        if not math.isfinite(seconds) or seconds < 0:
            raise StoreError(f"campaign time must be a finite number of seconds >= 0, got {seconds!r}")

        def work(conn: Connection) -> None:
            cid = self._campaign_row(conn, campaign).id
            conn.execute(update(campaigns).where(campaigns.c.id == cid).values(wall_s=campaigns.c.wall_s + seconds))

        self._write(work)

    def _campaign_row(self, conn: Connection, name_or_id: int | str) -> Any:
        if isinstance(name_or_id, str):
            found = conn.execute(select(campaigns).where(campaigns.c.name == name_or_id)).first()
            if found is None:
                raise StoreError(f"no campaign named {name_or_id!r}")
            return found
        cid = _integer(name_or_id)
        if cid is None:
            raise StoreError(f"a campaign is named by a string or an integer id, got {name_or_id!r}")
        found = conn.execute(select(campaigns).where(campaigns.c.id == cid)).first()
        if found is None:
            raise StoreError(f"no campaign with id {name_or_id}")
        return found

    def _target_row(self, conn: Connection, target_id: int) -> Any:
        """The target's row with its campaign's name (``campaign``), or a StoreError naming the id."""
        stmt = (
            select(campaign_targets, campaigns.c.name.label("campaign"))
            .join(campaigns, campaigns.c.id == campaign_targets.c.campaign_id)
            .where(campaign_targets.c.id == _id(target_id, "a campaign target"))
        )
        found = conn.execute(stmt).first()
        if found is None:
            raise StoreError(f"no campaign target with id {target_id}")
        return found

    def _check_candidates(self, conn: Connection, target: Any, wanted: dict[str, int | None]) -> None:
        """Refuse candidate ids (by role, e.g. "winner") that do not exist or belong to another target."""
        ids = {role: _id(cid, f"the {role} candidate") for role, cid in wanted.items() if cid is not None}
        if not ids:
            return
        stmt = select(candidates.c.id, candidates.c.target_id).where(candidates.c.id.in_(ids.values()))
        owners: dict[int, int] = dict(conn.execute(stmt).all())
        for role, cid in ids.items():
            if owners.get(cid) != target.id:
                where = "does not exist" if cid not in owners else f"belongs to target id {owners[cid]}"
                raise StoreError(
                    f"target {target.name!r} of campaign {target.campaign!r}: {role} candidate {cid} {where}"
                )

    def ensure_targets(self, campaign: int | str, targets: Sequence[Target | Mapping[str, Any]]) -> dict[str, int]:
        """Ids by name of the campaign's targets, creating the new ones as pending.

        ``targets`` are in file order (a target's position is its index), each a
        ``circuits.targets.Target`` or a mapping with ``name`` and ``bounds`` (a JSON object such as
        ``{"gain_db": {"min": 60.0, "max": null}}``). A stored target must keep its position and bounds.
        """
        rows: list[dict[str, Any]] = []
        for position, target in enumerate(targets):
            if isinstance(target, Target):
                name: Any = target.name
                bounds: Any = {field: {"min": b.low, "max": b.high} for field, b in target.bounds}
            elif isinstance(target, Mapping):
                name, bounds = target.get("name"), target.get("bounds")
            else:
                raise StoreError(f"target {position + 1} must be a Target or a mapping, got {type(target).__name__}")
            _name(name, f"the name of target {position + 1}")
            if not isinstance(bounds, Mapping) or not bounds:
                raise StoreError(f"target {name!r}: bounds must be a non-empty JSON object, got {bounds!r}")
            if any(r["name"] == name for r in rows):
                raise StoreError(f"target {name!r} appears twice")
            bounds_json = _json(dict(bounds), f"the bounds of target {name!r}")
            rows.append({"name": name, "position": position, "bounds": bounds_json, "status": "pending"})

        def work(conn: Connection) -> dict[str, int]:
            camp = self._campaign_row(conn, campaign)
            if rows:
                conn.execute(self._insert(campaign_targets), [{**r, "campaign_id": camp.id} for r in rows])
            stored = conn.execute(
                select(
                    campaign_targets.c.id,
                    campaign_targets.c.name,
                    campaign_targets.c.position,
                    campaign_targets.c.bounds,
                ).where(campaign_targets.c.campaign_id == camp.id)
            ).all()
            by_name = {r.name: r for r in stored}
            by_position = {r.position: r.name for r in stored}
            for r in rows:
                have = by_name.get(r["name"])
                where = f"campaign {camp.name!r}, target {r['name']!r}"
                if have is None:
                    raise StoreError(
                        f"{where}: position {r['position']} already holds target {by_position[r['position']]!r}"
                        " (the campaign file changed; use a new campaign name)"
                    )
                if have.position != r["position"]:
                    raise StoreError(f"{where}: stored at position {have.position}, not {r['position']}")
                if have.bounds != r["bounds"]:
                    raise StoreError(f"{where}: stored with bounds {have.bounds} (requested {r['bounds']})")
            return {r["name"]: int(by_name[r["name"]].id) for r in rows}

        return self._write(work)

    def _campaign_dicts(self, conn: Connection, campaign_id: int | None = None) -> list[dict[str, Any]]:
        t = campaign_targets.c
        counts_stmt = select(
            t.campaign_id,
            func.count().label("targets"),
            func.count().filter(t.status == "done").label("done"),
            func.count().filter(t.status == "failed").label("failed"),
            func.count().filter(t.met.is_(True)).label("met"),
        ).group_by(t.campaign_id)
        stmt = select(campaigns).order_by(campaigns.c.id)
        if campaign_id is not None:
            counts_stmt = counts_stmt.where(t.campaign_id == campaign_id)
            stmt = stmt.where(campaigns.c.id == campaign_id)
        counts = {r.campaign_id: r for r in conn.execute(counts_stmt)}
        out = []
        for c in conn.execute(stmt):
            n = counts.get(c.id)
            out.append(
                {
                    "id": c.id,
                    "name": c.name,
                    "config": json.loads(c.config),
                    "wall_s": c.wall_s,
                    "created_at": c.created_at,
                    "targets": n.targets if n else 0,
                    "done": n.done if n else 0,
                    "failed": n.failed if n else 0,
                    "met": n.met if n else 0,
                }
            )
        return out

    def campaign(self, name_or_id: int | str) -> dict[str, Any]:
        """One campaign: id, name, config, wall_s, created_at and its counts of targets, done, failed and met."""
        return self._read(lambda conn: self._campaign_dicts(conn, self._campaign_row(conn, name_or_id).id)[0])

    def campaigns(self) -> list[dict[str, Any]]:
        """Every campaign as ``campaign`` gives it, oldest first."""
        return self._read(self._campaign_dicts)

    def _target_dicts(self, conn: Connection, *where: Any) -> list[dict[str, Any]]:
        n_candidates = (
            select(candidates.c.target_id, func.count().label("n")).group_by(candidates.c.target_id).subquery()
        )
        stmt = (
            select(campaign_targets, campaigns.c.name.label("campaign"), n_candidates.c.n)
            .join(campaigns, campaigns.c.id == campaign_targets.c.campaign_id)
            .outerjoin(n_candidates, n_candidates.c.target_id == campaign_targets.c.id)
            .where(*where)
            .order_by(campaign_targets.c.campaign_id, campaign_targets.c.position)
        )
        return [
            {
                "id": r.id,
                "campaign_id": r.campaign_id,
                "campaign": r.campaign,
                "name": r.name,
                "position": r.position,
                "bounds": json.loads(r.bounds),
                "status": r.status,
                "met": r.met,
                "n_simulations": r.n_simulations,
                "winner_candidate_id": r.winner_candidate_id,
                "summary": None if r.summary is None else json.loads(r.summary),
                "reason": r.reason,
                "finished_at": r.finished_at,
                "created_at": r.created_at,
                "candidates": r.n or 0,
            }
            for r in conn.execute(stmt)
        ]

    def campaign_targets(self, campaign: int | str, status: str | None = None) -> list[dict[str, Any]]:
        """The campaign's targets (all, or those with ``status`` pending, done or failed) in file order: id,
        name, position, bounds, status, met, n_simulations, winner_candidate_id, summary, reason,
        finished_at and the number of candidates so far."""
        if status is not None and status not in _TARGET_STATUSES:
            raise StoreError(f"unknown target status {status!r} (known: {', '.join(_TARGET_STATUSES)})")

        def work(conn: Connection) -> list[dict[str, Any]]:
            where = [campaign_targets.c.campaign_id == self._campaign_row(conn, campaign).id]
            if status is not None:
                where.append(campaign_targets.c.status == status)
            return self._target_dicts(conn, *where)

        return self._read(work)

    def unfinished_targets(self, campaign: int | str) -> list[dict[str, Any]]:
        """The targets a resumed run still has to do (pending, and failed ones to retry), in file order."""
        return [t for t in self.campaign_targets(campaign) if t["status"] != "done"]

    def target(self, target_id: int) -> dict[str, Any]:
        """One target, as ``campaign_targets`` lists it (with its campaign's name as ``campaign``)."""

        def work(conn: Connection) -> dict[str, Any]:
            return self._target_dicts(conn, campaign_targets.c.id == self._target_row(conn, target_id).id)[0]

        return self._read(work)

    def add_candidates(self, target_id: int, records: Sequence[CandidateRecord]) -> list[int]:
        """Record circuits proposed for a target (adding the circuits and topologies as needed); return
        the candidate ids in input order. A (circuit, source) the target already has keeps its first
        row, and its id is returned: a resumed run re-proposing it adds nothing. A parent must exist."""
        if not records:
            self._read(lambda conn: self._target_row(conn, target_id))
            return []
        rows = [_candidate_row(i, rec) for i, rec in enumerate(records)]
        idents = [_identify(rec.circuit) for rec in records]
        parents = sorted({row["parent_id"] for row in rows if row["parent_id"] is not None})

        def work(conn: Connection) -> list[int]:
            target = self._target_row(conn, target_id)
            if parents:
                known = set(conn.execute(select(candidates.c.id).where(candidates.c.id.in_(parents))).scalars())
                missing = [p for p in parents if p not in known]
                if missing:
                    raise StoreError(
                        f"target {target.name!r} of campaign {target.campaign!r}: parent candidate(s)"
                        f" {', '.join(map(str, missing))} do not exist; nothing recorded"
                    )
            self._add_circuits(conn, idents)
            keys = sorted({ident.key for ident in idents})
            circuit_ids: dict[str, int] = {}
            for chunk in _chunks(keys, LOOKUP_CHUNK):
                circuit_ids.update(
                    conn.execute(select(circuits.c.key, circuits.c.id).where(circuits.c.key.in_(chunk))).all()
                )
            unique: dict[tuple[int, str], dict[str, Any]] = {}
            for row, ident in zip(rows, idents):
                unique.setdefault((circuit_ids[ident.key], row["source"]), row)
            # In input order, so ids (and listings) follow the order proposed. Unlike circuits, writers for
            # different targets never share a candidate row; two on one target that meet head-on deadlock
            # at worst, and ``_write`` retries that.
            ordered = [{**row, "target_id": target.id, "circuit_id": k[0]} for k, row in unique.items()]
            for chunk in _chunks(ordered, CHUNK_SIZE):
                conn.execute(self._insert(candidates), list(chunk))
            found: dict[tuple[int, str], int] = {}
            cids = sorted({k[0] for k in unique})
            for chunk in _chunks(cids, LOOKUP_CHUNK):
                stmt = select(candidates.c.circuit_id, candidates.c.source, candidates.c.id).where(
                    candidates.c.target_id == target.id, candidates.c.circuit_id.in_(chunk)
                )
                found.update({(c, s): i for c, s, i in conn.execute(stmt)})
            return [found[(circuit_ids[ident.key], row["source"])] for row, ident in zip(rows, idents)]

        return self._write(work)

    def candidates(self, target_id: int, simulator: str = "ngspice") -> list[dict[str, Any]]:
        """The target's candidates in the order recorded, each with its circuit (``key``, ``circuit``),
        source, spec_class, predicted specs (or None), model_version, parent_id, round and, from the
        simulations table, ``simulator``'s status and measured specs (None when not simulated yet)."""
        sim = simulations.alias("s")
        cand = candidates.c
        stmt = (
            select(
                candidates,
                circuits.c.key,
                circuits.c.circuit_json,
                *(sim.c[f] for f in _MEASURED),
            )
            .join(circuits, circuits.c.id == cand.circuit_id)
            .outerjoin(sim, and_(sim.c.circuit_id == cand.circuit_id, sim.c.simulator == simulator))
            .order_by(cand.id)
        )

        def work(conn: Connection) -> list[Any]:
            tid = self._target_row(conn, target_id).id
            return list(conn.execute(stmt.where(cand.target_id == tid)))

        out = []
        for r in self._read(work):
            predicted = {f: getattr(r, f"predicted_{f}") for f in _PREDICTED}
            out.append(
                {
                    "id": r.id,
                    "target_id": r.target_id,
                    "key": r.key,
                    "circuit": json.loads(r.circuit_json),
                    "source": r.source,
                    "spec_class": None if r.spec_class is None else json.loads(r.spec_class),
                    "predicted": {f: v for f, v in predicted.items() if v is not None} or None,
                    "model_version": r.model_version,
                    "parent_id": r.parent_id,
                    "round": r.round,
                    "created_at": r.created_at,
                    **{f: getattr(r, f) for f in _MEASURED},
                }
            )
        return out

    def pending_candidates(self, target_id: int, simulator: str = "ngspice") -> list[tuple[str, Circuit]]:
        """(key, circuit) of the target's candidate circuits not yet simulated by ``simulator``, each once,
        in the order first proposed: what a resumed run must still simulate."""
        done = exists().where(simulations.c.circuit_id == circuits.c.id, simulations.c.simulator == simulator)
        stmt = (
            select(circuits.c.key, circuits.c.circuit_json)
            .join(candidates, candidates.c.circuit_id == circuits.c.id)
            .where(~done)
            .order_by(candidates.c.id)
        )

        def work(conn: Connection) -> list[tuple[str, str]]:
            tid = self._target_row(conn, target_id).id
            return [(k, j) for k, j in conn.execute(stmt.where(candidates.c.target_id == tid))]

        seen: dict[str, Circuit] = {}
        for key, text in self._read(work):
            if key not in seen:
                seen[key] = Circuit.from_json(text)
        return list(seen.items())

    def add_refinement(
        self,
        target_id: int,
        seed_candidate_id: int,
        result_candidate_id: int | None,
        n_evaluations: int,
        fom_before: float | None,
        fom_after: float | None,
        history: Any,
    ) -> int:
        """Record the NSGA-II refinement of one of the target's candidates (the result, if any, is one too)
        and return its id. Recording it again with the same content is a no-op; other content is refused."""
        row = {
            "seed_candidate_id": _id(seed_candidate_id, "the seed candidate"),
            "result_candidate_id": None
            if result_candidate_id is None
            else _id(result_candidate_id, "the result candidate"),
            "n_evaluations": _count(n_evaluations, "n_evaluations"),
            "fom_before": _number(fom_before, "fom_before"),
            "fom_after": _number(fom_after, "fom_after"),
            "history": _json(history, "the refinement history"),
        }

        def work(conn: Connection) -> int:
            target = self._target_row(conn, target_id)
            self._check_candidates(
                conn, target, {"seed": row["seed_candidate_id"], "result": row["result_candidate_id"]}
            )
            conn.execute(self._insert(refinements), {**row, "target_id": target.id})
            have = conn.execute(
                select(refinements).where(
                    refinements.c.target_id == target.id, refinements.c.seed_candidate_id == row["seed_candidate_id"]
                )
            ).one()
            differs = [f for f in row if getattr(have, f) != row[f]]
            if differs:
                raise StoreError(
                    f"target {target.name!r} of campaign {target.campaign!r}: the refinement of candidate"
                    f" {seed_candidate_id} is already recorded with a different {', '.join(differs)}"
                )
            return int(have.id)

        return self._write(work)

    def refinements(self, target_id: int) -> list[dict[str, Any]]:
        """The target's recorded refinements, oldest first (a resumed run skips their seeds)."""

        def work(conn: Connection) -> list[Any]:
            tid = self._target_row(conn, target_id).id
            return list(
                conn.execute(select(refinements).where(refinements.c.target_id == tid).order_by(refinements.c.id))
            )

        return [
            {
                "id": r.id,
                "target_id": r.target_id,
                "seed_candidate_id": r.seed_candidate_id,
                "result_candidate_id": r.result_candidate_id,
                "n_evaluations": r.n_evaluations,
                "fom_before": r.fom_before,
                "fom_after": r.fom_after,
                "history": json.loads(r.history),
                "created_at": r.created_at,
            }
            for r in self._read(work)
        ]

    def finish_target(
        self,
        target_id: int,
        met: bool,
        winner_candidate_id: int | None,
        n_simulations: int,
        summary: dict[str, Any] | None = None,
    ) -> None:
        """Close a target with its verdict: whether it was ``met`` (then by the winner, one of its
        candidates), the simulations spent and a free-form JSON ``summary``. Finishing it again with the
        same verdict is a no-op; a different one is refused, as a finished target is never reopened."""
        if not isinstance(met, bool):
            raise StoreError(f"met must be True or False, got {met!r}")
        values = {
            "met": met,
            "winner_candidate_id": None if winner_candidate_id is None else _id(winner_candidate_id, "the winner"),
            "n_simulations": _count(n_simulations, "n_simulations"),
            "summary": None if summary is None else _json(summary, "the target summary"),
        }

        def work(conn: Connection) -> None:
            target = self._target_row(conn, target_id)
            where = f"target {target.name!r} of campaign {target.campaign!r}"
            if met and values["winner_candidate_id"] is None:
                raise StoreError(f"{where}: a met target needs its winner candidate")
            self._check_candidates(conn, target, {"winner": values["winner_candidate_id"]})
            # The status condition makes the update atomic: of two finishers, one closes the target and
            # the other sees it done and compares.
            closed = conn.execute(
                update(campaign_targets)
                .where(campaign_targets.c.id == target.id, campaign_targets.c.status != "done")
                .values(status="done", reason=None, finished_at=func.now(), **values)
            )
            if closed.rowcount == 1:
                return
            have = self._target_row(conn, target.id)
            differs = [f for f in values if getattr(have, f) != values[f]]
            if differs:
                raise StoreError(
                    f"{where} is already finished with a different {', '.join(differs)};"
                    " a finished target is never reopened"
                )

        self._write(work)

    def fail_target(self, target_id: int, reason: str) -> None:
        """Mark a target failed with ``reason`` (why its search raised; cut to ``REASON_LIMIT``
        characters). A re-run retries it; failing it again keeps the newest reason. A finished target
        is never reopened, so failing one is refused."""
        if not isinstance(reason, str) or not reason.strip():
            raise StoreError(f"a failure reason must be a non-empty string, got {reason!r}")
        text = reason[:REASON_LIMIT]

        def work(conn: Connection) -> None:
            target = self._target_row(conn, target_id)
            failed = conn.execute(
                update(campaign_targets)
                .where(campaign_targets.c.id == target.id, campaign_targets.c.status != "done")
                .values(status="failed", reason=text, finished_at=func.now())
            )
            if failed.rowcount != 1:
                raise StoreError(
                    f"target {target.name!r} of campaign {target.campaign!r} is already finished;"
                    " a finished target is never reopened"
                )

        self._write(work)


def _config_differences(old: dict[str, Any], new: dict[str, Any]) -> Iterable[str]:
    missing = object()
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k, missing), new.get(k, missing)
        if a != b:
            show_a = "unset" if a is missing else json.dumps(a)
            show_b = "unset" if b is missing else json.dumps(b)
            yield f"config {k} {show_a} (requested {show_b})"


def _candidate_row(index: int, rec: CandidateRecord) -> dict[str, Any]:
    """The checked columns of a candidate, but for its target and circuit ids."""
    what = f"candidate {index + 1}"
    if not isinstance(rec, CandidateRecord):
        raise StoreError(f"{what} must be a CandidateRecord, got {type(rec).__name__}")
    if not isinstance(rec.circuit, Circuit):
        raise StoreError(f"{what}: circuit must be a Circuit, got {type(rec.circuit).__name__}")
    spec_class = None
    if rec.spec_class is not None:
        items = [] if isinstance(rec.spec_class, str | bytes) else list(rec.spec_class)
        indices = [_integer(x) for x in items]
        if not indices or any(i is None for i in indices):
            raise StoreError(f"{what}: spec_class must be a non-empty sequence of integers, got {rec.spec_class!r}")
        spec_class = _json(indices, f"the spec class of {what}")
    if rec.predicted is not None and not isinstance(rec.predicted, Mapping):
        raise StoreError(f"{what}: predicted must be a mapping of spec names to numbers, got {rec.predicted!r}")
    predicted = dict(rec.predicted or {})
    unknown = sorted(map(str, set(predicted) - set(_PREDICTED)))
    if unknown:
        raise StoreError(f"{what}: unknown predicted spec(s) {', '.join(unknown)} (known: {', '.join(_PREDICTED)})")
    return {
        "source": _name(rec.source, f"the source of {what}", 32),
        "spec_class": spec_class,
        **{f"predicted_{f}": _number(predicted.get(f), f"{what}: predicted {f}") for f in _PREDICTED},
        "model_version": None if rec.model_version is None else _name(rec.model_version, f"{what}: model_version", 64),
        "parent_id": None if rec.parent_id is None else _id(rec.parent_id, f"{what}: parent_id"),
        "round": _count(rec.round, f"{what}: round"),
    }

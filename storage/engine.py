"""Connecting to the database and running transactions on it.

SQLite runs in WAL mode with a 30 s busy timeout and real transactions (write transactions start
with ``BEGIN IMMEDIATE``), so concurrent writers queue instead of failing. PostgreSQL connections are
pre-pinged and pooled per process (sizes from ``CKTLOOP_DB_POOL_*``, small by default: many processes
on many nodes share one server). A PostgreSQL transaction that deadlocks or fails to serialise is
retried, and so is one that loses its connection (server restarted, connection dropped, server
starting up): whole, with exponential backoff, until ``CKTLOOP_DB_RETRY_S`` seconds have passed.
Retrying is safe because the store's writes are idempotent (upserts, ``ensure_*``, guarded updates);
a writer that is not passes ``idempotent=False`` and is retried only when its transaction certainly
did not commit. Every database error leaves as a one-line ``StoreError`` whose URL has its password
hidden.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import random
import re
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from alembic.util.exc import CommandError
from sqlalchemy import Connection, Engine, Insert, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    DisconnectionError,
    NoSuchModuleError,
    OperationalError,
    SQLAlchemyError,
)

from circuits.errors import CktLoopError
from storage import migrate

T = TypeVar("T")
log = logging.getLogger(__name__)

ENV_VAR = "CKTLOOP_DB"
DEFAULT_URL = "sqlite:///cktloop.db"
BUSY_TIMEOUT_S = 30.0
PG_CONNECT_TIMEOUT_S = 10
_RETRIES = 5  # attempts for a PostgreSQL transaction that deadlocks or fails to serialise
_RETRY_SQLSTATES = {"40P01", "40001"}
# Connection lost or refused: class 08, admin/crash shutdown (57P01, 57P02), starting up (57P03).
_LOST_SQLSTATES = {"57P01", "57P02", "57P03"}
_BACKOFF_FIRST_S, _BACKOFF_MAX_S = 0.1, 5.0
# Per-process PostgreSQL settings: (environment variable, default, minimum).
POOL_SETTINGS: dict[str, tuple[str, float, float]] = {
    "pool_size": ("CKTLOOP_DB_POOL_SIZE", 2, 1),  # connections kept open
    "max_overflow": ("CKTLOOP_DB_MAX_OVERFLOW", 4, 0),  # more, opened when busy and closed after use
    "pool_timeout": ("CKTLOOP_DB_POOL_TIMEOUT_S", 60.0, 1),  # wait for a free connection
    "pool_recycle": ("CKTLOOP_DB_POOL_RECYCLE_S", 1800.0, 1),  # reopen older connections (idle firewalls)
    "retry_s": ("CKTLOOP_DB_RETRY_S", 120.0, 0),  # keep retrying a transaction on a lost connection
}
_SUPPORTED = ("sqlite", "postgresql")
_json_serializer = functools.partial(json.dumps, separators=(",", ":"), allow_nan=False)  # compact, strict


class StoreError(CktLoopError):
    """The database cannot be opened, or a request contradicts what it holds."""


class CommitUnknown(StoreError):
    """The connection was lost while a write that must not run twice was committing: whether it was
    recorded is unknown, so it was not run again."""


def default_url() -> str:
    """The database URL: ``$CKTLOOP_DB`` when set, else ``sqlite:///cktloop.db`` in the working directory."""
    return os.environ.get(ENV_VAR) or DEFAULT_URL


def mask(url: str | URL) -> str:
    """The URL with its password hidden."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


def cause(exc: BaseException) -> str:
    """A one-line description of a database error, without SQLAlchemy's SQL and background link."""
    orig = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(orig).splitlines() if line.strip()]
    text = lines[0] if lines else type(orig).__name__
    text = re.sub(r"^\(\S+\)\s*", "", text)  # "(sqlite3.OperationalError) ..." → "..."
    return text.removeprefix("connection failed: ")


def insert_new(conn: Connection, table: Table) -> Insert:
    """``INSERT ... ON CONFLICT DO NOTHING`` for the connection's backend."""
    return dialect_insert(conn, table).on_conflict_do_nothing()


def dialect_insert(conn: Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    """The connection's backend's ``INSERT`` (both offer ``ON CONFLICT``)."""
    return postgresql.insert(table) if conn.dialect.name == "postgresql" else sqlite.insert(table)


def _sqlite_on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # let SQLAlchemy's BEGIN (below) govern transactions, DDL included
    cur = dbapi_conn.cursor()
    try:
        cur.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        _set_wal(cur)
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.execute("PRAGMA foreign_keys = ON")
    finally:
        cur.close()


def _set_wal(cur: sqlite3.Cursor) -> None:
    """Switch to WAL. On a fresh file opened by several processes at once the switch can meet
    SQLITE_BUSY without SQLite calling its busy handler, so the busy timeout is applied here by hand."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    attempt = 0
    while True:
        try:
            cur.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(backoff_s(attempt) / 10)
            attempt += 1


def _sqlite_on_begin(conn: Connection) -> None:
    # A write transaction takes the write lock up front: a deferred transaction that reads first
    # and then writes fails at once (SQLITE_BUSY_SNAPSHOT) when another writer got in between.
    immediate = conn.get_execution_options().get(migrate.WRITE_OPTION, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def pool_settings() -> dict[str, float]:
    """The PostgreSQL pool and retry settings of this process, from ``POOL_SETTINGS``' environment
    variables (each unset one at its default); a malformed value is a one-line StoreError."""
    out: dict[str, float] = {}
    for key, (var, default, least) in POOL_SETTINGS.items():
        text = os.environ.get(var, "").strip()
        try:
            value = float(text) if text else float(default)
        except ValueError:
            value = float("nan")
        if not value >= least or (isinstance(default, int) and value != int(value)):
            kind = "an integer" if isinstance(default, int) else "a number"
            raise StoreError(f"{var} must be {kind} >= {least:g}, got {text!r}")
        out[key] = int(value) if isinstance(default, int) else value
    return out


def connection_lost(exc: BaseException) -> bool:
    """Whether a PostgreSQL error means the connection was lost or refused (worth a reconnect), not
    that the transaction itself was wrong."""
    if isinstance(exc, DisconnectionError):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate is None:  # raised by the client library: refused, reset, closed unexpectedly
        return isinstance(exc, OperationalError)
    return str(sqlstate).startswith("08") or sqlstate in _LOST_SQLSTATES


def backoff_s(attempt: int) -> float:
    """The pause before retry ``attempt`` (0, 1, ...): doubling from 0.1 s up to 5 s, with jitter so
    many writers do not reconnect in step."""
    return min(_BACKOFF_MAX_S, _BACKOFF_FIRST_S * 2**attempt) * random.uniform(0.5, 1.0)


def _create_engine(url: URL) -> Engine:
    backend = url.get_backend_name()
    if backend not in _SUPPORTED:
        raise StoreError(
            f"cannot open database {mask(url)}: unsupported backend {backend!r} (use sqlite or postgresql)"
        )
    if backend == "sqlite":
        db = url.database or ""
        if db and db != ":memory:" and not db.startswith("file:"):
            parent = Path(db).expanduser().absolute().parent
            if not parent.is_dir():
                raise StoreError(f"cannot open database {mask(url)}: directory {parent} does not exist")
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S}, json_serializer=_json_serializer)
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    connect_args = {} if "connect_timeout" in url.query else {"connect_timeout": PG_CONNECT_TIMEOUT_S}
    pool = {k: v for k, v in pool_settings().items() if k != "retry_s"}
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args, json_serializer=_json_serializer, **pool)


def open_engine(url: str) -> Engine:
    """An engine on ``url``, connected once and migrated to the newest schema; errors → StoreError."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(f"cannot open database {mask(url)}: not a database URL") from None
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
    except (SQLAlchemyError, sqlite3.Error, CommandError, migrate.MigrationError, OSError) as exc:
        if engine is not None:
            engine.dispose()
        text = cause(exc)
        if isinstance(exc, migrate.MigrationError):
            text = f"schema migration failed ({text})"
        elif isinstance(exc, CommandError):
            text = f"schema migration failed ({text}); is the database from a newer CktLoop?"
        elif isinstance(exc, NoSuchModuleError):
            text = f"no database driver for {parsed.drivername!r}"
        raise StoreError(f"cannot open database {mask(parsed)}: {text}") from None
    return engine


class Database:
    """An open engine and the two ways to use it: one write transaction, or one consistent read."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self.retry_s = pool_settings()["retry_s"] if self.dialect == "postgresql" else 0.0
        self.reconnects = 0  # transactions re-run after a lost connection, in this process

    @property
    def url(self) -> str:
        """The database URL, password hidden."""
        return mask(self.engine.url)

    def _write(self, work: Callable[[Connection], T], *, idempotent: bool = True) -> T:
        """Run ``work`` in one write transaction; errors → StoreError.

        PostgreSQL deadlocks and serialisation failures are retried, and so is a lost connection, for
        up to ``retry_s`` seconds. A connection lost during COMMIT leaves it unknown whether the
        transaction landed: an ``idempotent`` work (the default; running it twice equals running it
        once) is retried anyway, any other then raises."""

        def attempt() -> T:
            with self.engine.connect() as conn:
                conn.execution_options(**{migrate.WRITE_OPTION: True})
                trans = conn.begin()
                result = work(conn)
                try:
                    trans.commit()
                except SQLAlchemyError as exc:
                    if not idempotent and connection_lost(exc):
                        raise CommitUnknown(
                            f"database error on {self.url}: the connection was lost while committing"
                            f" ({cause(exc)}); the write may or may not have been recorded"
                        ) from None
                    raise
                return result

        return self._retrying(attempt, write=True)

    def _read(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in one read transaction (a consistent snapshot), retried like a write on a lost
        PostgreSQL connection; errors → StoreError."""

        def attempt() -> T:
            with self.engine.connect() as conn, conn.begin():
                return work(conn)

        return self._retrying(attempt, write=False)

    def _retrying(self, attempt: Callable[[], T], write: bool) -> T:
        deadline = time.monotonic() + self.retry_s
        conflicts = lost = 0
        while True:
            try:
                return attempt()
            except DBAPIError as exc:
                sqlstate = getattr(exc.orig, "sqlstate", None)
                if write and sqlstate in _RETRY_SQLSTATES and conflicts + 1 < _RETRIES:
                    conflicts += 1
                    time.sleep(0.05 * conflicts)
                    continue
                if self.retry_s > 0 and connection_lost(exc) and time.monotonic() < deadline:
                    pause = min(backoff_s(lost), max(0.0, deadline - time.monotonic()))
                    log.warning("lost the connection to %s (%s); retrying in %.1f s", self.url, cause(exc), pause)
                    lost += 1
                    self.reconnects += 1
                    time.sleep(pause)
                    continue
                raise StoreError(f"database error on {self.url}: {cause(exc)}") from None
            except SQLAlchemyError as exc:
                raise StoreError(f"database error on {self.url}: {cause(exc)}") from None

"""Connecting to the database and running transactions on it.

SQLite runs in WAL mode with a 30 s busy timeout and real transactions (write transactions start
with ``BEGIN IMMEDIATE``), so concurrent writers queue instead of failing. PostgreSQL connections are
pre-pinged (a server restart costs a reconnect, not an error) and a transaction that deadlocks or
fails to serialise is retried. Every database error leaves as a one-line ``StoreError`` whose URL
has its password hidden.
"""

from __future__ import annotations

import functools
import json
import os
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
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

from circuits.errors import CktLoopError
from storage import migrate

T = TypeVar("T")

ENV_VAR = "CKTLOOP_DB"
DEFAULT_URL = "sqlite:///cktloop.db"
BUSY_TIMEOUT_S = 30.0
PG_CONNECT_TIMEOUT_S = 10
_RETRIES = 5  # attempts for a PostgreSQL transaction that deadlocks or fails to serialise
_RETRY_SQLSTATES = {"40P01", "40001"}
_SUPPORTED = ("sqlite", "postgresql")
_json_serializer = functools.partial(json.dumps, separators=(",", ":"), allow_nan=False)  # compact, strict


class StoreError(CktLoopError):
    """The database cannot be opened, or a request contradicts what it holds."""


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
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    return dialect_insert(table).on_conflict_do_nothing()


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
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args, json_serializer=_json_serializer)


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

    @property
    def url(self) -> str:
        """The database URL, password hidden."""
        return mask(self.engine.url)

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
                raise StoreError(f"database error on {self.url}: {cause(exc)}") from None
            except SQLAlchemyError as exc:
                raise StoreError(f"database error on {self.url}: {cause(exc)}") from None
        raise AssertionError("unreachable")

    def _read(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in one read transaction (a consistent snapshot); errors → StoreError."""
        try:
            with self.engine.connect() as conn, conn.begin():
                return work(conn)
        except SQLAlchemyError as exc:
            raise StoreError(f"database error on {self.url}: {cause(exc)}") from None

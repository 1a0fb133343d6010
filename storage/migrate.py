"""Alembic migrations, run from code: no alembic.ini, no working-directory assumptions.

``upgrade(engine)`` brings a database to the newest schema. It runs inside one transaction that
first takes a migration lock (PostgreSQL: an advisory lock; SQLite: ``BEGIN IMMEDIATE``), so
several processes opening a fresh database at once migrate it exactly once.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# pg_advisory_xact_lock key for schema migrations ("CKTL" in ASCII).
_PG_MIGRATION_LOCK = 0x434B544C
# Execution option that makes SQLite begin with BEGIN IMMEDIATE (see storage.engine).
WRITE_OPTION = "cktloop_write"


class MigrationError(RuntimeError):
    """A migration would leave the database inconsistent; it was rolled back."""


def alembic_config(url: str | None = None, connection: Connection | None = None) -> Config:
    """An Alembic config for CktLoop's migrations, targeting ``url`` or an open ``connection``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The newest schema revision this code knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at (None for an empty database)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database to ``revision`` in one locked transaction; a no-op when already there.

    On SQLite, batch migrations rebuild tables (copy, drop, rename) that other tables refer to, so
    foreign keys are not enforced while they run (SQLite switches that only outside a transaction);
    instead, when a migration ran, every reference is checked before the transaction commits.
    """
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        raw = conn.connection.dbapi_connection
        assert raw is not None
        enforced = sqlite and raw.execute("PRAGMA foreign_keys").fetchone()[0]
        if enforced:
            raw.execute("PRAGMA foreign_keys = OFF")
        try:
            conn.execution_options(**{WRITE_OPTION: True})
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})")
                before = MigrationContext.configure(conn).get_current_revision()
                command.upgrade(alembic_config(connection=conn), revision)
                if sqlite and MigrationContext.configure(conn).get_current_revision() != before:
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").first()
                    if broken is not None:
                        raise MigrationError(f"the migration left table {broken[0]} with a dangling reference")
        finally:
            if enforced:
                raw.execute("PRAGMA foreign_keys = ON")

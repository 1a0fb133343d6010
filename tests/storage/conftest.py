"""Fixtures for the storage tests: a fresh store on SQLite (a temporary file) and on PostgreSQL.

Each PostgreSQL test gets its own schema (``search_path`` set through the URL), dropped afterwards,
so parallel runs against one server cannot collide. Without a reachable server the PostgreSQL cases
skip, or fail under ``--require-postgres`` (declared in tests/conftest.py).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url

from storage import Store
from storage.testing import LocalPostgres

PG_URL = os.environ.get("CKTLOOP_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def pg_admin(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """An engine on the test server's default schema, used to create and drop per-test schemas."""
    engine = create_engine(PG_URL, connect_args={"connect_timeout": 5})
    try:
        with engine.connect():
            pass
    except Exception as exc:
        engine.dispose()
        reason = f"PostgreSQL at {make_url(PG_URL).render_as_string()} is unreachable: {str(exc).splitlines()[0]}"
        if request.config.getoption("--require-postgres", default=False):
            pytest.fail(f"{reason} (and --require-postgres was given)")
        pytest.skip(reason)
    yield engine
    engine.dispose()


def new_pg_schema(pg_admin: Engine) -> tuple[str, str]:
    """Create an empty schema; return (its name, a URL whose connections use it)."""
    schema = f"cktloop_test_{uuid.uuid4().hex[:12]}"
    with pg_admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    return schema, url.render_as_string(hide_password=False)


def drop_pg_schema(pg_admin: Engine, schema: str) -> None:
    with pg_admin.begin() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cktloop.db'}"


@pytest.fixture
def postgresql_url(pg_admin: Engine) -> Iterator[str]:
    schema, url = new_pg_schema(pg_admin)
    yield url
    drop_pg_schema(pg_admin, schema)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """The URL of an empty database, once per backend."""
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store.open(db_url)
    yield s
    s.close()


@pytest.fixture
def local_pg(request: pytest.FixtureRequest) -> Iterator[LocalPostgres]:
    """A PostgreSQL server of the test's own (a temporary folder, a free port), started; stopped and
    removed afterwards. Skips without the server binaries, or fails under ``--require-postgres``."""
    try:
        server = LocalPostgres()
    except FileNotFoundError as exc:
        reason = f"cannot start a PostgreSQL server of the test's own: {exc}"
        if request.config.getoption("--require-postgres", default=False):
            pytest.fail(f"{reason} (and --require-postgres was given)")
        pytest.skip(reason)
    try:
        server.start()
        yield server
    finally:
        server.close()

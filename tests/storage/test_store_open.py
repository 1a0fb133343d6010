"""Opening a store: migrations, SQLite settings, and one-line errors for databases that cannot be used."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from storage import Store, StoreError, current_revision, default_url, head_revision
from storage.models import Base


def test_migrated_schema_matches_the_models(store: Store) -> None:
    with store.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        tables = set(inspect(conn).get_table_names())
    assert diffs == []
    assert tables == {*Base.metadata.tables, "alembic_version"}
    assert current_revision(store.engine) == head_revision() == "0011"


def test_upgrading_from_the_first_schema_keeps_results(db_url: str) -> None:
    from sqlalchemy import create_engine, text

    from storage import upgrade

    engine = create_engine(db_url)
    upgrade(engine, "0001")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO datasets (name, seed, n, config) VALUES ('old', 1, 5, '{}')"))
    engine.dispose()
    with Store.open(db_url) as store:
        assert current_revision(store.engine) == head_revision()
        assert [d.name for d in store.datasets()] == ["old"]
        columns = {c["name"] for c in inspect(store.engine).get_columns("simulations")}
        assert "pm_ocb_deg" in columns


def test_reopening_a_migrated_database_keeps_its_data(db_url: str) -> None:
    with Store.open(db_url) as store:
        store.ensure_dataset("d", 1, 10, {})
    with Store.open(db_url) as store:
        assert [d.name for d in store.datasets()] == ["d"]
        assert current_revision(store.engine) == head_revision()


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(sqlite_url: str) -> None:
    with Store.open(sqlite_url) as store, store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def one_line_error(url: str) -> str:
    with pytest.raises(StoreError) as err:
        Store.open(url)
    message = str(err.value)
    assert "\n" not in message and message.startswith("cannot open database "), message
    return message


def test_unreachable_server_is_one_line_naming_the_url_without_its_password() -> None:
    message = one_line_error("postgresql+psycopg://cktloop:s3cret@127.0.0.1:1/nowhere")
    assert "postgresql+psycopg://cktloop:***@127.0.0.1:1/nowhere" in message
    assert "s3cret" not in message
    assert "refused" in message.lower()


def test_missing_directory_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such"
    message = one_line_error(f"sqlite:///{missing / 'x.db'}")
    assert message.endswith(f"directory {missing} does not exist")
    assert not missing.exists()


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are not the tables you are looking for\n" * 100)
    assert "file is not a database" in one_line_error(f"sqlite:///{path}")


@pytest.mark.parametrize(
    ("url", "cause"),
    [
        ("not a url", "not a database URL"),
        ("mysql://u:pw@localhost/db", "unsupported backend 'mysql'"),
        ("postgresql+nosuchdriver://localhost/db", "no database driver"),
    ],
)
def test_bad_urls(url: str, cause: str) -> None:
    message = one_line_error(url)
    assert cause in message
    assert "pw@" not in message


def test_a_database_from_a_newer_version_is_refused(sqlite_url: str) -> None:
    with Store.open(sqlite_url) as store, store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    assert "schema migration failed" in one_line_error(sqlite_url)


def test_default_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CKTLOOP_DB", raising=False)
    assert default_url() == "sqlite:///cktloop.db"
    monkeypatch.setenv("CKTLOOP_DB", "postgresql+psycopg://db.example/cktloop")
    assert default_url() == "postgresql+psycopg://db.example/cktloop"

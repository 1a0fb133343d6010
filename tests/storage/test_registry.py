"""The model registry keeps each version's lineage (parent version, fingerprint of its training rows);
a store from before the lineage columns (0007) upgrades with its models and downgrades again."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, inspect, text

from storage import Store, StoreError, upgrade


def test_registered_models_keep_parent_and_fingerprint(store: Store) -> None:
    store.register_model("surrogate", "v1", "/m/v1.pt", {}, {"mae": 0.2})
    rid = store.register_model(
        "surrogate", "v2", "/m/v2.pt", {}, {"mae": 0.1}, parent_version="v1", data_fingerprint="120:abcd"
    )
    again = store.register_model("surrogate", "v2", "/m/v2.pt", {}, {"mae": 0.1}, "v1", "120:abcd")
    assert again == rid
    got = store.model_version("surrogate", "v2")
    assert (got.parent_version, got.data_fingerprint, got.metrics) == ("v1", "120:abcd", {"mae": 0.1})
    assert store.model_version("surrogate", "v1").parent_version is None
    with pytest.raises(StoreError, match="different data_fingerprint"):
        store.register_model("surrogate", "v2", "/m/v2.pt", {}, {"mae": 0.1}, "v1", "121:abcd")
    with pytest.raises(StoreError, match="no surrogate model version 'v9'"):
        store.model_version("surrogate", "v9")


def test_a_0007_store_gains_lineage_columns_and_loses_them_on_downgrade(db_url: str) -> None:
    from alembic import command

    from storage.migrate import alembic_config

    engine = create_engine(db_url)
    upgrade(engine, "0007")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO model_versions (kind, version, path, config, metrics)"
                " VALUES ('surrogate', 'old', '/m.pt', '{}', '{\"acc\": 0.5}')"
            )
        )
    engine.dispose()
    with Store.open(db_url) as store:  # 0007 -> head
        old = store.model_version("surrogate", "old")
        assert (old.metrics, old.parent_version, old.data_fingerprint) == ({"acc": 0.5}, None, None)
        store.register_model("surrogate", "new", "/n.pt", {}, {}, parent_version="old", data_fingerprint="3:ab")
    engine = create_engine(db_url)
    with engine.begin() as conn:
        command.downgrade(alembic_config(connection=conn), "0007")
    columns = {c["name"] for c in inspect(engine).get_columns("model_versions")}
    assert "parent_version" not in columns and "data_fingerprint" not in columns
    with engine.connect() as conn:
        assert sorted(conn.execute(text("SELECT version FROM model_versions")).scalars()) == ["new", "old"]
    engine.dispose()

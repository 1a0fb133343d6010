"""Promotions in the store: the newest promotion of a kind is the promoted version; recording the same one
again (a resumed loop) adds no row; an unregistered version or a second version in the same slot is refused;
a store from before promotions (0009) upgrades with its rows and downgrades again. Each candidate keeps the
surrogate version that ranked it beside the generator version that proposed it."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import create_engine, inspect, text

from storage import CandidateRecord, Store, StoreError, upgrade
from storage.testing import SAME_ROW, duplicate_rows, samples

BOUNDS = {"gain_db": {"min": 60.0, "max": None}}


def test_the_newest_promotion_of_a_kind_is_the_promoted_version(store: Store) -> None:
    assert store.promoted("surrogate") is None and store.promotions() == []
    for version in ("s1", "s2"):
        store.register_model("surrogate", version, f"/m/{version}.pt", {}, {})
    store.register_model("generator", "g1", "/m/g1.pt", {}, {})
    first = store.promote("surrogate", "s1", "loop a", 1, {"fresh_mae_ratio": 0.8})
    store.promote("generator", "g1", "loop a", 1)
    store.promote("surrogate", "s2", "loop a", 2, {"fresh_mae_ratio": 0.9})
    assert (first.kind, first.version, first.promoted_by, first.round, first.path) == (
        "surrogate",
        "s1",
        "loop a",
        1,
        "/m/s1.pt",
    )
    assert first.gate == {"fresh_mae_ratio": 0.8}
    now = store.promoted("surrogate")
    assert now is not None and (now.version, now.round, now.path) == ("s2", 2, "/m/s2.pt")
    assert store.promoted("generator").version == "g1"  # type: ignore[union-attr]
    # a later round may promote an older version back: the newest promotion wins
    store.promote("surrogate", "s1", "loop b", 1)
    assert store.promoted("surrogate").version == "s1"  # type: ignore[union-attr]
    assert [p.version for p in store.promotions("surrogate")] == ["s1", "s2", "s1"]
    assert len(store.promotions()) == 4


def test_a_promotion_recorded_again_adds_nothing_and_a_conflict_is_refused(store: Store) -> None:
    store.register_model("surrogate", "s1", "/m/s1.pt", {}, {})
    store.register_model("surrogate", "s2", "/m/s2.pt", {}, {})
    one = store.promote("surrogate", "s1", "loop a", 3, {"x": 1})
    assert store.promote("surrogate", "s1", "loop a", 3, {"x": 1}) == one
    assert len(store.promotions()) == 1
    assert duplicate_rows(store.engine) == dict.fromkeys(SAME_ROW, 0)
    with pytest.raises(StoreError, match="loop a round 3 already promoted surrogate version 's1', not 's2'"):
        store.promote("surrogate", "s2", "loop a", 3)
    with pytest.raises(StoreError, match="cannot promote surrogate model version 'nope': it is not registered"):
        store.promote("surrogate", "nope", "loop a", 4)
    with pytest.raises(StoreError, match="cannot promote generator model version 's1'"):
        store.promote("generator", "s1", "loop a", 4)  # registered, but as a surrogate
    with pytest.raises(StoreError, match="round must be a non-negative integer"):
        store.promote("surrogate", "s1", "loop a", -1)
    assert len(store.promotions()) == 1


def test_candidates_record_the_generator_and_the_surrogate_versions(store: Store) -> None:
    a, b, c = (s.circuit for s in samples(3, seed=5))
    store.ensure_campaign("c", {})
    tid = store.ensure_targets("c", [{"name": "t", "bounds": BOUNDS}])["t"]
    store.add_candidates(
        tid,
        [
            CandidateRecord(a, "generator", (1, 2, 3), {"fom": 1.0}, "gen-1", surrogate_version="sur-7"),
            CandidateRecord(b, "random", predicted={"fom": 2.0}, surrogate_version="sur-7"),
            CandidateRecord(c, "random"),
        ],
    )
    got = store.candidates(tid)
    assert [x.versions for x in got] == [
        {"generator": "gen-1", "surrogate": "sur-7"},
        {"generator": None, "surrogate": "sur-7"},
        {"generator": None, "surrogate": None},
    ]
    with pytest.raises(StoreError, match="candidate 1: surrogate_version must be a non-empty string"):
        store.add_candidates(tid, [CandidateRecord(a, "seed", surrogate_version="")])


def test_a_0009_store_gains_promotions_and_loses_them_on_downgrade(db_url: str) -> None:
    from alembic import command

    from storage.migrate import alembic_config

    engine = create_engine(db_url)
    upgrade(engine, "0009")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO model_versions (kind, version, path, config, metrics)"
                " VALUES ('surrogate', 'old', '/m.pt', '{}', '{}')"
            )
        )
        conn.execute(text("INSERT INTO campaigns (name, config) VALUES ('c', '{}')"))
        conn.execute(
            text(
                "INSERT INTO campaign_targets (campaign_id, name, position, bounds, status)"
                " VALUES (1, 't', 0, :b, 'pending')"
            ),
            {"b": json.dumps(BOUNDS)},
        )
    engine.dispose()
    circuit = samples(1, seed=9)[0].circuit
    with Store.open(db_url) as store:  # 0009 -> head
        assert store.promoted("surrogate") is None
        store.promote("surrogate", "old", "loop x", 1)
        (tid,) = store.ensure_targets("c", [{"name": "t", "bounds": BOUNDS}]).values()
        store.add_candidates(tid, [CandidateRecord(circuit, "generator", model_version="g", surrogate_version="s")])
    engine = create_engine(db_url)
    with engine.begin() as conn:
        command.downgrade(alembic_config(connection=conn), "0009")
    assert "promotions" not in inspect(engine).get_table_names()
    assert "surrogate_version" not in {c["name"] for c in inspect(engine).get_columns("candidates")}
    with engine.connect() as conn:
        assert list(conn.execute(text("SELECT model_version FROM candidates")).scalars()) == ["g"]
    engine.dispose()


def test_promotions_by_hand_and_rollbacks_keep_the_history(store: Store) -> None:
    for version in ("s1", "s2", "s3"):
        store.register_model("surrogate", version, f"/m/{version}.pt", {}, {})
    with pytest.raises(StoreError, match=r"no surrogate version is promoted .*nothing to roll back"):
        store.rollback("surrogate")
    store.promote("surrogate", "s1", "loop a", 1)
    two = store.promote_by_hand("surrogate", "s2", why="s1 drifts on PM")
    assert two is not None and (two.version, two.promoted_by, two.round, two.gate) == (
        "s2",
        "hand",
        1,
        {"why": "s1 drifts on PM"},
    )
    assert store.promote_by_hand("surrogate", "s2") is None  # the current one again: nothing added
    three = store.promote_by_hand("surrogate", "s3")
    assert three is not None and (three.round, three.gate) == (2, None)
    with pytest.raises(StoreError, match="cannot promote surrogate model version 'nope': it is not registered"):
        store.promote_by_hand("surrogate", "nope")
    back = store.rollback("surrogate")
    assert (back.version, back.promoted_by, back.round, back.gate) == ("s2", "rollback", 1, {"rolled_back": "s3"})
    assert store.promoted("surrogate").version == "s2"  # type: ignore[union-attr]
    assert store.rollback("surrogate").version == "s1"  # twice: two promotions back, not s3 again
    shipped = store.rollback("surrogate")
    assert (shipped.version, shipped.promoted_by, shipped.gate) == ("s1", "rollback to shipped", {"rolled_back": "s1"})
    assert store.promoted("surrogate") is None
    with pytest.raises(StoreError, match="nothing to roll back"):
        store.rollback("surrogate")
    again = store.promote_by_hand("surrogate", "s3")
    assert again is not None and again.round == 3 and store.promoted("surrogate").version == "s3"  # type: ignore[union-attr]
    assert [(p.version, p.promoted_by, p.round) for p in store.promotions("surrogate")] == [
        ("s1", "loop a", 1),
        ("s2", "hand", 1),
        ("s3", "hand", 2),
        ("s2", "rollback", 1),
        ("s1", "rollback", 2),
        ("s1", "rollback to shipped", 1),
        ("s3", "hand", 3),
    ]
    assert duplicate_rows(store.engine) == dict.fromkeys(SAME_ROW, 0)

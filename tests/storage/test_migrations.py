"""A store written by the schema before JSON columns and failed targets (revision 0004) upgrades in
place on both backends: every row reads back equal, and the new target status works on it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect, text

from circuits import Circuit, Performance, SimStatus
from storage import Store, StoreError, current_revision, head_revision, upgrade
from storage.testing import samples

CONFIG = {"family": {"p_slot": 0.6}, "test_fraction": 0.2, "note": "ünïcode"}
BOUNDS = {"gain_db": {"min": 60.0, "max": None}, "pm_deg": {"min": 45.0, "max": 90.0}}
SUMMARY = {"history": [[10, 1.25], [20, None]], "class_mode": "inside"}
PERF = Performance(SimStatus.OK, gain_db=61.234567890123, ugbw_hz=123456789.125, pm_deg=-12.5)


def _fill_at_0004(url: str, circuit: Circuit) -> None:
    """Rows as the 0004 code wrote them: JSON as compact text."""
    engine = create_engine(url)
    upgrade(engine, "0004")
    c = circuit.canonical()
    structure = {"types": [n.type for n in c.nodes], "pos": [n.pos for n in c.nodes], "edges": c.to_dict()["edges"]}

    def dump(value: Any) -> str:
        return json.dumps(value, sort_keys=True, separators=(",", ":"))

    statements: list[tuple[str, dict[str, Any]]] = [
        (
            "INSERT INTO topologies (key, n_stages, n_nodes, structure) VALUES (:k, :s, :n, :j)",
            {"k": circuit.topology_key, "s": circuit.n_stages, "n": len(c.nodes), "j": dump(structure)},
        ),
        (
            "INSERT INTO circuits (key, topology_id, grid, circuit_json) VALUES (:k, 1, :g, :j)",
            {"k": circuit.key, "g": circuit.grid, "j": circuit.to_json()},
        ),
        ("INSERT INTO datasets (name, seed, n, config) VALUES ('old', 1, 1, :j)", {"j": dump(CONFIG)}),
        (
            "INSERT INTO dataset_circuits (dataset_id, circuit_id, position, topology_number, sizing, split)"
            " VALUES (1, 1, 0, 3, 4, 'train')",
            {},
        ),
        (
            "INSERT INTO simulations (circuit_id, simulator, simulator_version, status, gain_db, ugbw_hz, pm_deg, fom)"
            " VALUES (1, 'ngspice', '43', 'ok', :g, :u, :p, :f)",
            {"g": PERF.gain_db, "u": PERF.ugbw_hz, "p": PERF.pm_deg, "f": PERF.fom},
        ),
        (
            "INSERT INTO model_versions (kind, version, path, config, metrics)"
            " VALUES ('surrogate', 'v1', '/m.pt', :c, :m)",
            {"c": dump({"layers": 3}), "m": dump({"acc": 0.5})},
        ),
        ("INSERT INTO campaigns (name, config, wall_s) VALUES ('c', :j, 2.5)", {"j": dump(CONFIG)}),
        (
            "INSERT INTO campaign_targets (campaign_id, name, position, bounds, status)"
            " VALUES (1, 'a', 0, :b, 'pending')",
            {"b": dump(BOUNDS)},
        ),
        (
            "INSERT INTO campaign_targets (campaign_id, name, position, bounds, status)"
            " VALUES (1, 'b', 1, :b, 'pending')",
            {"b": dump(BOUNDS)},
        ),
        (
            "INSERT INTO candidates (target_id, circuit_id, source, spec_class, predicted_fom, round)"
            " VALUES (1, 1, 'generator', '[2,0,1]', 1.5, 3)",
            {},
        ),
        (
            "INSERT INTO refinements (target_id, seed_candidate_id, n_evaluations, fom_before, history)"
            " VALUES (1, 1, 40, 1.5, '[1.5,2.0]')",
            {},
        ),
        (
            "UPDATE campaign_targets SET status = 'done', met = true, n_simulations = 41, winner_candidate_id = 1,"
            " summary = :s WHERE id = 1",
            {"s": dump(SUMMARY)},
        ),
    ]
    with engine.begin() as conn:
        for sql, params in statements:
            conn.execute(text(sql), params)
    engine.dispose()


def test_a_0004_store_upgrades_with_its_rows_equal(db_url: str) -> None:
    circuit = samples(1)[0].circuit
    _fill_at_0004(db_url, circuit)
    with Store.open(db_url) as store:
        assert current_revision(store.engine) == head_revision()
        columns = {c["name"] for c in inspect(store.engine).get_columns("circuits")}
        assert "circuit" in columns and "circuit_json" not in columns

        (info,) = store.datasets()
        assert (info.name, info.config, info.members, info.simulated) == ("old", CONFIG, 1, {"ngspice": 1})
        (entry,) = store.dataset_rows("old")
        assert Circuit.from_dict(entry.circuit) == circuit.canonical()
        assert (entry.topology, entry.topology_number, entry.sizing, entry.split) == (
            circuit.topology_key,
            3,
            4,
            "train",
        )
        measured = entry.measured
        assert (measured.status, measured.gain_db, measured.ugbw_hz, measured.pm_deg, measured.fom) == (
            "ok",
            PERF.gain_db,
            PERF.ugbw_hz,
            PERF.pm_deg,
            PERF.fom,
        )
        (model,) = store.model_versions()
        assert (model.config, model.metrics) == ({"layers": 3}, {"acc": 0.5})

        camp = store.campaign("c")
        assert (camp.config, camp.wall_s, camp.targets, camp.done, camp.failed, camp.met) == (CONFIG, 2.5, 2, 1, 0, 1)
        done, pending = store.campaign_targets("c")
        assert (done.bounds, done.summary, done.status, done.met, done.reason) == (BOUNDS, SUMMARY, "done", True, None)
        assert (pending.bounds, pending.summary, pending.status) == (BOUNDS, None, "pending")
        (cand,) = store.candidates(done.id)
        assert (cand.key, cand.spec_class, cand.predicted, cand.round) == (circuit.key, [2, 0, 1], {"fom": 1.5}, 3)
        assert cand.measured.fom == PERF.fom and Circuit.from_dict(cand.circuit).key == circuit.key
        (ref,) = store.refinements(done.id)
        assert (ref.seed_candidate_id, ref.n_evaluations, ref.fom_before, ref.history) == (cand.id, 40, 1.5, [1.5, 2.0])

        # The upgraded store takes the new writes: a failed target, and a config compared as JSON.
        store.fail_target(pending.id, "RuntimeError: boom")
        assert store.target(pending.id).status == "failed"
        assert store.ensure_dataset("old", 1, 1, dict(reversed(CONFIG.items()))) == info.id
        assert store.ensure_targets("c", [{"name": "a", "bounds": BOUNDS}]) == {"a": done.id}


def test_an_upgrade_that_would_leave_a_dangling_reference_is_refused(sqlite_url: str) -> None:
    """SQLite rebuilds tables with foreign keys unenforced, so the upgrade checks them before it commits."""
    engine = create_engine(sqlite_url)  # a plain engine: SQLite leaves foreign keys unenforced
    upgrade(engine, "0004")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO campaigns (name, config) VALUES ('c', '{}')"))
        conn.execute(
            text(
                "INSERT INTO campaign_targets (campaign_id, name, position, bounds, status)"
                " VALUES (1, 'a', 0, '{}', 'pending')"
            )
        )
        conn.execute(text("INSERT INTO candidates (target_id, circuit_id, source, round) VALUES (1, 99, 'x', 0)"))
    engine.dispose()
    with pytest.raises(StoreError, match=r"schema migration failed \(the migration left table candidates with a dangl"):
        Store.open(sqlite_url)
    engine = create_engine(sqlite_url)
    assert current_revision(engine) == "0004"  # rolled back whole
    engine.dispose()


def test_a_0006_store_gains_design_jobs_and_gives_them_back_on_downgrade(db_url: str) -> None:
    circuit = samples(1)[0].circuit
    _fill_at_0004(db_url, circuit)
    engine = create_engine(db_url)
    upgrade(engine, "0006")
    engine.dispose()
    with Store.open(db_url) as store:  # 0006 -> 0007
        assert store.jobs() == []
        assert store.campaign("c").targets == 2  # earlier rows untouched
        job = store.add_job({"budget": 1, "targets": []}, name="x")
        assert store.job(job.id).campaign == f"job{job.id}-x"
    from alembic import command

    from storage.migrate import alembic_config

    engine = create_engine(db_url)
    with engine.begin() as conn:
        command.downgrade(alembic_config(connection=conn), "0006")
    assert "design_jobs" not in inspect(engine).get_table_names()
    engine.dispose()
    with Store.open(db_url) as store:
        assert store.jobs() == [] and store.campaign("c").done == 1

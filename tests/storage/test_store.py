"""Store behaviour on both backends: round trips, idempotency, pending work, exports, atomic writes."""

from __future__ import annotations

import math

import pytest
from sqlalchemy import event, func, select

from circuits import Circuit, CktLoopError, Performance, SimStatus
from storage import DatasetRow, Store, StoreError
from storage.models import circuits, dataset_circuits, datasets, simulations, topologies
from storage.testing import fake_performance, rows, samples

CONFIG = {"family": {"p_slot": 0.6, "p_third_stage": 0.75, "sizings_per_topology": 20}, "test_fraction": 0.2}


def counts(store: Store) -> dict[str, int]:
    with store.engine.connect() as conn:
        return {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (topologies, circuits, simulations, datasets, dataset_circuits)
        }


def results_for(keys: list[str]) -> list[tuple[str, Performance, float | None]]:
    return [(k, fake_performance(k), 0.01 * i) for i, k in enumerate(keys)]


def test_round_trip_of_circuits_and_performances(store: Store) -> None:
    data = rows(60)
    did = store.ensure_dataset("d", 1, 60, CONFIG)
    store.add_dataset_circuits(did, data)
    keys = [r.circuit.key for r in data]
    store.add_simulations("ngspice", "43", results_for(keys))

    exported = list(store.dataset_rows("d"))
    assert [e.position for e in exported] == [r.position for r in data]
    for row, e in zip(data, exported, strict=True):
        assert e.id == row.circuit.key
        assert e.topology == row.circuit.topology_key
        assert (e.topology_number, e.sizing, e.split) == (row.topology_number, row.sizing, row.split)
        assert Circuit.from_dict(e.circuit) == row.circuit.canonical()
        assert Circuit.from_dict(e.circuit).key == row.circuit.key
        expected = fake_performance(row.circuit.key).to_dict()
        got = e.measured.to_dict()
        assert got["status"] == expected["status"]
        assert got["error"] == expected["error"]
        for name in ("gain_db", "ugbw_hz", "pm_deg", "fom"):
            if expected[name] is None:
                assert got[name] is None
            else:
                assert math.isclose(got[name], expected[name], rel_tol=1e-12)
    assert {e.measured.status for e in exported} == {"ok", "sim_error", "no_crossing"}  # the data covers every path
    # The same export by id, and for a simulator with no results yet.
    assert [e.id for e in store.dataset_rows(did)] == keys
    for split in ("train", "test"):  # the keys alone, by split, as the rows list them
        assert store.dataset_keys("d", split) == {e.id for e in exported if e.split == split} != set()
    assert store.dataset_keys(did) == set(keys)
    assert {e.measured.status for e in store.dataset_rows("d", simulator="xyce")} == {None}

    with store.engine.connect() as conn:
        sim = conn.execute(select(simulations).where(simulations.c.simulator == "ngspice")).first()
        topo = conn.execute(select(topologies).limit(1)).one()
    assert sim is not None and sim.simulator_version == "43" and sim.seconds is not None
    assert topo.n_stages in (2, 3) and 3 <= topo.n_nodes <= 8 and set(topo.structure) == {"types", "pos", "edges"}


def test_adding_the_same_rows_twice_changes_nothing(store: Store) -> None:
    data = rows(100)
    did = store.ensure_dataset("d", 1, 100, CONFIG)
    store.add_dataset_circuits(did, data[:70])
    store.add_dataset_circuits(did, data[30:])  # overlaps the first batch
    first = counts(store)
    assert first["dataset_circuits"] == first["circuits"] == len(data)
    assert first["topologies"] == len({r.circuit.topology_key for r in data}) == 5

    store.add_dataset_circuits(did, data)
    keys = [r.circuit.key for r in data]
    store.add_simulations("ngspice", "43", results_for(keys))
    store.add_simulations("ngspice", "44", results_for(keys[::-1]))  # a re-run keeps the first result
    again = counts(store)
    assert again == {**first, "simulations": len(data)}
    assert {e.measured.error for e in store.dataset_rows("d")} == {fake_performance(k).error for k in keys}


def test_a_simulation_records_the_node_that_ran_it_when_named(store: Store) -> None:
    data = rows(6)
    store.add_dataset_circuits(store.ensure_dataset("d", 1, 6, CONFIG), data)
    keys = [r.circuit.key for r in data]
    store.add_simulations("ngspice", "43", results_for(keys[:4]), nodes={keys[0]: "a" * 56, keys[1]: "b" * 56})
    store.add_simulations("ngspice", "43", results_for(keys[4:]))
    store.add_simulations("ngspice", "43", results_for(keys[2:3]), nodes={keys[2]: "c"})  # the first result stays
    with store.engine.connect() as conn:
        got = dict(conn.execute(select(circuits.c.key, simulations.c.node).join(circuits)).all())
    assert got == {keys[0]: "a" * 56, keys[1]: "b" * 56, **{k: None for k in keys[2:]}}


def test_circuits_are_shared_between_datasets(store: Store) -> None:
    data = rows(40)
    a = store.ensure_dataset("a", 1, 40, CONFIG)
    b = store.ensure_dataset("b", 1, 20, {**CONFIG, "note": "prefix"})
    store.add_dataset_circuits(a, data)
    store.add_dataset_circuits(b, data[:20])
    assert counts(store)["circuits"] == len(data)
    store.add_simulations("ngspice", "43", results_for([r.circuit.key for r in data[:10]]))
    # A result lands once per circuit and shows in every dataset holding it.
    assert len(store.pending(a, "ngspice")) == len(data) - 10
    assert len(store.pending("b", "ngspice")) == 10
    summary = {d.name: d for d in store.datasets()}
    assert summary["a"].members == len(data) and summary["b"].members == 20
    assert summary["a"].simulated == summary["b"].simulated == {"ngspice": 10}
    assert summary["b"].config["note"] == "prefix" and summary["b"].seed == 1


def test_pending_shrinks_as_simulations_land(store: Store) -> None:
    data = rows(50)
    did = store.ensure_dataset("d", 1, 50, CONFIG)
    store.add_dataset_circuits(did, data[::-1])  # insertion order does not matter: position does
    pending = store.pending(did, "ngspice")
    assert [k for k, _ in pending] == [r.circuit.key for r in data]
    assert all(c == r.circuit.canonical() for (_, c), r in zip(pending, data, strict=True))

    done = [k for k, _ in pending[::3]]
    store.add_simulations("ngspice", "43", results_for(done))
    left = store.pending(did, "ngspice")
    assert [k for k, _ in left] == [k for k, _ in pending if k not in set(done)]
    assert len(store.pending(did, "xyce")) == len(data)  # per simulator

    store.add_simulations("ngspice", "43", results_for([k for k, _ in left]))
    assert store.pending(did, "ngspice") == []
    assert store.datasets()[0].simulated == {"ngspice": len(data)}


def test_failed_write_leaves_the_store_unchanged(store: Store) -> None:
    data = rows(30)
    did = store.ensure_dataset("d", 1, 30, CONFIG)
    store.add_dataset_circuits(did, data[:20])
    before = counts(store)
    batch = [*results_for([r.circuit.key for r in data[:20]]), ("f" * 32, fake_performance("f" * 32), None)]
    with pytest.raises(StoreError, match=r"unknown circuit\(s\) f{32}; nothing recorded"):
        store.add_simulations("ngspice", "43", batch)
    assert counts(store) == before  # the 20 good results were rolled back with the bad one

    with pytest.raises(StoreError, match="no dataset with id 999"):
        store.add_dataset_circuits(999, data[20:])
    assert counts(store) == before

    # A failure after the topologies and circuits went in (here: while adding the memberships)
    # takes them back out.
    def fail_on_membership(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        if statement.startswith("INSERT INTO dataset_circuits"):
            raise RuntimeError("disk on fire")

    event.listen(store.engine, "before_cursor_execute", fail_on_membership)
    try:
        with pytest.raises(RuntimeError, match="disk on fire"):
            store.add_dataset_circuits(did, rows(60)[20:])
    finally:
        event.remove(store.engine, "before_cursor_execute", fail_on_membership)
    assert counts(store) == before
    store.add_dataset_circuits(did, data[20:])
    assert counts(store)["circuits"] == len(data)


def test_ensure_dataset_refuses_other_settings_and_grows(store: Store) -> None:
    did = store.ensure_dataset("d", 1, 100, CONFIG)
    assert store.ensure_dataset("d", 1, 100, dict(reversed(CONFIG.items()))) == did  # key order is irrelevant
    with pytest.raises(StoreError) as err:
        store.ensure_dataset("d", 2, 100, {**CONFIG, "test_fraction": 0.3, "extra": True})
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("dataset 'd' already exists with different settings: seed 1 (requested 2)")
    assert "config extra unset (requested true)" in message and "config test_fraction 0.2 (requested 0.3)" in message

    assert store.ensure_dataset("d", 1, 250, CONFIG) == did
    assert store.datasets()[0].n == 250
    assert store.ensure_dataset("d", 1, 10, CONFIG) == did  # a prefix: n stays
    assert store.datasets()[0].n == 250
    with pytest.raises(StoreError, match="not JSON-serialisable"):
        store.ensure_dataset("e", 1, 10, {"bad": object()})
    assert [d.name for d in store.datasets()] == ["d"]


def test_a_circuit_repeated_in_the_stream_is_held_once_at_its_first_position(store: Store) -> None:
    data = rows(30)
    did = store.ensure_dataset("d", 1, 30, CONFIG)
    repeat = DatasetRow(30, 1, 10, "train", data[3].circuit)
    store.add_dataset_circuits(did, [*data, repeat])
    exported = list(store.dataset_rows(did))
    assert [e.position for e in exported] == [r.position for r in data]
    assert store.datasets()[0].members == len(data)


def test_a_position_holding_another_circuit_is_refused(store: Store) -> None:
    data = rows(30)
    did = store.ensure_dataset("d", 1, 30, CONFIG)
    store.add_dataset_circuits(did, data[:20])
    before = counts(store)
    held = data[12]
    other = samples(40, seed=2)[7].circuit  # what a changed generator might put at that position
    with pytest.raises(StoreError) as err:
        store.add_dataset_circuits(did, [*data[10:], DatasetRow(held.position, 0, 12, "train", other)])
    assert str(err.value) == (
        f"dataset 'd' holds circuit {held.circuit.key} at position {held.position}, not {other.key}: the circuit stream"
        " changed (new generator code?); nothing added, use a new dataset name"
    )
    assert counts(store) == before


def test_unknown_dataset_is_named(store: Store) -> None:
    with pytest.raises(StoreError, match="no dataset named 'nope'"):
        list(store.dataset_rows("nope"))
    with pytest.raises(StoreError, match="no dataset named 'nope'"):
        store.dataset_keys("nope")
    with pytest.raises(StoreError, match="no dataset with id 7"):
        store.pending(7, "ngspice")
    assert store.datasets() == []


def test_simulation_values_keep_their_precision_and_failures(store: Store) -> None:
    circuit = samples(1)[0].circuit
    did = store.ensure_dataset("d", 1, 1, CONFIG)
    store.add_dataset_circuits(did, rows(1))
    perf = Performance(SimStatus.OK, gain_db=61.234567890123, ugbw_hz=123456789.125, pm_deg=-12.5)
    store.add_simulations("ngspice", "43", [(circuit.key, perf, 1.5)])
    store.add_simulations("mna", "1", [(circuit.key, Performance.failed(SimStatus.TIMEOUT, "took > 10 s"), None)])
    (ng,) = store.dataset_rows("d")
    (mna,) = store.dataset_rows("d", simulator="mna")
    assert (ng.measured.gain_db, ng.measured.ugbw_hz, ng.measured.pm_deg, ng.measured.fom) == (
        perf.gain_db,
        perf.ugbw_hz,
        perf.pm_deg,
        perf.fom,
    )
    assert (mna.measured.status, mna.measured.error, mna.measured.fom, mna.measured.gain_db) == (
        "timeout",
        "took > 10 s",
        None,
        None,
    )
    with pytest.raises(StoreError, match="simulator must be a non-empty string"):
        store.add_simulations("", "1", [(circuit.key, perf, None)])


def test_model_versions(store: Store) -> None:
    a = store.register_model("surrogate", "v1", "/models/s1.pt", {"layers": 3}, {"mae": 0.12})
    assert store.register_model("surrogate", "v1", "/models/s1.pt", {"layers": 3}, {"mae": 0.12}) == a
    b = store.register_model("surrogate", "v2", "/models/s2.pt", {"layers": 4}, {"mae": 0.09})
    store.register_model("generator", "v1", "/models/g1.pt", {}, {})
    with pytest.raises(StoreError, match="already registered with a different path, metrics"):
        store.register_model("surrogate", "v1", "/models/other.pt", {"layers": 3}, {"mae": 0.5})
    got = store.model_versions("surrogate")
    assert [(m.id, m.version, m.metrics) for m in got] == [(a, "v1", {"mae": 0.12}), (b, "v2", {"mae": 0.09})]
    assert len(store.model_versions()) == 3


def test_ten_thousand_rows_and_results_in_one_call_each(sqlite_url: str) -> None:
    """Bulk writes go in chunks below SQLite's variable limit (speed: benchmarks/store_insert.py)."""
    data = rows(10_000, seed=3)
    with Store.open(sqlite_url) as store:
        did = store.ensure_dataset("big", 3, 10_000, CONFIG)
        store.add_dataset_circuits(did, data)
        assert counts(store)["dataset_circuits"] == len(data) > 9_900
        with store.engine.connect() as conn:
            results = results_for(list(conn.execute(select(circuits.c.key)).scalars()))
        store.add_simulations("ngspice", "43", results)
        assert counts(store)["simulations"] == len(results)


def test_rows_load_from_an_export_or_a_store(tmp_path) -> None:
    import json

    from storage.rows import load_rows

    url = f"sqlite:///{tmp_path / 'r.db'}"
    with Store.open(url) as store:
        store.ensure_dataset("d", 1, 0, {})
    assert load_rows(url, "d") == []
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps({"id": "a", "status": "ok"}) + "\n\n")
    assert load_rows(path) == [{"id": "a", "status": "ok"}]
    path.write_text("{broken\n")
    with pytest.raises(CktLoopError, match=r"x\.jsonl:1: malformed JSON"):
        load_rows(path)
    with pytest.raises(CktLoopError, match="dataset name is needed"):
        load_rows(url)

"""Dataset builds: every circuit ends with a stored status, and a killed build resumes cleanly."""

import pytest
from sqlalchemy import text

from orchestrator.datasets.build import best_and_worst, build_dataset, split_of
from orchestrator.distributed.simulation_pool import PoolConfig, SimulationPool, ngspice_factory
from storage import DatasetEntry, Measured, Store

pytestmark = [pytest.mark.ray, pytest.mark.ngspice]

CONFIG = PoolConfig(num_workers=2, batch_size=30, circuits_per_deck=10)


def real_pool(config: PoolConfig) -> SimulationPool:
    return SimulationPool(config, ngspice_factory(config.circuits_per_deck))


class Killed(Exception):
    pass


def pool_killed_after(batches: int):
    """A pool whose run dies after ``batches`` batches, like a build killed half-way."""

    def factory(config: PoolConfig) -> SimulationPool:
        pool = real_pool(config)
        run = pool.run

        def dying_run(circuits):
            for k, batch in enumerate(run(circuits)):
                if k == batches:
                    raise Killed
                yield batch

        pool.run = dying_run
        return pool

    return factory


def test_build_stores_every_circuit_with_a_status(ray_session, tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'a.db'}")
    report = build_dataset(store, 200, 3, "d", pool_config=CONFIG, pool_factory=real_pool, progress=False)
    assert report.simulated == 200 and report.already_simulated == 0
    rows = list(store.dataset_rows("d"))
    assert len(rows) == 200 and len({r.id for r in rows}) == 200
    assert all(r.measured.status in {"ok", "no_crossing", "sim_error", "timeout", "crashed"} for r in rows)
    assert sum(report.statuses.values()) == 200
    ok = [r for r in rows if r.measured.status == "ok"]
    assert len(ok) > 150 and all(r.measured.fom is not None for r in ok)
    assert {r.split for r in rows} <= {"train", "test"}
    # a topology never straddles the split
    by_topology: dict[str, set[str]] = {}
    for r in rows:
        by_topology.setdefault(r.topology, set()).add(r.split)
    assert all(len(s) == 1 for s in by_topology.values())
    with store.engine.connect() as conn:  # each result names the Ray node that simulated it: here the one
        nodes = conn.execute(text("SELECT DISTINCT node FROM simulations")).scalars().all()
    assert nodes == [ray_session.get_runtime_context().get_node_id()]


def test_killed_build_resumes_without_duplicates_or_differences(ray_session, tmp_path):
    reference = Store.open(f"sqlite:///{tmp_path / 'ref.db'}")
    build_dataset(reference, 150, 4, "d", pool_config=CONFIG, pool_factory=real_pool, progress=False)

    store = Store.open(f"sqlite:///{tmp_path / 'b.db'}")
    with pytest.raises(Killed):
        build_dataset(store, 150, 4, "d", pool_config=CONFIG, pool_factory=pool_killed_after(3), progress=False)
    done = [r for r in store.dataset_rows("d") if r.measured.status is not None]
    assert 0 < len(done) < 150
    report = build_dataset(store, 150, 4, "d", pool_config=CONFIG, pool_factory=real_pool, progress=False)
    assert report.already_simulated == len(done)
    assert report.simulated == 150 - len(done)
    resumed, expected = list(store.dataset_rows("d")), list(reference.dataset_rows("d"))
    assert [(r.id, r.measured.status, r.measured.gain_db) for r in resumed] == [
        (r.id, r.measured.status, r.measured.gain_db) for r in expected
    ]
    again = build_dataset(store, 150, 4, "d", pool_config=CONFIG, pool_factory=real_pool, progress=False)
    assert again.simulated == 0 and again.already_simulated == 150


def test_split_is_stable_and_near_the_test_fraction():
    splits = [split_of(7, t) for t in range(4000)]
    assert splits == [split_of(7, t) for t in range(4000)]
    assert 0.08 < splits.count("test") / len(splits) < 0.12


def row(sizing: int, status: str = "ok", gain: float = 100.0, ugbw: float = 1e9, pm_ocb: float = 0.0) -> DatasetEntry:
    measured = Measured(status=status, gain_db=gain, ugbw_hz=ugbw, pm_ocb_deg=pm_ocb)
    return DatasetEntry(f"c{sizing}", sizing, "t", 0, sizing, "train", {}, measured)


def test_best_and_worst_by_ocb_fom_with_failures_lowest():
    rows = [row(0, ugbw=2e9), row(1, ugbw=5e9), row(2, status="no_crossing"), row(3, ugbw=1e9, pm_ocb=90.0)]
    best, worst = best_and_worst(rows)
    assert best.sizing == 1 and worst.sizing == 2
    all_failed = [row(k, status="sim_error") for k in range(4)]
    best, worst = best_and_worst(all_failed)
    assert (best.sizing, worst.sizing) == (0, 1)  # never the same sizing twice


def test_ocb101_preset_keeps_best_and_worst_of_each_topology(ray_session, tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'o.db'}")
    report = build_dataset(
        store, 6, 5, "o", pool_config=CONFIG, pool_factory=real_pool, progress=False, preset="ocb101"
    )
    assert report.members == 6 and report.simulated == 60
    pool = list(store.dataset_rows("o-pool"))
    rows = list(store.dataset_rows("o"))
    assert [r.position for r in rows] == list(range(6))
    for j in range(3):
        even, odd = rows[2 * j], rows[2 * j + 1]
        assert even.topology_number == odd.topology_number == j
        siblings = [r for r in pool if r.topology_number == j]
        assert len(siblings) == 20
        assert (even.id, odd.id) == tuple(r.id for r in best_and_worst(siblings))

"""The Ray simulation pool: results in order, and hangs and crashes pinned on their circuit."""

from functools import partial

import pytest

from circuits import SimStatus, generate
from orchestrator.distributed.simulation_pool import (
    PoolConfig,
    SimulationPool,
    SimulationWorker,
    call_batches,
    ngspice_factory,
)
from simulator.mna import MnaBackend
from simulator.testing import FaultyBackend

pytestmark = pytest.mark.ray


def run_all(pool: SimulationPool, circuits) -> dict[int, object]:
    seen: dict[int, object] = {}
    for batch in pool.run(circuits):
        for i, result in zip(batch.indices, batch.results):
            assert i not in seen, "an index came back twice"
            seen[i] = result
    return seen


@pytest.mark.ngspice
def test_pool_matches_a_direct_run(ray_session):
    circuits = [s.circuit for s in generate(300, 21)]
    pool = SimulationPool(PoolConfig(num_workers=2, batch_size=40, circuits_per_deck=15), ngspice_factory(15))
    try:
        assert pool.simulator == "ngspice"
        results = run_all(pool, circuits)
    finally:
        pool.shutdown()
    expected = MnaBackend().simulate(circuits)
    assert sorted(results) == list(range(len(circuits)))
    for i, want in enumerate(expected):
        assert results[i].status == want.status
        if want.ok:
            assert results[i].ugbw_hz == pytest.approx(want.ugbw_hz, rel=1e-5)


def test_hung_and_crashed_circuits_are_recorded_and_the_batch_goes_on(ray_session):
    circuits = [s.circuit for s in generate(60, 22)]
    hang, crash = circuits[7].key, circuits[33].key
    factory = partial(FaultyBackend, hang=frozenset({hang}), crash=frozenset({crash}))
    pool = SimulationPool(PoolConfig(num_workers=2, batch_size=20, timeout_s=8.0), factory)  # slack for a loaded box
    try:
        results = run_all(pool, circuits)
        assert pool.replaced_workers >= 2
    finally:
        pool.shutdown()
    assert sorted(results) == list(range(60))
    assert results[7].status is SimStatus.TIMEOUT and "8 s" in results[7].error
    assert results[33].status is SimStatus.CRASHED
    expected = MnaBackend().simulate(circuits)
    for i, want in enumerate(expected):
        if i not in (7, 33):
            assert results[i].status == want.status, i


@pytest.mark.slow
def test_a_batch_lost_with_its_node_goes_again_whole_before_it_is_split(ray_session, monkeypatch):
    """Every actor death taken for a lost node (one cannot kill a node here): the batch is sent again
    whole (``RELOCATIONS`` = 1 time), then split; the culprit alone is sent again once, then CRASHED."""
    from orchestrator.distributed import simulation_pool

    monkeypatch.setattr(simulation_pool, "node_lost", lambda exc: True)
    monkeypatch.setattr(simulation_pool, "RELOCATIONS", 1)
    circuits = [s.circuit for s in generate(10, 25)]
    factory = partial(FaultyBackend, crash=frozenset({circuits[4].key}))
    pool = SimulationPool(PoolConfig(num_workers=1, batch_size=10), factory)
    try:
        results = run_all(pool, circuits)
        assert (pool.relocated_calls, pool.replaced_workers) == (2, 4)  # crashes: whole, again, alone, again
    finally:
        pool.shutdown()
    assert results[4].status is SimStatus.CRASHED
    expected = MnaBackend().simulate(circuits)
    assert [results[i] for i in range(10) if i != 4] == [r for i, r in enumerate(expected) if i != 4]


def test_pool_config_rejects_nonsense():
    with pytest.raises(ValueError, match="batch_size"):
        PoolConfig(batch_size=0)
    with pytest.raises(ValueError, match="timeout_s"):
        PoolConfig(timeout_s=0)


def test_call_batches_pack_whole_groups_and_split_only_groups_larger_than_a_call():
    assert call_batches(12, None, 5) == [([0, 1, 2, 3, 4], None), ([5, 6, 7, 8, 9], None), ([10, 11], None)]
    # groups 3, 2 | 4 | 7 (split 5 + 2, as alone) | 0 (nothing) | 1
    batches = call_batches(17, [3, 2, 4, 7, 0, 1], 5)
    assert batches == [
        ([0, 1, 2, 3, 4], [3, 2]),
        ([5, 6, 7, 8], [4]),
        ([9, 10, 11, 12, 13], None),
        ([14, 15], None),
        ([16], [1]),
    ]
    assert call_batches(0, [], 5) == [] and call_batches(0, None, 5) == []


class Recording:
    """A backend that records the decks it is asked to simulate."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.mna = MnaBackend()

    def simulate(self, circuits):
        self.calls.append(len(circuits))
        return self.mna.simulate(circuits)


def test_a_worker_simulates_each_group_on_its_own():
    circuits = [s.circuit for s in generate(9, 23)]
    worker = SimulationWorker(Recording)
    results, _, _ = worker.simulate(circuits, [4, 0, 5])
    assert worker.backend.calls == [4, 0, 5]
    assert results == MnaBackend().simulate(circuits)
    worker.simulate(circuits)
    assert worker.backend.calls[-1] == 9


def test_pool_groups_come_back_each_as_it_would_alone(ray_session):
    circuits = [s.circuit for s in generate(70, 24)]
    groups = [circuits[:3], [], circuits[3:40], circuits[40:]]
    pool = SimulationPool(PoolConfig(num_workers=1, batch_size=40), MnaBackend)
    try:
        answers = pool.simulate_groups(groups)
    finally:
        pool.shutdown()
    assert answers == [MnaBackend().simulate(g) for g in groups]

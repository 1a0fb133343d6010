"""The Ray simulation pool: results in order, and hangs and crashes pinned on their circuit."""

from functools import partial

import pytest

from circuits import SimStatus, generate
from orchestrator.distributed.simulation_pool import PoolConfig, SimulationPool, ngspice_factory
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


def test_pool_config_rejects_nonsense():
    with pytest.raises(ValueError, match="batch_size"):
        PoolConfig(batch_size=0)
    with pytest.raises(ValueError, match="timeout_s"):
        PoolConfig(timeout_s=0)

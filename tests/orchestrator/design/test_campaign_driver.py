"""The campaign driver on Ray: a target whose search raises, or hangs, is stored as failed with its
reason while the others complete, and a re-run retries it. The bandit workers here search with the
family's random proposals on MNA; a fault is injected into one target's simulations."""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from ray.exceptions import ActorDiedError

from circuits.errors import CktLoopError
from circuits.specs import spec_classes
from circuits.targets import Target
from orchestrator.design.campaign import CampaignDriver, CampaignSettings, Progress, _alive
from orchestrator.design.search import SearchConfig
from orchestrator.distributed.bandit_worker import BanditWorker
from simulator.mna import MnaBackend
from storage import Store

pytestmark = [pytest.mark.ray]

TARGETS = [
    Target.from_expressions("first", ["gain_db>=40"]),
    Target.from_expressions("broken", ["gain_db>=41"]),
    Target.from_expressions("third", ["pm_deg>=45"]),
    Target.from_expressions("fourth", ["gain_db>=30", "pm_deg>=30"]),
]
VERSIONS = {"generator": None, "surrogate": None, "simulator": "mna", "simulator_version": "0"}


class FaultyWorker(BanditWorker):
    """A bandit worker whose simulations raise (or hang) for the targets named ``fault``."""

    def __init__(self, fault: str, faulty: frozenset[str], log: Path | None = None) -> None:
        super().__init__(None, None, spec_classes("ocb").to_dict(), [], simulate=MnaBackend().simulate)
        self.fault, self.faulty, self.log = fault, faulty, log

    def search(self, target, config, reuse=()):
        if self.log is not None:  # which worker (process) searched which target
            with self.log.open("a") as f:
                f.write(f"{os.getpid()} {target.name}\n")
        if target.name in self.faulty:

            def simulate(circuits):
                if self.fault == "hang":
                    time.sleep(3600)
                raise RuntimeError(f"injected fault simulating {len(circuits)} circuits\nsecond line")

            self.simulate = simulate
        else:
            self.simulate = MnaBackend().simulate
        return super().search(target, config, reuse)


@pytest.fixture
def remote_worker(ray_session):
    ray_session.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    started = []

    def make(fault: str, faulty: set[str], log: Path | None = None):
        def spawn():
            worker = ray_session.remote(num_cpus=0)(FaultyWorker).remote(fault, frozenset(faulty), log)
            started.append(worker)
            return worker

        return spawn

    yield make
    for worker in started:
        ray_session.kill(worker)
    ray_session.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def drive(store: Store, spawn, timeout_s: float = 600.0, workers: int = 2, searches_per_worker: int = 1) -> Progress:
    campaign = store.ensure_campaign("faults", {"targets": [t.name for t in TARGETS]})
    ids = store.ensure_targets(campaign, TARGETS)
    todo = [t for t in TARGETS if t.name in {r.name for r in store.unfinished_targets(campaign)}]
    search = SearchConfig(refine_share=0.0)
    settings = CampaignSettings(
        None, None, search, workers=workers, searches_per_worker=searches_per_worker, target_timeout_s=timeout_s
    )
    progress = Progress(total=len(TARGETS), done=len(TARGETS) - len(todo))
    driver = CampaignDriver(store, campaign, ids, settings, 20, VERSIONS, progress, [])
    driver.run(todo, spawn, [spawn() for _ in range(min(workers, len(todo)))])
    return progress


def test_a_target_whose_search_raises_is_failed_with_its_reason_and_the_rest_complete(remote_worker, tmp_path):
    with Store.open(f"sqlite:///{tmp_path / 'f.db'}") as store:
        progress = drive(store, remote_worker("raise", {"broken"}))
        assert (progress.done, progress.failed) == (4, 1)
        rows = {r.name: r for r in store.campaign_targets("faults")}
        assert rows["broken"].status == "failed"
        assert rows["broken"].reason == "RuntimeError: injected fault simulating 20 circuits"
        for name in ("first", "third", "fourth"):
            assert rows[name].status == "done" and rows[name].n_simulations == 20 and rows[name].reason is None
        assert store.campaign("faults").failed == 1

        progress = drive(store, remote_worker("raise", set()))  # a re-run retries the failed target alone
        assert (progress.done, progress.failed) == (4, 0)
        assert [r.status for r in store.campaign_targets("faults")] == ["done"] * 4


def test_targets_are_spread_over_the_workers_when_one_worker_could_take_them_all(remote_worker, tmp_path):
    log = tmp_path / "searched.txt"
    with Store.open(f"sqlite:///{tmp_path / 's.db'}") as store:
        progress = drive(store, remote_worker("raise", set(), log), workers=2, searches_per_worker=16)
    assert (progress.done, progress.failed) == (4, 0)
    searched = [line.split() for line in log.read_text().splitlines()]
    per_worker = Counter(pid for pid, _ in searched)
    assert sorted(per_worker.values()) == [2, 2]  # not 4 and 0 (every target to the first worker)
    assert sorted(name for _, name in searched) == sorted(t.name for t in TARGETS)


@pytest.mark.slow
def test_a_worker_searching_targets_at_once_finds_what_it_finds_one_at_a_time(ray_session):
    from orchestrator.design.campaign import target_seed

    worker = ray_session.remote(num_cpus=0, max_concurrency=4)(BanditWorker).remote(
        None, None, spec_classes("ocb").to_dict(), [], simulate=MnaBackend().simulate
    )
    local = BanditWorker(None, None, spec_classes("ocb").to_dict(), [], simulate=MnaBackend().simulate)
    try:
        configs = [SearchConfig(budget=80, seed=target_seed(0, t.name)) for t in TARGETS]  # refinement included
        together = ray_session.get([worker.search.remote(t, c) for t, c in zip(TARGETS, configs)], timeout=600)
        for outcome, target, config in zip(together, TARGETS, configs):
            alone = local.search(target, config)
            assert list(outcome.proposals) == list(alone.proposals) and outcome.winner == alone.winner
            assert outcome.history == alone.history and outcome.n_simulations == alone.n_simulations == 80
    finally:
        ray_session.kill(worker)


@pytest.mark.slow
def test_a_target_that_hangs_is_failed_after_the_timeout_and_its_worker_replaced(remote_worker, tmp_path):
    with Store.open(f"sqlite:///{tmp_path / 'h.db'}") as store:
        spawn = remote_worker("hang", {"first"})
        progress = drive(store, spawn, timeout_s=20.0, workers=1)
        rows = {r.name: r for r in store.campaign_targets("faults")}
        assert rows["first"].status == "failed" and rows["first"].reason == "no result within 20 s"
        assert [rows[n].status for n in ("broken", "third", "fourth")] == ["done"] * 3
        assert progress.failed == 1


class _Worker:
    """A bandit worker handle whose actor is alive or died with its node (no Ray)."""

    def __init__(self, alive: bool) -> None:
        self.alive = alive
        self.simulator = self

    def remote(self) -> _Worker:
        return self


def _get(worker: _Worker, what: str) -> tuple[str, str]:
    if not worker.alive:
        raise ActorDiedError()
    return "ngspice", "39"


def test_workers_lost_with_their_node_at_start_up_are_replaced_once_and_never_a_traceback():
    fresh = iter([_Worker(True)])
    workers, simulator, version = _alive([_Worker(False), _Worker(True)], lambda: next(fresh), _get)
    assert len(workers) == 2 and all(w.alive for w in workers) and (simulator, version) == ("ngspice", "39")

    with pytest.raises(CktLoopError, match="no bandit worker came up"):
        _alive([_Worker(False)], lambda: _Worker(False), _get)

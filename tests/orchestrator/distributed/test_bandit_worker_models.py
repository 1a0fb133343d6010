"""The bandit worker's calls to its model actors: a timeout, and a fast failure when the cluster has no
node left that could host the actors again (their `model` node lost)."""

from __future__ import annotations

import time

import pytest

from circuits import CktLoopError
from circuits.specs import spec_classes
from orchestrator.distributed import bandit_worker, placement
from orchestrator.distributed.bandit_worker import HOMELESS, BanditWorker

pytestmark = pytest.mark.ray


class Silent:
    """A generator actor whose `generate_calls` never answers (its node is gone, say)."""

    def version(self) -> str:
        return "silent"

    def generate(self, *args: object) -> list:
        return self.generate_calls([args])[0]

    def generate_calls(self, calls: list) -> list:
        time.sleep(3600)
        return [[] for _ in calls]


def _worker(ray, on_model_nodes: bool, monkeypatch: pytest.MonkeyPatch, timeout_s: float = 2.0) -> BanditWorker:
    monkeypatch.setattr(placement, "model_nodes", lambda: ["a-model-node"] if on_model_nodes else [])
    actor = ray.remote(num_cpus=0)(Silent).remote()
    classes = spec_classes("cktloop").to_dict()
    return BanditWorker(actor, None, classes, [], simulate=lambda circuits: [], call_timeout_s=timeout_s)


def test_a_model_call_fails_at_once_when_no_node_offers_model_any_more(ray_session, monkeypatch):
    monkeypatch.setattr(bandit_worker, "HOMELESS_POLL_S", 0.2)
    worker = _worker(ray_session, True, monkeypatch, timeout_s=60.0)
    assert worker._on_model_nodes  # placed on the `model` nodes: only such a node can host them again
    monkeypatch.setattr(placement, "model_nodes", lambda: [])  # ... and the last one is gone
    began = time.monotonic()
    with pytest.raises(CktLoopError, match="no alive node offers the `model` resource") as caught:
        worker._generate([None], 1, 0, "spec")
    assert time.monotonic() - began < 20  # well before the 60 s call timeout
    assert str(caught.value) == f"the model actor's generate: {HOMELESS}"
    ray_session.kill(worker.generator)


def test_while_a_model_node_is_alive_or_there_never_was_one_a_call_waits_its_whole_timeout(ray_session, monkeypatch):
    monkeypatch.setattr(bandit_worker, "HOMELESS_POLL_S", 0.2)
    for on_model_nodes in (True, False):
        worker = _worker(ray_session, on_model_nodes, monkeypatch)
        if not on_model_nodes:  # actors placed anywhere (no `model` node): no node is missed
            assert not worker._on_model_nodes
        began = time.monotonic()
        with pytest.raises(CktLoopError, match="gave no answer within 2 s"):
            worker._generate([None], 1, 0, "spec")
        assert time.monotonic() - began >= 1.9
        ray_session.kill(worker.generator)


def test_a_call_whose_actor_is_unreachable_is_made_again_while_a_model_node_is_alive(ray_session, monkeypatch):
    """Ray restarts a model actor lost with its node on another `model` node: the call is made again."""
    monkeypatch.setattr(bandit_worker, "HOMELESS_POLL_S", 0.1)

    @ray_session.remote(num_cpus=0)
    def answer(unreachable: bool) -> int:
        if unreachable:
            raise ray_session.exceptions.ActorUnavailableError("its node is unreachable", None)
        return 42

    worker = _worker(ray_session, True, monkeypatch, timeout_s=120.0)  # room for a task's process to start
    made: list[bool] = []

    def submit():
        made.append(not made)  # the first call finds the actor unreachable
        return answer.remote(made[-1])

    assert worker._get(submit, "a model call") == 42 and made == [True, False]
    monkeypatch.setattr(placement, "model_nodes", lambda: [])  # the same, with no `model` node left
    made.clear()
    with pytest.raises(CktLoopError, match="no alive node offers"):
        worker._get(submit, "a model call")
    assert made == [True]
    ray_session.kill(worker.generator)


def test_two_searches_of_one_worker_that_simulate_a_circuit_both_say_where_it_ran():
    """The pool records a circuit's node once per call, however many searches asked for it: the record
    keeps it until every search in flight that asked is over, so either outcome, stored first, has it."""
    import threading

    from circuits.targets import Target
    from orchestrator.design.search import SearchConfig
    from simulator.mna import MnaBackend

    mna = MnaBackend()
    both_in = threading.Barrier(2, timeout=60)
    first_calls: set[int] = set()

    def simulate(circuits: list) -> list:
        if threading.get_ident() not in first_calls:
            first_calls.add(threading.get_ident())
            both_in.wait()  # both searches are in flight before either simulates anything
        for c in circuits:
            worker.where.setdefault(c.key, "node-a")  # recorded once, as by one pool call
        return mna.simulate(circuits)

    worker = BanditWorker(None, None, spec_classes("ocb").to_dict(), [], simulate=simulate)
    target = Target.from_expressions("t", ["gain_db>=50", "ugbw_hz>=5e7"])
    outcomes: list = []
    threads = [
        threading.Thread(target=lambda: outcomes.append(worker.search(target, SearchConfig(budget=30, seed=3))))
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(outcomes) == 2
    for outcome in outcomes:
        keys = {p.circuit.key for p in outcome.simulated()}
        assert keys and set(outcome.nodes) == keys  # the second one over too
    assert worker.where == {} and worker._askers == {}  # nothing kept once both are over

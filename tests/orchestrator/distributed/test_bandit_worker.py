"""The bandit worker: its Coalescer (calls its search threads make at once go out as one), and the
classes it asks its generator for when not given them."""

from __future__ import annotations

import threading
import time

import pytest

from orchestrator.distributed.bandit_worker import Coalescer


class Gate:
    """A ``run`` whose first call waits until ``n`` more callers have queued behind it."""

    def __init__(self, coalescer_of, n: int) -> None:
        self.batches: list[list[int]] = []
        self.release = threading.Event()
        self.n = n
        self.coalescer = coalescer_of(self)

    def __call__(self, requests: list[int]) -> list[object]:
        if not self.batches:
            self.release.wait(timeout=30)
        self.batches.append(list(requests))
        return [ZeroDivisionError(f"1/{r}") if r == 0 else 1 / r for r in requests]

    def calls(self, requests: list[int]) -> list[object]:
        """Run ``requests[0]`` first, then the rest from threads queued behind it; each caller's answer."""
        answers: list[object] = [None] * len(requests)

        def call(i: int) -> None:
            try:
                answers[i] = self.coalescer(requests[i])
            except Exception as exc:
                answers[i] = exc

        first = threading.Thread(target=call, args=(0,))
        first.start()
        while not self.coalescer._busy:
            time.sleep(0.001)
        rest = [threading.Thread(target=call, args=(i,)) for i in range(1, len(requests))]
        for t in rest:
            t.start()
        while len(self.coalescer._queue) < self.n:
            time.sleep(0.001)
        self.release.set()
        for t in [first, *rest]:
            t.join(timeout=30)
        return answers


def test_calls_made_while_one_runs_go_out_as_one_and_each_caller_gets_its_answer():
    gate = Gate(Coalescer, n=5)
    answers = gate.calls([1, 2, 4, 5, 8, 10])
    assert answers == [1.0, 0.5, 0.25, 0.2, 0.125, 0.1]
    assert gate.batches[0] == [1] and sorted(gate.batches[1]) == [2, 4, 5, 8, 10] and len(gate.batches) == 2
    assert gate.coalescer.calls == 2


def test_an_error_answer_reaches_its_caller_alone():
    gate = Gate(Coalescer, n=2)
    first, error, quarter = gate.calls([1, 0, 4])
    assert (first, quarter) == (1.0, 0.25) and isinstance(error, ZeroDivisionError)


def test_a_merged_call_that_raises_is_run_request_by_request_when_isolating_else_fails_every_caller():
    def inverse(requests: list[int]) -> list[float]:
        seen.append(list(requests))
        return [1 / r for r in requests]

    seen: list[list[int]] = []
    isolating = Coalescer(inverse, isolate=True)
    isolating._run(slots := [_slot(r) for r in (2, 0, 4)])
    assert [s.answer for s in slots] == [0.5, None, 0.25] and isinstance(slots[1].error, ZeroDivisionError)
    assert seen == [[2, 0, 4], [2], [0], [4]]

    seen.clear()
    failing = Coalescer(inverse)
    failing._run(slots := [_slot(r) for r in (2, 0, 4)])
    assert seen == [[2, 0, 4]] and all(isinstance(s.error, ZeroDivisionError) for s in slots)


def test_a_call_answering_the_wrong_number_of_requests_fails_its_callers():
    short = Coalescer(lambda requests: requests[:-1])
    with pytest.raises(Exception, match="answered 0 of 1"):
        short(7)


def _slot(request: int):
    from orchestrator.distributed.bandit_worker import _Slot

    return _Slot(request)


def test_a_worker_given_no_classes_asks_its_generator_and_without_one_says_what_is_missing():
    from circuits import CktLoopError
    from circuits.specs import spec_classes
    from orchestrator.distributed.bandit_worker import BanditWorker

    classes = spec_classes("cktloop")

    class Host:  # a plain generator host: what the worker uses before any search
        def generate(self, *args: object) -> list:
            return []

        def spec_classes(self) -> dict:
            return classes.to_dict()

        def train_classes(self) -> list[tuple[int, ...]]:
            return [(1, 2, 3), (0, 0, 0)]

    worker = BanditWorker(Host(), None, None, None, simulate=lambda circuits: [])
    assert worker.classes.sizes == classes.sizes and worker.known == [(1, 2, 3), (0, 0, 0)]
    with pytest.raises(CktLoopError, match="without a generator needs its spec_classes given"):
        BanditWorker(None, None, None, None, simulate=lambda circuits: [])


def test_a_workers_surrogate_screens_refinement_when_the_search_asks():
    """The surrogate the worker ranks the search with (here a plain host; an actor handle in a campaign)
    reaches refinement as a plain predict callable: with refine_screen it is asked about refinement's bred
    sizings before any is simulated."""
    from circuits import generate
    from circuits.specs import spec_classes
    from circuits.targets import Target
    from orchestrator.design.search import SearchConfig
    from orchestrator.distributed.bandit_worker import BanditWorker
    from simulator.mna import MnaBackend

    mna = MnaBackend()
    classes = spec_classes("cktloop")

    class Generator:
        def generate(self, cls: list, n: int, seed: int, sampling: str) -> list:
            return [s.circuit for s in generate(n, seed % 10_000)]

        def spec_classes(self) -> dict:
            return classes.to_dict()

        def train_classes(self) -> list[tuple[int, ...]]:
            return [(1, 2, 3), (2, 2, 2)]

    class Surrogate:
        def __init__(self) -> None:
            self.asked: set[str] = set()

        def predict(self, circuits: list) -> list[dict]:
            self.asked.update(c.key for c in circuits)
            rows = [p.to_dict() for p in mna.simulate(circuits)]
            return [
                {k: r[k] if r[k] is not None else -1e9 for k in ("gain_db", "ugbw_hz", "pm_deg", "fom")} for r in rows
            ]

    surrogate = Surrogate()
    worker = BanditWorker(Generator(), surrogate, None, None, simulate=mna.simulate)
    target = Target.from_expressions("w", ["gain_db>=50", "gain_db<=53", "ugbw_hz>=5e7", "ugbw_hz<=5.4e7"])
    out = worker.search(target, SearchConfig(budget=80, seed=1, refine_screen=4.0))
    refined = {k for k, p in out.proposals.items() if p.source == "refine"}
    assert refined and refined <= surrogate.asked and out.n_simulations <= 80

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

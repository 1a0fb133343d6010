"""The bandit worker: the process that runs whole target searches for a campaign on Ray.

``BanditWorker`` is a plain class (tests run it in one process); the campaign driver wraps it with
``ray.remote`` and runs several searches in it at once, in threads. Its searches call the shared
generator and surrogate actors (``orchestrator.distributed.model_actors``), which batch the calls that
arrive together from many workers, and simulate on the worker's own ngspice pool. The calls its
threads make at the same time go out as one Ray call per model and one per pool (``Coalescer``): a
Ray call costs about a millisecond of the caller's CPU, and a search makes about 150 of them per
target. Every call to a model actor has a timeout, so a hung actor fails the target instead of
stalling the campaign. A worker whose model actors were placed on the ``model`` nodes fails a call at
once (within ``HOMELESS_POLL_S``) when no alive node offers ``model`` any more: Ray cannot restart the
actors anywhere then, and the target fails with that one-line reason (a re-run retries it once a node
offers ``model`` again) instead of after the whole timeout.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from circuits import Circuit, CktLoopError, Performance
from circuits.specs import SpecClass, SpecClasses
from circuits.targets import Target
from orchestrator.design.search import SearchConfig, SearchOutcome, StoredCircuit, TargetSearch, family_proposer

MODEL_CALL_TIMEOUT_S = 300.0
HOMELESS_POLL_S = 5.0  # how often a waiting model call checks that some node still offers `model`
HOMELESS = "no alive node offers the `model` resource any more (the model actors' node was lost)"

Request = TypeVar("Request")
Answer = TypeVar("Answer")


class _Slot(Generic[Request, Answer]):
    def __init__(self, request: Request) -> None:
        self.request = request
        self.done = False
        self.answer: Answer | None = None
        self.error: BaseException | None = None


class Coalescer(Generic[Request, Answer]):
    """Merges the calls that threads make at the same time into one call of ``run``.

    ``run`` takes a list of requests and returns one answer per request, in order; an answer that is
    an exception is raised to its caller alone. A caller whose request finds no call of ``run`` in
    flight makes one with every request waiting by then; the others wait, and one of those left
    waiting when it returns makes the next. So at most one call is in flight, and it carries whatever
    queued behind the previous one. When a merged call raises, each of its requests is run alone
    (``isolate``, so only the culprit's caller sees the error) or every caller gets the error.
    ``calls`` counts calls of ``run``.
    """

    def __init__(self, run: Callable[[list[Request]], Sequence[Answer | BaseException]], isolate: bool = False):
        self.run, self.isolate = run, isolate
        self.calls = 0
        self._cond = threading.Condition()
        self._queue: list[_Slot[Request, Answer]] = []
        self._busy = False

    def __call__(self, request: Request) -> Answer:
        slot: _Slot[Request, Answer] = _Slot(request)
        with self._cond:
            self._queue.append(slot)
            while not slot.done and self._busy:
                self._cond.wait()
            if not slot.done:
                batch, self._queue, self._busy = self._queue, [], True
        if not slot.done:
            try:
                self._run(batch)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
        if slot.error is not None:
            raise slot.error
        return slot.answer  # type: ignore[return-value]

    def _run(self, batch: list[_Slot[Request, Answer]]) -> None:
        try:
            self.calls += 1
            answers = list(self.run([s.request for s in batch]))
            if len(answers) != len(batch):
                raise CktLoopError(f"a merged call answered {len(answers)} of {len(batch)} requests")
        except Exception as exc:
            if self.isolate and len(batch) > 1:
                for s in batch:
                    self._run([s])
                return
            answers = [exc] * len(batch)
        for s, answer in zip(batch, answers):
            if isinstance(answer, BaseException):
                s.error = answer
            else:
                s.answer = answer
            s.done = True


class BanditWorker:
    """Runs whole target searches; Ray hosts one per target in flight. Models are shared actor handles
    (or plain hosts, called directly, in one process)."""

    def __init__(
        self,
        generator: Any | None,
        surrogate: Any | None,
        classes: dict[str, Any] | None,
        known_classes: Sequence[SpecClass] | None,
        simulators: int = 1,
        simulator_cpus: float = 1.0,
        simulate: Callable[[Sequence[Circuit]], list[Performance]] | None = None,
        call_timeout_s: float = MODEL_CALL_TIMEOUT_S,
    ) -> None:
        if call_timeout_s <= 0:
            raise CktLoopError(f"a model call timeout must be > 0 s, got {call_timeout_s}")
        self.generator, self.surrogate = generator, surrogate
        self.call_timeout_s = call_timeout_s
        # Whether the model actors (if any) went to the `model` nodes, as the campaign places them when some
        # node offers `model` (placement.model_nodes): then they can only ever be restarted on such a node.
        self._on_model_nodes = self._actors_on_model_nodes()
        self.simulator_info = ("test", "0")
        self.where: dict[str, str] = {}  # circuit key -> the Ray node that simulated it (the pool's record)
        self._askers: dict[str, int] = {}  # circuit key -> searches in flight that asked to simulate it
        self._lock = threading.Lock()
        if simulate is None:
            from orchestrator.distributed.placement import node_id
            from orchestrator.distributed.simulation_pool import PoolConfig, SimulationPool

            # The simulators go where this worker runs (pinned: they wait for room there).
            config = PoolConfig(num_workers=simulators, num_cpus_per_worker=simulator_cpus, node=node_id())
            pool = SimulationPool(config)
            self.simulator_info = (pool.simulator, pool.version)
            self.where = pool.where
            # One pool call for the batches the searches ask for at once, each still its own deck(s).
            simulate = Coalescer(pool.simulate_groups, isolate=True)
        self.simulate = simulate
        self._generate = self._model(generator, "generate", "generate_calls")
        self._predict = self._model(surrogate, "predict", "predict_calls")
        if classes is None or known_classes is None:
            # Asked of the generator once the simulators are up, so they start while it loads its model.
            classes, known_classes = self._ask("spec_classes"), self._ask("train_classes")
        self.classes = SpecClasses.from_dict(classes)
        self.known = [tuple(c) for c in known_classes]

    def _ask(self, method: str) -> Any:
        """The generator's answer to ``method()`` (a plain host's, or an actor's within the call timeout)."""
        if self.generator is None:
            raise CktLoopError(f"a bandit worker without a generator needs its {method} given")
        call = getattr(self.generator, method)
        if not hasattr(call, "remote"):
            return call()
        return self._get(call.remote, f"the generator actor's {method}")

    def _actors_on_model_nodes(self) -> bool:
        if not any(hasattr(getattr(h, "version", None), "remote") for h in (self.generator, self.surrogate)):
            return False
        from orchestrator.distributed.placement import model_nodes

        return bool(model_nodes())

    def _get(self, submit: Callable[[], Any], what: str) -> Any:
        """The answer to the model call ``submit`` makes (it returns a Ray reference), within the call
        timeout. Every ``HOMELESS_POLL_S`` the wait checks for a cluster left without a node that could host
        the actor again (then the call fails at once, saying so). A call whose actor is unreachable (its
        node lost: Ray restarts the actor on another node that can hold it) is made again, as a model's
        answer depends only on the call."""
        import ray

        from orchestrator.distributed.placement import model_nodes

        deadline = time.monotonic() + self.call_timeout_s
        ref = submit()
        while True:
            left = deadline - time.monotonic()
            try:
                return ray.get(ref, timeout=max(0.0, min(left, HOMELESS_POLL_S)))
            except (ray.exceptions.GetTimeoutError, ray.exceptions.ActorUnavailableError) as exc:
                if self._on_model_nodes and not model_nodes():
                    raise CktLoopError(f"{what}: {HOMELESS}") from None
                left = deadline - time.monotonic()
                if isinstance(exc, ray.exceptions.ActorUnavailableError) and left > 0:
                    time.sleep(min(left, HOMELESS_POLL_S))
                    ref = submit()
                elif left <= 0:
                    raise CktLoopError(f"{what} gave no answer within {self.call_timeout_s:g} s") from None

    def simulator(self) -> tuple[str, str]:
        """(name, version) of the simulator that judges this worker's circuits."""
        return self.simulator_info

    def _model(self, handle: Any | None, method: str, merged: str) -> Callable[..., Any]:
        """``handle.method``: called directly on a plain object; on an actor, the calls the searches make at
        once go as one call of ``merged`` (a list of argument tuples -> one answer or exception each),
        with the timeout."""
        if handle is None or not hasattr(getattr(handle, method), "remote"):
            return lambda *args: getattr(handle, method)(*args)

        def remote(calls: list[tuple[Any, ...]]) -> list[Any]:
            return self._get(lambda: getattr(handle, merged).remote(calls), f"the model actor's {method}")

        coalescer: Coalescer[tuple[Any, ...], Any] = Coalescer(remote)
        return lambda *args: coalescer(args)

    def search(self, target: Target, config: SearchConfig, reuse: Sequence[StoredCircuit] = ()) -> SearchOutcome:
        if self.generator is None:
            propose = family_proposer()
            predict = None
        else:

            def propose(cls: SpecClass | None, n: int, seed: int) -> list[Circuit]:
                out = self._generate([cls], n, seed, config.sampling)
                return [c for c in out if isinstance(c, Circuit)]

            def predict(circuits: Sequence[Circuit]) -> list[dict[str, Any]]:
                rows = self._predict(list(circuits))
                return [{k: v for k, v in r.items() if k != "embedding"} for r in rows]

        asked: set[str] = set()

        def simulate(circuits: Sequence[Circuit]) -> list[Performance]:
            with self._lock:
                for key in {c.key for c in circuits} - asked:
                    asked.add(key)
                    self._askers[key] = self._askers.get(key, 0) + 1
            return self.simulate(circuits)

        source = "generator" if self.generator is not None else "random"
        search = TargetSearch(target, self.classes, self.known, propose, predict, simulate, config, source, reuse)
        try:
            outcome = search.run()
            # Where each circuit ran, from the record, which so keeps only what searches in flight asked for.
            keys = [p.circuit.key for p in outcome.simulated()]
            outcome.nodes = {key: self.where[key] for key in keys if key in self.where}
        finally:
            self._forget(asked)
        return outcome

    def _forget(self, keys: set[str]) -> None:
        """A search is over: the circuits it asked for leave the record once no search in flight asked for
        them (two searches of one worker can simulate the same circuit in one call, recorded once, and the
        driver may store either outcome first)."""
        with self._lock:
            for key in keys:
                self._askers[key] -= 1
                if not self._askers[key]:
                    del self._askers[key]
                    self.where.pop(key, None)

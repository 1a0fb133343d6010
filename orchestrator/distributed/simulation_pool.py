"""A pool of Ray actors, each owning one ngspice, that simulates circuits in batches.

Batches amortise Ray's per-call cost (a few ms). ``simulate_groups`` sends several callers' batches
in one call, each still simulated as its own deck(s), so a circuit's result does not depend on what
it was sent with (ngspice's last digits depend on the deck). Every batch runs under a timeout; a batch
whose actor hangs or dies is re-run one circuit per call on a fresh actor, so only the culprit is
marked TIMEOUT or CRASHED and the rest of the batch goes on.

On a cluster the workers spread over the nodes, or stay on the one node given (``placement``), and every
batch comes back with the Ray node that ran it. A batch whose worker was lost with its node (Ray says the
actor is unavailable, or that its node died) is not the circuits' fault: it is sent again whole, to
another worker, up to ``RELOCATIONS`` times. A lost worker is replaced, and the pool goes on with the
others until the replacement answers, or for good when the cluster has no room left for it.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from circuits import Circuit, CktLoopError, Performance, SimStatus
from orchestrator.distributed.placement import node_id, node_lost, simulation_options
from simulator.backend import SimulatorBackend


@dataclass(frozen=True)
class PoolConfig:
    """How many workers, how much work per call, how long a call may take."""

    num_workers: int = 2
    batch_size: int = 250  # circuits per Ray call
    circuits_per_deck: int = 50  # circuits per ngspice deck inside a call
    timeout_s: float = 60.0  # per call (and per circuit when isolating a failed call)
    startup_timeout_s: float = 120.0  # for a replacement worker to start
    num_cpus_per_worker: float = 1.0
    in_flight_per_worker: int = 2
    node: str | None = None  # a Ray node to pin the workers to; None: spread over the nodes

    def __post_init__(self) -> None:
        for name in ("num_workers", "batch_size", "circuits_per_deck", "in_flight_per_worker"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {self.timeout_s}")


BackendFactory = Callable[[], SimulatorBackend]
RELOCATIONS = 3  # times a batch is sent again whole after its worker's node was lost


class SimulationWorker:
    """What each actor hosts: one backend in its own process; timings travel with the results."""

    def __init__(self, factory: BackendFactory) -> None:
        self.backend = factory()
        self.node = node_id()

    def info(self) -> tuple[str, str]:
        return self.backend.name, self.backend.version

    def simulate(
        self, circuits: Sequence[Circuit], groups: Sequence[int] | None = None
    ) -> tuple[list[Performance], float, str | None]:
        """Results of ``circuits``, the seconds they took and the Ray node that ran them (None outside
        Ray); with ``groups`` (sizes, summing to their number), each group simulated on its own, as if
        it came alone."""
        start = time.perf_counter()
        results: list[Performance] = []
        for a, b in itertools.pairwise(itertools.accumulate(groups or [len(circuits)], initial=0)):
            results.extend(self.backend.simulate(circuits[a:b]))
        return results, time.perf_counter() - start, self.node


def ngspice_factory(circuits_per_deck: int = 50) -> BackendFactory:
    def make() -> SimulatorBackend:
        from simulator.ngspice import NgspiceBackend

        return NgspiceBackend(circuits_per_deck=circuits_per_deck)

    return make


@dataclass(frozen=True)
class BatchResult:
    """Results for a batch of input indices, with the wall time the worker spent per circuit and the
    Ray node that ran them (None when unknown)."""

    indices: list[int]
    results: list[Performance]
    seconds_per_circuit: float
    node: str | None = None


def call_batches(n: int, groups: Sequence[int] | None, size: int) -> list[tuple[list[int], list[int] | None]]:
    """How a pool sends ``n`` circuits: (indices, group sizes or None) per call of at most ``size``
    circuits. Without ``groups``, consecutive slices; with them (sizes summing to ``n``), whole groups
    packed in order, and a group larger than a call split as it would be if it came alone."""
    batches: list[tuple[list[int], list[int] | None]] = []
    start, packed = 0, list[int]()
    for g in groups if groups is not None else [n]:
        if packed and sum(packed) + g > size:
            batches.append((list(range(start - sum(packed), start)), packed))
            packed = []
        if g > size or groups is None:
            batches.extend((list(range(i, min(i + size, start + g))), None) for i in range(start, start + g, size))
        elif g:
            packed.append(g)
        start += g
    if packed:
        batches.append((list(range(start - sum(packed), start)), packed))
    return batches


@dataclass
class _Call:
    """A call in flight: which actor, which input indices (and group sizes), since when, whether it is a
    circuit being isolated (``alone``), and how often it was sent again after a lost node."""

    actor: Any
    indices: list[int]
    groups: list[int] | None
    start: float
    alone: bool
    tries: int = 0


class SimulationPool:
    """Runs circuits through ``num_workers`` Ray actors; yields results as batches finish."""

    def __init__(self, config: PoolConfig = PoolConfig(), factory: BackendFactory | None = None) -> None:
        import ray

        self._ray = ray
        self.config = config
        self._factory = factory or ngspice_factory(config.circuits_per_deck)
        options = simulation_options(config.num_cpus_per_worker, config.node)
        self._actor_cls = ray.remote(max_restarts=0, **options)(SimulationWorker)
        self.where: dict[str, str] = {}  # circuit key -> the node that simulated it (``simulate_all``)
        self.replaced_workers = 0
        self.relocated_calls = 0  # calls sent again whole after their worker's node was lost
        # Take every result that is in at each turn of ``run``, not one: a driver that fell behind (its
        # process kept off the CPU on a loaded machine) refills every idle worker in one pass.
        self.drain = True
        self._starting: dict[Any, Any] = {}  # info() ref -> a replacement worker, until it answers
        self._actors = [self._spawn() for _ in range(config.num_workers)]
        try:
            self.simulator, self.version = ray.get(self._actors[0].info.remote(), timeout=config.startup_timeout_s)
        except ray.exceptions.GetTimeoutError:
            raise CktLoopError(f"no simulation worker started within {config.startup_timeout_s:g} s") from None

    @property
    def size(self) -> int:
        """Workers taking calls now (replacements still starting not counted)."""
        return len(self._actors)

    def _spawn(self) -> Any:
        return self._actor_cls.remote(self._factory)

    def _replace(self, actor: Any) -> None:
        """Kill ``actor`` and start another. The new one joins once it answers (``_admit``): starting a
        process takes seconds on a loaded machine, which must not count against its first call's timeout."""
        self._ray.kill(actor, no_restart=True)
        self._actors.remove(actor)
        self.replaced_workers += 1
        fresh = self._spawn()
        self._starting[fresh.info.remote()] = fresh

    def _admit(self) -> None:
        """Replacements that answered join the pool. With no worker left, wait for one; a replacement that
        failed to start is dropped (the pool stays smaller) unless it was the last hope."""
        while self._starting:
            wait_s = 0.0 if self._actors else self.config.startup_timeout_s
            ready, _ = self._ray.wait(list(self._starting), num_returns=1, timeout=wait_s)
            if not ready:
                if self._actors:
                    return
                raise CktLoopError(
                    f"no replacement simulation worker started within {self.config.startup_timeout_s:g} s"
                )
            actor = self._starting.pop(ready[0])
            try:
                self._ray.get(ready[0], timeout=self.config.timeout_s)
            except (self._ray.exceptions.RayActorError, self._ray.exceptions.WorkerCrashedError) as exc:
                self._ray.kill(actor, no_restart=True)
                if not self._actors and not self._starting:
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                    raise CktLoopError(f"a replacement simulation worker failed to start: {first}") from None
                continue
            self._actors.append(actor)

    def shutdown(self) -> None:
        for actor in [*self._actors, *self._starting.values()]:
            self._ray.kill(actor, no_restart=True)
        self._actors, self._starting = [], {}

    def simulate_all(self, circuits: Sequence[Circuit], groups: Sequence[int] | None = None) -> list[Performance]:
        """Every circuit's result, in input order (``run`` without the streaming)."""
        results: list[Performance | None] = [None] * len(circuits)
        for batch in self.run(circuits, groups):
            for i, perf in zip(batch.indices, batch.results):
                results[i] = perf
                if batch.node is not None:
                    self.where[circuits[i].key] = batch.node
        return results  # type: ignore[return-value]

    def simulate_groups(self, groups: Sequence[Sequence[Circuit]]) -> list[list[Performance]]:
        """Each group's results, the groups sent together but each simulated as if it came alone."""
        flat = [c for group in groups for c in group]
        results = self.simulate_all(flat, [len(group) for group in groups])
        starts = list(itertools.accumulate((len(group) for group in groups), initial=0))
        return [results[a:b] for a, b in itertools.pairwise(starts)]

    def run(self, circuits: Sequence[Circuit], groups: Sequence[int] | None = None) -> Iterator[BatchResult]:
        """Simulate every circuit; each input index appears in exactly one yielded batch. ``groups``
        (sizes, in order) are simulated each on its own, whole groups packed into a call."""
        batches = call_batches(len(circuits), groups, self.config.batch_size)
        queue = [(indices, sizes, 0) for indices, sizes in reversed(batches)]  # pop() from the end keeps input order
        isolate: list[tuple[int, int]] = []  # (index, tries): circuits to re-run alone after a failed batch
        running: dict[Any, _Call] = {}
        while queue or isolate or running:
            self._admit()
            self._dispatch(circuits, queue, isolate, running)
            ready, _ = self._ray.wait(list(running), num_returns=1, timeout=0.5)
            if ready and self.drain and len(running) > 1:  # every result in by now, then one dispatch for all
                ready, _ = self._ray.wait(list(running), num_returns=len(running), timeout=0)
            for ref in ready:
                call = running.pop(ref)
                try:
                    results, seconds, node = self._ray.get(ref, timeout=self.config.timeout_s)  # ready: no wait
                except (self._ray.exceptions.RayActorError, self._ray.exceptions.WorkerCrashedError) as exc:
                    lost = SimStatus.CRASHED, str(exc), node_lost(exc)
                    yield from self._lost(call, running, queue, isolate, *lost)
                    continue
                yield BatchResult(call.indices, results, seconds / max(len(call.indices), 1), node)
            now = time.monotonic()
            for ref, call in list(running.items()):
                if ref in running and now - call.start > self.config.timeout_s:
                    running.pop(ref)
                    message = f"no result within {self.config.timeout_s:g} s"
                    yield from self._lost(call, running, queue, isolate, SimStatus.TIMEOUT, message, False)

    def _dispatch(
        self,
        circuits: Sequence[Circuit],
        queue: list[tuple[list[int], list[int] | None, int]],
        isolate: list[tuple[int, int]],
        running: dict[Any, _Call],
    ) -> None:
        """Keep every actor busy. A circuit being isolated runs alone on an otherwise idle actor,
        so a hang or crash is pinned on the right circuit."""
        calls: dict[Any, list[bool]] = {actor: [] for actor in self._actors}
        for call in running.values():
            calls[call.actor].append(call.alone)
        for actor, flags in calls.items():
            while isolate or queue:
                if isolate and not flags:
                    index, tries = isolate.pop()
                    call = _Call(actor, [index], None, time.monotonic(), True, tries)
                elif queue and not any(flags) and len(flags) < self.config.in_flight_per_worker:
                    indices, sizes, tries = queue.pop()
                    call = _Call(actor, indices, sizes, time.monotonic(), False, tries)
                else:
                    break
                running[actor.simulate.remote([circuits[i] for i in call.indices], call.groups)] = call
                flags.append(call.alone)

    def _lost(
        self,
        call: _Call,
        running: dict[Any, _Call],
        queue: list[tuple[list[int], list[int] | None, int]],
        isolate: list[tuple[int, int]],
        status: SimStatus,
        message: str,
        node_gone: bool,
    ) -> Iterator[BatchResult]:
        """A call hung or its actor died: replace the actor, and send again what it held: whole, when its
        node was lost (``node_gone``: the circuits did nothing wrong), else circuit by circuit (isolated),
        so that the culprit alone is marked ``status``."""
        if call.actor in self._actors:
            self._replace(call.actor)
        casualties = [call]
        for ref, other in list(running.items()):
            if other.actor is call.actor:  # other calls on the same actor die with it
                running.pop(ref)
                casualties.append(other)
        for lost in casualties:
            if node_gone and lost.tries < RELOCATIONS:
                self.relocated_calls += 1
                if lost.alone:
                    isolate.append((lost.indices[0], lost.tries + 1))
                else:
                    queue.append((lost.indices, lost.groups, lost.tries + 1))  # the next call sent
            elif lost.alone and lost is call:
                yield BatchResult(
                    lost.indices, [Performance.failed(status, (message.splitlines() or [status.value])[0][:500])], 0.0
                )
            else:
                isolate.extend((i, 0) for i in lost.indices)

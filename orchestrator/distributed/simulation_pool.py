"""A pool of Ray actors, each owning one ngspice, that simulates circuits in batches.

Batches amortise Ray's per-call cost (a few ms). ``simulate_groups`` sends several callers' batches
in one call, each still simulated as its own deck(s), so a circuit's result does not depend on what
it was sent with (ngspice's last digits depend on the deck). Every batch runs under a timeout; a batch
whose actor hangs or dies is re-run one circuit per call on a fresh actor, so only the culprit is
marked TIMEOUT or CRASHED and the rest of the batch goes on.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from circuits import Circuit, CktLoopError, Performance, SimStatus
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

    def __post_init__(self) -> None:
        for name in ("num_workers", "batch_size", "circuits_per_deck", "in_flight_per_worker"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {self.timeout_s}")


BackendFactory = Callable[[], SimulatorBackend]


class SimulationWorker:
    """What each actor hosts: one backend in its own process; timings travel with the results."""

    def __init__(self, factory: BackendFactory) -> None:
        self.backend = factory()

    def info(self) -> tuple[str, str]:
        return self.backend.name, self.backend.version

    def simulate(
        self, circuits: Sequence[Circuit], groups: Sequence[int] | None = None
    ) -> tuple[list[Performance], float]:
        """Results of ``circuits``; with ``groups`` (sizes, summing to their number), each group
        simulated on its own, as if it came alone."""
        start = time.perf_counter()
        results: list[Performance] = []
        for a, b in itertools.pairwise(itertools.accumulate(groups or [len(circuits)], initial=0)):
            results.extend(self.backend.simulate(circuits[a:b]))
        return results, time.perf_counter() - start


def ngspice_factory(circuits_per_deck: int = 50) -> BackendFactory:
    def make() -> SimulatorBackend:
        from simulator.ngspice import NgspiceBackend

        return NgspiceBackend(circuits_per_deck=circuits_per_deck)

    return make


@dataclass(frozen=True)
class BatchResult:
    """Results for a batch of input indices, with the wall time the worker spent per circuit."""

    indices: list[int]
    results: list[Performance]
    seconds_per_circuit: float


def call_batches(n: int, groups: Sequence[int] | None, size: int) -> list[tuple[list[int], list[int] | None]]:
    """How a pool sends ``n`` circuits: (indices, group sizes or None) per call of at most ``size``
    circuits. Without ``groups``, consecutive slices; with them (sizes summing to ``n``), whole groups
    packed in order, and a group larger than a call split as it would be if it came alone."""
    batches: list[tuple[list[int], list[int] | None]] = []
    start, packed = 0, []
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


class SimulationPool:
    """Runs circuits through ``num_workers`` Ray actors; yields results as batches finish."""

    def __init__(self, config: PoolConfig = PoolConfig(), factory: BackendFactory | None = None) -> None:
        import ray

        self._ray = ray
        self.config = config
        self._factory = factory or ngspice_factory(config.circuits_per_deck)
        self._actor_cls = ray.remote(num_cpus=config.num_cpus_per_worker, max_restarts=0)(SimulationWorker)
        self._actors = [self._spawn() for _ in range(config.num_workers)]
        try:
            self.simulator, self.version = ray.get(self._actors[0].info.remote(), timeout=config.startup_timeout_s)
        except ray.exceptions.GetTimeoutError:
            raise CktLoopError(f"no simulation worker started within {config.startup_timeout_s:g} s") from None
        self.replaced_workers = 0

    def _spawn(self) -> Any:
        return self._actor_cls.remote(self._factory)

    def _replace(self, actor: Any) -> Any:
        self._ray.kill(actor, no_restart=True)
        self.replaced_workers += 1
        fresh = self._spawn()
        # Wait until it runs: on a loaded machine starting a process takes seconds, which must not count
        # against the timeout of the first call it gets.
        try:
            self._ray.get(fresh.info.remote(), timeout=self.config.startup_timeout_s)
        except self._ray.exceptions.GetTimeoutError:
            raise CktLoopError(
                f"a replacement simulation worker did not start within {self.config.startup_timeout_s:g} s"
            ) from None
        self._actors[self._actors.index(actor)] = fresh
        return fresh

    def shutdown(self) -> None:
        for actor in self._actors:
            self._ray.kill(actor, no_restart=True)
        self._actors = []

    def simulate_all(self, circuits: Sequence[Circuit], groups: Sequence[int] | None = None) -> list[Performance]:
        """Every circuit's result, in input order (``run`` without the streaming)."""
        results: list[Performance | None] = [None] * len(circuits)
        for batch in self.run(circuits, groups):
            for i, perf in zip(batch.indices, batch.results):
                results[i] = perf
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
        queue = call_batches(len(circuits), groups, self.config.batch_size)
        queue.reverse()  # pop() from the end keeps input order
        isolate: list[int] = []  # indices to re-run alone after a failed batch
        running: dict[Any, tuple[Any, list[int], float, bool]] = {}  # ref -> (actor, indices, start, alone)
        while queue or isolate or running:
            self._dispatch(circuits, queue, isolate, running)
            ready, _ = self._ray.wait(list(running), num_returns=1, timeout=0.5)
            for ref in ready:
                actor, indices, _, alone = running.pop(ref)
                try:
                    results, seconds = self._ray.get(ref, timeout=self.config.timeout_s)  # ready: no wait
                except (self._ray.exceptions.RayActorError, self._ray.exceptions.WorkerCrashedError) as exc:
                    yield from self._lost(actor, indices, alone, running, isolate, SimStatus.CRASHED, str(exc))
                    continue
                yield BatchResult(indices, results, seconds / max(len(indices), 1))
            now = time.monotonic()
            for ref, (actor, indices, start, alone) in list(running.items()):
                if ref in running and now - start > self.config.timeout_s:
                    running.pop(ref)
                    message = f"no result within {self.config.timeout_s:g} s"
                    yield from self._lost(actor, indices, alone, running, isolate, SimStatus.TIMEOUT, message)

    def _dispatch(
        self,
        circuits: Sequence[Circuit],
        queue: list[tuple[list[int], list[int] | None]],
        isolate: list[int],
        running: dict[Any, tuple[Any, list[int], float, bool]],
    ) -> None:
        """Keep every actor busy. A circuit being isolated runs alone on an otherwise idle actor,
        so a hang or crash is pinned on the right circuit."""
        calls: dict[Any, list[bool]] = {actor: [] for actor in self._actors}
        for actor, _, _, alone in running.values():
            calls[actor].append(alone)
        for actor, flags in calls.items():
            while isolate or queue:
                if isolate and not flags:
                    alone, (indices, groups) = True, ([isolate.pop()], None)
                elif queue and not any(flags) and len(flags) < self.config.in_flight_per_worker:
                    alone, (indices, groups) = False, queue.pop()
                else:
                    break
                ref = actor.simulate.remote([circuits[i] for i in indices], groups)
                running[ref] = (actor, indices, time.monotonic(), alone)
                flags.append(alone)

    def _lost(
        self,
        actor: Any,
        indices: list[int],
        alone: bool,
        running: dict[Any, tuple[Any, list[int], float, bool]],
        isolate: list[int],
        status: SimStatus,
        message: str,
    ) -> Iterator[BatchResult]:
        """A call hung or its actor died: replace the actor, re-queue everything it held."""
        if actor in self._actors:
            self._replace(actor)
        casualties = [(indices, alone)]
        for ref, (other, other_indices, _, other_alone) in list(running.items()):
            if other is actor:  # other calls on the same actor die with it
                running.pop(ref)
                casualties.append((other_indices, other_alone))
        for lost, was_alone in casualties:
            if was_alone and lost is indices:
                yield BatchResult(lost, [Performance.failed(status, message.splitlines()[0][:500])], 0.0)
            else:
                isolate.extend(lost)

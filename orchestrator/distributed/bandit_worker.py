"""The bandit worker: the process that runs whole target searches for a campaign on Ray.

``BanditWorker`` is a plain class (tests run it in one process); the campaign driver wraps it with
``ray.remote`` and keeps one per target in flight. Its searches call the shared generator and
surrogate actors (``orchestrator.distributed.model_actors``), which batch the calls that arrive
together from many workers, and simulate on the worker's own ngspice pool. Every call to a model
actor has a timeout, so a hung actor fails the target instead of stalling the campaign.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from circuits import Circuit, CktLoopError, Performance
from circuits.specs import SpecClass, SpecClasses
from circuits.targets import Target
from orchestrator.design.search import SearchConfig, SearchOutcome, TargetSearch, family_proposer

MODEL_CALL_TIMEOUT_S = 300.0


class BanditWorker:
    """Runs whole target searches; Ray hosts one per target in flight. Models are shared actor handles
    (or plain hosts, called directly, in one process)."""

    def __init__(
        self,
        generator: Any | None,
        surrogate: Any | None,
        classes: dict[str, Any],
        known_classes: Sequence[SpecClass],
        simulators: int = 1,
        simulator_cpus: float = 1.0,
        simulate: Callable[[Sequence[Circuit]], list[Performance]] | None = None,
        call_timeout_s: float = MODEL_CALL_TIMEOUT_S,
    ) -> None:
        if call_timeout_s <= 0:
            raise CktLoopError(f"a model call timeout must be > 0 s, got {call_timeout_s}")
        self.generator, self.surrogate = generator, surrogate
        self.classes = SpecClasses.from_dict(classes)
        self.known = [tuple(c) for c in known_classes]
        self.call_timeout_s = call_timeout_s
        self.simulator_info = ("test", "0")
        if simulate is None:
            from orchestrator.distributed.simulation_pool import PoolConfig, SimulationPool

            pool = SimulationPool(PoolConfig(num_workers=simulators, num_cpus_per_worker=simulator_cpus))
            self.simulator_info = (pool.simulator, pool.version)
            simulate = pool.simulate_all
        self.simulate = simulate

    def simulator(self) -> tuple[str, str]:
        """(name, version) of the simulator that judges this worker's circuits."""
        return self.simulator_info

    def _call(self, handle: Any, method: str, *args: Any) -> Any:
        """A model call: through Ray (with the timeout) for an actor handle, directly for a plain object."""
        fn = getattr(handle, method)
        if not hasattr(fn, "remote"):
            return fn(*args)
        import ray

        try:
            return ray.get(fn.remote(*args), timeout=self.call_timeout_s)
        except ray.exceptions.GetTimeoutError:
            raise CktLoopError(f"the model actor's {method} gave no answer within {self.call_timeout_s:g} s") from None

    def search(self, target: Target, config: SearchConfig) -> SearchOutcome:
        if self.generator is None:
            propose = family_proposer()
            predict = None
        else:

            def propose(cls: SpecClass | None, n: int, seed: int) -> list[Circuit]:
                out = self._call(self.generator, "generate", [cls], n, seed, config.sampling)
                return [c for c in out if isinstance(c, Circuit)]

            def predict(circuits: Sequence[Circuit]) -> list[dict[str, Any]]:
                rows = self._call(self.surrogate, "predict", list(circuits))
                return [{k: v for k, v in r.items() if k != "embedding"} for r in rows]

        source = "generator" if self.generator is not None else "random"
        search = TargetSearch(target, self.classes, self.known, propose, predict, self.simulate, config, source)
        return search.run()

"""Design campaigns on Ray: many targets, one bandit worker per target in flight, results in the store.

Layout on Ray: one generator actor and one surrogate actor shared by every worker (nothing is
loaded twice), ``workers`` bandit workers (``BanditWorker``, a plain class wrapping
``orchestrator.design.search.TargetSearch``), each with its own ngspice actor(s). The driver hands out the
unfinished targets, and as each search returns it writes candidates, simulations, the refinement
and the verdict to the store. Searches are seeded per target, so a campaign killed at any point
and run again skips finished targets and re-runs the others to the same rows: no duplicates.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from circuits import Circuit, CktLoopError, Performance
from circuits.specs import SpecClass, SpecClasses
from circuits.targets import Target
from orchestrator.design.campaign_file import Campaign
from orchestrator.design.search import SearchConfig, SearchOutcome, TargetSearch, family_proposer
from orchestrator.distributed.model_actors import ActorResources


@dataclass(frozen=True)
class CampaignSettings:
    """What runs a campaign: models, search knobs and resources (all from config or the CLI)."""

    generator: str | None  # checkpoint; None searches by plain random sampling of the family
    surrogate: str | None
    search: SearchConfig = field(default_factory=SearchConfig)
    workers: int = 2  # bandit workers in flight
    simulators_per_worker: int = 1
    simulator_cpus: float = 1.0
    model_resources: ActorResources = field(default_factory=lambda: ActorResources(num_cpus=0.0))
    seed: int = 0

    @property
    def source(self) -> str:
        return "generator" if self.generator else "random"

    def describe(self) -> dict[str, Any]:
        """What must not change between a campaign's runs (it is stored with the campaign)."""
        return {"source": self.source, "search": asdict(self.search), "seed": self.seed}


def target_seed(campaign_seed: int, name: str) -> int:
    """A stable per-target seed, so a re-run repeats a target's search exactly."""
    digest = hashlib.sha256(f"{campaign_seed}:{name}".encode()).hexdigest()
    return int(digest[:8], 16)


class BanditWorker:
    """Runs whole target searches; Ray hosts one per target in flight. Models are shared actor handles."""

    def __init__(
        self,
        generator: Any | None,
        surrogate: Any | None,
        classes: dict[str, Any],
        known_classes: Sequence[SpecClass],
        simulators: int = 1,
        simulator_cpus: float = 1.0,
        simulate: Callable[[Sequence[Circuit]], list[Performance]] | None = None,
    ) -> None:
        self.generator, self.surrogate = generator, surrogate
        self.classes = SpecClasses.from_dict(classes)
        self.known = [tuple(c) for c in known_classes]
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
        """A model call: through Ray for an actor handle, directly for a plain object (tests, one process)."""
        fn = getattr(handle, method)
        if hasattr(fn, "remote"):
            import ray

            return ray.get(fn.remote(*args))
        return fn(*args)

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


@dataclass
class Progress:
    """What the progress display shows."""

    total: int
    done: int = 0
    met: int = 0
    simulations: int = 0
    started: float = field(default_factory=time.monotonic)
    recorded: float = field(default_factory=time.monotonic)  # up to when this run's time is in the store


def run_campaign(
    store: Any,
    campaign: Campaign,
    settings: CampaignSettings,
    address: str | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    reference_rows: Iterable[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Run (or resume) ``campaign`` and return its summary; see the module docstring."""
    config = {
        "campaign": {
            "name": campaign.name,
            "budget": campaign.budget,
            "targets": [{"name": t.name, "bounds": _bounds(t)} for t in campaign.targets],
        },
        "settings": settings.describe(),
    }
    campaign_id = store.ensure_campaign(campaign.name, config)
    ids = store.ensure_targets(campaign_id, [{"name": t.name, "bounds": _bounds(t)} for t in campaign.targets])
    pending = {row["name"] for row in store.unfinished_targets(campaign_id)}
    todo = [t for t in campaign.targets if t.name in pending]
    progress = Progress(total=len(campaign.targets), done=len(campaign.targets) - len(todo))
    progress.met = sum(1 for row in store.campaign_targets(campaign_id) if row.get("met"))
    reference = list(reference_rows) if reference_rows is not None else []
    if on_progress:
        on_progress(progress)
    if todo:
        workers, versions = _start(settings, address)
        _dispatch(store, ids, todo, workers, settings, campaign, versions, progress, on_progress, reference)
    summary = store.campaign(campaign_id)
    summary["wall_s"] = time.monotonic() - progress.started
    return summary


def _bounds(target: Target) -> dict[str, dict[str, float | None]]:
    return {f: {"min": b.low, "max": b.high} for f, b in target.bounds}


def _start(settings: CampaignSettings, address: str | None) -> tuple[list[Any], dict[str, str | None]]:
    """Model actors (shared) and the bandit workers, on a local Ray or the cluster at ``address``."""
    import ray

    from orchestrator.distributed.model_actors import GeneratorHost, SurrogateHost, start_actor
    from orchestrator.distributed.runtime import ensure_ray

    ensure_ray(address)
    generator = surrogate = None
    versions: dict[str, str | None] = {"generator": None, "surrogate": None}
    classes: dict[str, Any] = {}
    known: list[SpecClass] = []
    if settings.generator:
        if not settings.surrogate:
            raise CktLoopError("a generator campaign needs a surrogate checkpoint too")
        generator = start_actor(GeneratorHost, settings.generator, settings.model_resources)
        surrogate = start_actor(SurrogateHost, settings.surrogate, settings.model_resources)
        versions["generator"] = ray.get(generator.version.remote())
        versions["surrogate"] = ray.get(surrogate.version.remote())
        classes = ray.get(generator.spec_classes.remote())
        known = ray.get(generator.train_classes.remote())
    else:
        from circuits.specs import spec_classes

        classes = spec_classes("ocb").to_dict()
    worker_cls = ray.remote(num_cpus=0)(BanditWorker)
    workers = [
        worker_cls.remote(generator, surrogate, classes, known, settings.simulators_per_worker, settings.simulator_cpus)
        for _ in range(settings.workers)
    ]
    versions["simulator"], versions["simulator_version"] = ray.get(workers[0].simulator.remote())
    return workers, versions


def _dispatch(
    store: Any,
    ids: dict[str, int],
    todo: list[Target],
    workers: list[Any],
    settings: CampaignSettings,
    campaign: Campaign,
    versions: dict[str, str | None],
    progress: Progress,
    on_progress: Callable[[Progress], None] | None,
    reference: list[dict[str, Any]],
) -> None:
    import ray

    queue = list(reversed(todo))
    running: dict[Any, tuple[Any, Target]] = {}

    def submit(worker: Any) -> None:
        target = queue.pop()
        search = replace(settings.search, budget=campaign.budget, seed=target_seed(settings.seed, target.name))
        running[worker.search.remote(target, search)] = (worker, target)

    for worker in workers:
        if queue:
            submit(worker)
    while running:
        ready, _ = ray.wait(list(running), num_returns=1)
        worker, target = running.pop(ready[0])
        outcome: SearchOutcome = ray.get(ready[0])
        save_outcome(store, ids[target.name], outcome, versions, reference)
        now = time.monotonic()  # the run's time so far goes on record with each target, so a killed run counts too
        store.add_campaign_time(campaign.name, now - progress.recorded)
        progress.recorded = now
        progress.done += 1
        progress.met += int(outcome.met)
        progress.simulations += outcome.n_simulations
        if on_progress:
            on_progress(progress)
        if queue:
            submit(worker)


def dataset_best_fom(target: Target, rows: Iterable[dict[str, Any]]) -> float | None:
    """The best FoM of any reference circuit (a dataset row) that meets ``target``."""
    foms = [r["fom"] for r in rows if r.get("fom") is not None and target.met_by(r)]
    return max(foms) if foms else None


def save_outcome(
    store: Any,
    target_id: int,
    outcome: SearchOutcome,
    versions: dict[str, str | None],
    reference: list[dict[str, Any]],
) -> None:
    """Write one target's candidates, simulations, refinement and verdict (idempotent)."""
    from storage import CandidateRecord

    proposals = list(outcome.proposals.values())
    first = [p for p in proposals if p.source != "refine"]
    refined = [p for p in proposals if p.source == "refine"]

    def record(p: Any, parent: int | None) -> CandidateRecord:
        version = versions.get("generator") if p.source == "generator" else None
        return CandidateRecord(p.circuit, p.source, p.spec_class, p.predicted, version, parent, p.round)

    first_ids = store.add_candidates(target_id, [record(p, None) for p in first])
    cand_ids = dict(zip((p.circuit.key for p in first), first_ids))
    for r in outcome.refinements:  # refined circuits, each child of the candidate its NSGA-II run started from
        children = [p for p in refined if p.parent == r["seed"]]
        if children:
            ids = store.add_candidates(target_id, [record(p, cand_ids[r["seed"]]) for p in children])
            cand_ids.update(zip((p.circuit.key for p in children), ids))
    simulated = [(p.circuit.key, p.measured, None) for p in proposals if p.measured is not None]
    store.add_simulations(str(versions["simulator"]), str(versions["simulator_version"]), simulated)
    for r in outcome.refinements:
        store.add_refinement(
            target_id,
            cand_ids[r["seed"]],
            cand_ids.get(r["result"]),
            r["n_evaluations"],
            r["fom_before"],
            r["fom_after"],
            r["history"],
        )
    winner_id = cand_ids.get(outcome.winner) if outcome.winner else None
    summary = {
        "class_mode": outcome.class_mode,
        "arms": [None if a is None else list(a) for a in outcome.arms],
        "arm_pulls": outcome.arm_pulls,
        "history": [[n, f] for n, f in outcome.history],
        "dataset_best_fom": dataset_best_fom(outcome.target, reference) if reference else None,
        "generator": versions.get("generator"),
        "surrogate": versions.get("surrogate"),
    }
    store.finish_target(target_id, outcome.met, winner_id, outcome.n_simulations, summary)


def load_reference(store: Any, dataset: str | None) -> list[dict[str, Any]]:
    """Rows to judge "best FoM of any dataset circuit meeting the target"; empty without a dataset."""
    if not dataset:
        return []
    return [r for r in store.dataset_rows(dataset) if r.get("status") == "ok"]


def default_paths() -> tuple[Path, Path]:
    """The shipped design models (on the cktloop classes), which campaigns use unless told otherwise."""
    from generator.predict import DESIGN_CHECKPOINT as generator
    from surrogate.predict import DESIGN_CHECKPOINT as surrogate

    return generator, surrogate

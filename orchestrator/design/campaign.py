"""Design campaigns on Ray: many targets, one bandit worker per target in flight, results in the store.

Layout on Ray (where each goes: ``orchestrator.distributed.placement``): one generator actor and one
surrogate actor shared by the workers (one pair per node offering ``model``; each batches the calls
that arrive together), ``workers`` bandit workers
(``orchestrator.distributed.bandit_worker.BanditWorker``), each searching ``searches_per_worker``
targets at once in threads (their model calls overlap, so the actors batch them, and a search waiting
on a model or on ngspice costs no CPU) and owning ngspice actor(s), which share the node's CPUs unless
``simulator_cpus`` says otherwise. The driver hands out the unfinished targets, and as each search
returns it writes candidates, simulations, the refinement and the verdict to the store. A search that
raises leaves its target failed with the reason, and the campaign goes on; one with no answer within
``target_timeout_s`` too, and its worker is replaced (the worker's other targets are searched again on
the new one). A worker lost (its process or its node died) is not replaced: its targets go back in the
queue for the others (each at most ``WORKER_LOSSES`` times), and the campaign goes on with fewer
workers. A re-run retries failed targets. A run given ``should_stop`` checks it every ``STOP_POLL_S``
and, once it says so, drops the searches in flight (their targets stay pending).
Searches are seeded per target, so a campaign killed at any point and run again skips finished
targets and re-runs the others to the same rows: no duplicates.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from circuits import CktLoopError
from circuits.specs import SpecClass
from circuits.targets import Target
from orchestrator.design.campaign_file import Campaign
from orchestrator.design.reuse import EVERY_DATASET, DatasetRows, build_library
from orchestrator.design.search import SearchConfig, SearchOutcome
from orchestrator.distributed.bandit_worker import MODEL_CALL_TIMEOUT_S
from orchestrator.distributed.model_actors import ActorResources
from storage import CommitUnknown

STOP_POLL_S = 1.0  # how often a run with ``should_stop`` asks it
WORKER_LOSSES = 2  # times a target's search may lose its bandit worker before the target fails


@dataclass(frozen=True)
class CampaignSettings:
    """What runs a campaign: models, search knobs and resources (all from config or the CLI)."""

    generator: str | None  # checkpoint; None searches by plain random sampling of the family
    surrogate: str | None
    search: SearchConfig = field(default_factory=SearchConfig)
    workers: int = 2  # bandit worker processes
    searches_per_worker: int = 16  # targets each worker searches at once (16: model batches of about 6 calls)
    simulators_per_worker: int = 1
    simulator_cpus: float | None = None  # per ngspice actor; None: the node's CPUs shared by all of them
    model_resources: ActorResources = field(default_factory=lambda: ActorResources(num_cpus=0.0))
    seed: int = 0
    target_timeout_s: float = 3600.0  # one target's whole search
    call_timeout_s: float = MODEL_CALL_TIMEOUT_S  # one model call
    startup_timeout_s: float = 300.0  # actors starting and loading their models
    reuse: int = 5  # stored verified circuits nearest each target, a search's start (orchestrator.design.reuse)
    reuse_dataset: str | None = EVERY_DATASET  # whose training split reused circuits come from too (None: none)

    def __post_init__(self) -> None:
        if self.reuse < 0:
            raise CktLoopError(f"campaign settings: reuse must be >= 0, got {self.reuse}")
        for name in ("workers", "searches_per_worker", "simulators_per_worker"):
            if getattr(self, name) < 1:
                raise CktLoopError(f"campaign settings: {name} must be >= 1, got {getattr(self, name)}")
        for name in ("simulator_cpus", "target_timeout_s", "call_timeout_s", "startup_timeout_s"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise CktLoopError(f"campaign settings: {name} must be > 0, got {value}")

    @property
    def source(self) -> str:
        return "generator" if self.generator else "random"

    def describe(self) -> dict[str, Any]:
        """What must not change between a campaign's runs (it is stored with the campaign)."""
        search = asdict(self.search)
        if search["verify"] == "rank":  # the default, left out so campaigns stored before the option resume
            del search["verify"], search["ucb_kappa"]
        if search["refine_screen"] == 1.0:  # likewise: unscreened refinement, as before the option
            del search["refine_screen"]
        if search["refine_kappa"] == 0.0 or "refine_screen" not in search:  # the default, or no screening
            del search["refine_kappa"]
        if search["refine_near"] == 0.0:  # off, as before the option
            del search["refine_near"]
        described = {"source": self.source, "search": search, "seed": self.seed}
        if self.reuse:  # left out when off, so campaigns stored before the option resume
            described["reuse"] = {"n": self.reuse, "dataset": self.reuse_dataset}
        return described


def target_seed(campaign_seed: int, name: str) -> int:
    """A stable per-target seed, so a re-run repeats a target's search exactly."""
    digest = hashlib.sha256(f"{campaign_seed}:{name}".encode()).hexdigest()
    return int(digest[:8], 16)


@dataclass
class Progress:
    """What the progress display shows."""

    total: int
    done: int = 0
    met: int = 0
    failed: int = 0
    simulations: int = 0
    started: float = field(default_factory=time.monotonic)
    recorded: float = field(default_factory=time.monotonic)  # up to when this run's time is in the store
    rerun: int = 0  # searches run again because their bandit worker was lost


def run_campaign(
    store: Any,
    campaign: Campaign,
    settings: CampaignSettings,
    address: str | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    reference_rows: Iterable[dict[str, Any]] | None = None,
    should_stop: Callable[[], bool] | None = None,
    datasets: DatasetRows | None = None,
) -> dict[str, Any]:
    """Run (or resume) ``campaign`` and return its summary; see the module docstring. ``datasets`` keeps the
    datasets' rows reuse reads between runs (a service's jobs)."""
    targets = [{"name": t.name, "bounds": _bounds(t)} for t in campaign.targets]
    config = {
        "campaign": {"name": campaign.name, "budget": campaign.budget, "targets": targets},
        "settings": settings.describe(),
    }
    if address:  # an unreachable cluster fails here, before anything is stored
        from orchestrator.distributed.runtime import ensure_ray

        ensure_ray(address)
    if settings.reuse and settings.reuse_dataset is not None:  # a name not in the store: one line, nothing stored
        store.chosen_datasets(settings.reuse_dataset, "reuse")
    campaign_id = store.ensure_campaign(campaign.name, config)
    ids = store.ensure_targets(campaign_id, targets)
    pending = {row.name for row in store.unfinished_targets(campaign_id)}
    todo = [t for t in campaign.targets if t.name in pending]
    progress = Progress(total=len(campaign.targets), done=len(campaign.targets) - len(todo))
    progress.met = sum(1 for row in store.campaign_targets(campaign_id) if row.met)
    reference = list(reference_rows) if reference_rows is not None else []
    if on_progress:
        on_progress(progress)
    if todo and not (should_stop and should_stop()):
        n_workers = min(settings.workers, -(-len(todo) // settings.searches_per_worker))
        library = None
        if settings.reuse and settings.source == "generator":
            library = build_library(store, [campaign.name], settings.reuse_dataset, datasets)
        spawn, workers, versions = _start(settings, address, n_workers)
        driver = CampaignDriver(
            store, campaign_id, ids, settings, campaign.budget, versions, progress, reference, library
        )
        driver.run(todo, spawn, workers, on_progress, should_stop)
    summary = asdict(store.campaign(campaign_id))
    summary["wall_s"] = time.monotonic() - progress.started
    summary["rerun"] = progress.rerun
    return summary


def _bounds(target: Target) -> dict[str, dict[str, float | None]]:
    return {f: {"min": b.low, "max": b.high} for f, b in target.bounds}


def _start(
    settings: CampaignSettings, address: str | None, n_workers: int
) -> tuple[Callable[[], Any], list[Any], dict[str, Any]]:
    """Model actors (shared; placed by ``orchestrator.distributed.placement``) on a local Ray or the cluster
    at ``address``; a function that starts a bandit worker and ``n_workers`` started; the versions of the
    models and the simulator, and the nodes of the model actors."""
    import ray

    from orchestrator.distributed.bandit_worker import BanditWorker
    from orchestrator.distributed.model_actors import GeneratorActor, SurrogateActor, start_actor
    from orchestrator.distributed.placement import bandit_options, model_nodes, sim_nodes
    from orchestrator.distributed.runtime import ensure_ray

    ensure_ray(address)

    def get(ref: Any, what: str) -> Any:
        try:
            return ray.get(ref, timeout=settings.startup_timeout_s)
        except ray.exceptions.GetTimeoutError:
            raise CktLoopError(f"{what} did not start within {settings.startup_timeout_s:g} s") from None

    models: list[tuple[Any, Any]] = [(None, None)]  # (generator, surrogate) pairs, one per `model` node
    versions: dict[str, Any] = {"generator": None, "surrogate": None}
    classes: dict[str, Any] = {}
    known: list[SpecClass] = []
    if settings.generator:
        if not settings.surrogate:
            raise CktLoopError("a generator campaign needs a surrogate checkpoint too")
        resources = settings.model_resources
        models = [
            (
                start_actor(GeneratorActor, settings.generator, resources, node=node),
                start_actor(SurrogateActor, settings.surrogate, resources, node=node),
            )
            for node in list[str | None](model_nodes()) or [None]
        ]
    else:
        from circuits.specs import spec_classes

        classes = spec_classes("ocb").to_dict()
    simulators = settings.workers * settings.simulators_per_worker
    cpus = settings.simulator_cpus or min(1.0, ray.cluster_resources().get("CPU", 1.0) / simulators)
    pairs = itertools.cycle(models)  # each worker is given the next pair of model actors
    turns = itertools.count()  # and the next node offering `sim`, as its home

    def spawn() -> Any:
        generator, surrogate = next(pairs)
        homes = sim_nodes()
        home = homes[next(turns) % len(homes)] if homes else None
        worker_cls = ray.remote(**bandit_options(settings.searches_per_worker, home))(BanditWorker)
        # With a generator, the worker asks it for the classes once its simulators are up (None, None), so
        # workers and their ngspice actors start while the models load instead of after.
        given = (None, None) if settings.generator else (classes, known)
        return worker_cls.remote(
            generator, surrogate, *given, settings.simulators_per_worker, cpus, None, settings.call_timeout_s
        )

    workers = [spawn() for _ in range(n_workers)]
    if settings.generator:
        generator, surrogate = models[0]
        try:
            versions["generator"] = get(generator.version.remote(), "the generator actor")
            versions["surrogate"] = get(surrogate.version.remote(), "the surrogate actor")
            where = [actor.node.remote() for pair in models for actor in pair]
            versions["model_nodes"] = sorted(set(get(where, "the model actors")))
        except ray.exceptions.RayActorError as e:
            reason = str(e).strip().splitlines()[0]
            raise CktLoopError(f"the model actors were lost during start-up (their node lost?): {reason}") from None
    workers, versions["simulator"], versions["simulator_version"] = _alive(workers, spawn, get)
    return spawn, workers, versions


def _alive(workers: list[Any], spawn: Callable[[], Any], get: Callable[[Any, str], Any]) -> tuple[Any, ...]:
    """The workers that came up, each dead one replaced once (a node lost as the campaign starts, or one
    lost just before whose death Ray has not yet noticed, so a worker was placed on it), and the simulator
    and its version as the first of them reports it."""
    import ray

    alive, answer = [], None
    for attempt in range(2):
        dead = 0
        for worker in workers:
            try:
                answer = get(worker.simulator.remote(), "a bandit worker")
                alive.append(worker)
            except ray.exceptions.RayActorError:
                dead += 1
        if not dead or attempt:
            break
        workers = [spawn() for _ in range(dead)]
    if answer is None:
        raise CktLoopError("no bandit worker came up: each was lost with its node during start-up")
    return alive, *answer


@dataclass
class CampaignDriver:
    """Hands targets to bandit workers (Ray actors with a ``search(target, config)`` method) and stores
    each outcome, or the target's failure with its reason, as it comes."""

    store: Any
    campaign_id: int
    ids: dict[str, int]
    settings: CampaignSettings
    budget: int
    versions: dict[str, str | None]
    progress: Progress
    reference: list[dict[str, Any]]
    library: Any = None  # orchestrator.design.reuse.Library: stored circuits a search starts from

    def run(
        self,
        todo: list[Target],
        spawn: Callable[[], Any],
        workers: list[Any],
        on_progress: Callable[[Progress], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        """Search every target of ``todo`` on ``workers``, ``searches_per_worker`` at a time each;
        ``spawn`` starts a worker to replace a lost one."""
        import ray

        queue = list(reversed(todo))
        running: dict[Any, tuple[Any, Target, float]] = {}  # search ref -> (worker, target, started)
        workers = list(workers)

        def fill() -> None:
            """Hand queued targets out one at a time to the least busy worker (so a campaign of fewer targets
            than the workers' room spreads over every worker and node), each up to ``searches_per_worker``."""
            busy = [sum(1 for w, _, _ in running.values() if w is worker) for worker in workers]
            while queue and workers:
                i = min(range(len(workers)), key=busy.__getitem__)
                if busy[i] >= self.settings.searches_per_worker:
                    return
                target = queue.pop()
                search = replace(
                    self.settings.search, budget=self.budget, seed=target_seed(self.settings.seed, target.name)
                )
                reuse = self.library.nearest(target, self.settings.reuse) if self.library is not None else []
                ref = workers[i].search.remote(target, search, reuse)
                running[ref] = (workers[i], target, time.monotonic())
                busy[i] += 1

        losses: dict[str, int] = {}  # target -> how often a worker was lost under its search

        def drop_worker(worker: Any) -> list[Target]:
            """Kill ``worker`` and forget it; the targets it was searching."""
            refs = [ref for ref, (w, _, _) in running.items() if w is worker]
            mine = [running.pop(ref)[1] for ref in refs]
            ray.kill(worker, no_restart=True)
            workers.remove(worker)
            return mine

        def replace_worker(worker: Any) -> None:
            """Kill ``worker`` (a search of it hung) and start another; its other searches are searched again."""
            queue.extend(drop_worker(worker))
            workers.append(spawn())

        def lose_worker(worker: Any, target: Target, reason: str) -> None:
            """``worker`` was lost (its process or its node died): its searches, ``target``'s included, are
            searched again by the others, each target at most ``WORKER_LOSSES`` times (then it fails with
            ``reason``); the campaign goes on with fewer workers, or a new one when none is left."""
            for lost in [target, *drop_worker(worker)]:
                losses[lost.name] = losses.get(lost.name, 0) + 1
                if losses[lost.name] <= WORKER_LOSSES:
                    queue.append(lost)
                    self.progress.rerun += 1
                else:
                    self._record(lost, None, reason)
            if not workers:
                workers.append(spawn())

        fill()
        while running:
            if should_stop is not None and should_stop():
                break  # the searches in flight go with their workers; their targets stay pending
            oldest = min(started for _, _, started in running.values())
            wait_s = max(0.0, oldest + self.settings.target_timeout_s - time.monotonic())
            poll_s = wait_s if should_stop is None else min(wait_s, STOP_POLL_S)
            ready, _ = ray.wait(list(running), num_returns=1, timeout=poll_s)
            if not ready and poll_s < wait_s:
                continue
            ref = ready[0] if ready else min(running, key=lambda r: running[r][2])
            worker, target, _ = running.pop(ref)
            outcome, reason = None, f"no result within {self.settings.target_timeout_s:g} s"
            lost = False
            if not ready:
                replace_worker(worker)  # a hung search holds its thread: the worker goes
            else:
                try:
                    outcome = ray.get(ref, timeout=self.settings.call_timeout_s)  # ready: no wait
                except ray.exceptions.RayTaskError as exc:
                    reason = _reason(exc.cause)
                except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError) as exc:
                    lost = True
                    lose_worker(worker, target, f"its bandit worker was lost: {_reason(exc)}")
            fill()
            if not lost:
                self._record(target, outcome, reason)
            if on_progress:
                on_progress(self.progress)
        for worker in workers:
            ray.kill(worker, no_restart=True)

    def _record(self, target: Target, outcome: SearchOutcome | None, reason: str) -> None:
        """Store a target's outcome, or its failure (an outcome the store refuses fails it too)."""
        if outcome is not None:
            try:
                save_outcome(self.store, self.ids[target.name], outcome, self.versions, self.reference)
            except CktLoopError as exc:
                outcome, reason = None, f"its outcome could not be stored: {_reason(exc)}"
        if outcome is not None:
            self.progress.met += int(outcome.met)
            self.progress.simulations += outcome.n_simulations
        else:
            self.store.fail_target(self.ids[target.name], reason)
            self.progress.failed += 1
        now = time.monotonic()  # the run's time so far goes on record with each target, so a killed run counts too
        with contextlib.suppress(CommitUnknown):  # lost while committing: the time counted once at most
            self.store.add_campaign_time(self.campaign_id, now - self.progress.recorded)
        self.progress.recorded = now
        self.progress.done += 1


def _reason(exc: BaseException | None) -> str:
    """One line naming what went wrong (the exception's type and the first line of its message)."""
    if exc is None:
        return "unknown error"
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


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
        # the generator version that proposed it; the surrogate version that ranked it (it has a prediction)
        version = versions.get("generator") if p.source == "generator" else None
        ranked = versions.get("surrogate") if p.predicted is not None else None
        return CandidateRecord(p.circuit, p.source, p.spec_class, p.predicted, version, parent, p.round, ranked)

    first_ids = store.add_candidates(target_id, [record(p, None) for p in first])
    cand_ids = dict(zip((p.circuit.key for p in first), first_ids))
    for r in outcome.refinements:  # refined circuits, each child of the candidate its NSGA-II run started from
        children = [p for p in refined if p.parent == r["seed"]]
        if children:
            ids = store.add_candidates(target_id, [record(p, cand_ids[r["seed"]]) for p in children])
            cand_ids.update(zip((p.circuit.key for p in children), ids))
    simulated = [(p.circuit.key, p.measured, None) for p in outcome.simulated()]
    store.add_simulations(str(versions["simulator"]), str(versions["simulator_version"]), simulated, outcome.nodes)
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
        "first_met": outcome.first_met,  # simulations up to and including the first met circuit (None: none)
        "dataset_best_fom": dataset_best_fom(outcome.target, reference) if reference else None,
        "generator": versions.get("generator"),
        "surrogate": versions.get("surrogate"),
        "model_nodes": versions.get("model_nodes"),  # the Ray nodes of the model actors (None: no models)
    }
    store.finish_target(target_id, outcome.met, winner_id, outcome.n_simulations, summary)


def load_reference(store: Any, dataset: str | None) -> list[dict[str, Any]]:
    """Rows to judge "best FoM of any dataset circuit meeting the target"; empty without a dataset."""
    if not dataset:
        return []
    return [r.measured.to_dict() for r in store.dataset_rows(dataset) if r.measured.status == "ok"]


def default_paths() -> tuple[Path, Path]:
    """The shipped design models (on the cktloop classes), which campaigns use unless told otherwise."""
    from generator.paths import DESIGN_CHECKPOINT as generator
    from surrogate.paths import DESIGN_CHECKPOINT as surrogate

    return generator, surrogate

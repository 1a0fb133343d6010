"""The search for one design target: a bandit over spec classes, the surrogate ranks, ngspice decides.

``TargetSearch`` is a plain class driven by three functions, so it runs the same in a test, in one
process, or in a Ray actor whose functions call the shared model actors and a simulation pool:

* ``propose(spec_class, n, seed)``: n circuits of a class (the generator), or of the family at random;
* ``predict(circuits)``: the surrogate's predicted specs (gain_db, ugbw_hz, pm_deg where it has one) and FoM;
* ``simulate(circuits)``: ngspice's verdict, one batch per call.

One round: ``pulls_per_round`` bandit pulls, each generating ``pull_size`` circuits of the chosen
class and scoring them with the surrogate (reward = the best predicted closeness to the target,
in [0, 1]); then the ``verify_per_round`` best-ranked new circuits are simulated, and each verified
circuit rewards its arm again with its measured closeness, so a surrogate that is wrong about a class
cannot hold the bandit there; half of each verification round is drawn at random from the rest, so
a poor surrogate cannot starve the search of diversity. With ``verify="ucb"`` and an ensemble surrogate
(one that answers a ``std``), the ranked half goes by an optimistic closeness instead: each predicted
spec moved up to ``ucb_kappa`` deviations towards the target's bounds, so circuits the surrogate is unsure
of but that could meet a narrow window are simulated too (issue 19; docs/loop.md compares the two).
Rounds go on until the search share of the budget is spent, even after a circuit meets the target: more
verified topologies give refinement better seeds, and on 100 paper-style targets that took the winners
whose FoM beats the dataset's best from 44 to 80; only while none meets it and one misses it by at most
``refine_near`` does the search phase end early, since refining that one now is worth more. Given stored
circuits to ``reuse`` (``orchestrator.design.reuse``: the store's verified circuits nearest the target,
each with its stored measurement), the search simulates those whose measurement meets the target first;
the others start the search as known misses, taken at their measurement without a simulation (ngspice
is deterministic: simulating them again would only repeat the miss), and refinement can start from
them. Refinement (``orchestrator.design.refine``) then resizes the best
verified distinct topologies (``refine_seeds``) by successive halving over NSGA-II runs and ends with a
compass polish of the best sizing; with ``refine_screen`` > 1 refinement breeds that many sizings per
simulation and the same surrogate picks which to simulate (``orchestrator.design.screen``). The winner
is the highest-FoM circuit that meets the target by measurement, or the least-violating one when none
does. Every simulation counts against the budget; the surrogate never decides whether a target is met.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from circuits import Circuit, Performance
from circuits.family import FamilyConfig, random_sizing, random_topology
from circuits.specs import TARGET_FIELDS, SpecClass, SpecClasses
from circuits.targets import Target, valid_classes
from generator.sampling import SAMPLING
from orchestrator.design.bandit import POLICIES
from orchestrator.design.constraints import constraint_values
from orchestrator.design.refine import RefineConfig, SizingRun
from orchestrator.design.screen import Screen, optimistic, predicted_performance, predicted_specs

VERIFY = ("rank", "ucb")
Propose = Callable[[SpecClass | None, int, int], list[Circuit]]
Predict = Callable[[Sequence[Circuit]], list[dict[str, Any]]]
Simulate = Callable[[Sequence[Circuit]], list[Performance]]


@dataclass(frozen=True)
class StoredCircuit:
    """A circuit the store holds, with the measurement it holds for it: a search may start from it."""

    circuit: Circuit
    measured: Performance


@dataclass(frozen=True)
class SearchConfig:
    """How one target is searched; ``budget`` counts simulations, refinement included."""

    budget: int = 500
    policy: str = "ucb1"
    pull_size: int = 10  # circuits per pull (the paper's 10)
    pulls_per_round: int = 6
    verify_per_round: int = 20
    explore_share: float = 0.5  # of each verification round, drawn at random from the unranked rest
    refine_share: float = 0.6  # of the budget, kept for refinement once the search phase ends (0: no refinement)
    refine_seeds: int = 4  # distinct verified topologies refined, by successive halving
    refine_pop: int = 20
    refine_rung: int = 2  # NSGA-II generations per seed before the worse half of the seeds is dropped
    polish_share: float = 0.3  # of the refinement budget, kept for the compass polish of the best sizing
    refine_screen: float = 8.0  # refinement breeds this many sizings per simulation, the surrogate picks (1: off)
    refine_kappa: float = 0.0  # an ensemble's deviations a prediction may move towards the target in that pick
    refine_near: float = 0.1  # refine at once when a verified circuit is this close and none meets yet (0: off)
    family_arm: bool = True  # one more arm: plain random circuits of the family, so the generator must earn its pulls
    sampling: str = "bank"  # generator latents: "bank" (around training circuits of the class) or "spec" (the paper)
    verify: str = "rank"  # the ranked share: "rank" (best predicted) or "ucb" (best optimistic, by the surrogate's std)
    ucb_kappa: float = 2.0  # deviations a prediction may move towards the target under "ucb"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"unknown bandit policy {self.policy!r} (known: {', '.join(POLICIES)})")
        if self.sampling not in SAMPLING:
            raise ValueError(f"unknown generator sampling {self.sampling!r} (known: {', '.join(SAMPLING)})")
        if self.verify not in VERIFY:
            raise ValueError(f"unknown verification rule {self.verify!r} (known: {', '.join(VERIFY)})")
        if not self.ucb_kappa >= 0.0:
            raise ValueError(f"SearchConfig.ucb_kappa must be >= 0, got {self.ucb_kappa}")
        if not 1.0 <= self.refine_screen <= 100.0:
            raise ValueError(f"SearchConfig.refine_screen must be in [1, 100], got {self.refine_screen}")
        if not self.refine_kappa >= 0.0:
            raise ValueError(f"SearchConfig.refine_kappa must be >= 0, got {self.refine_kappa}")
        if not 0.0 <= self.refine_near <= 1.0:
            raise ValueError(f"SearchConfig.refine_near must be in [0, 1], got {self.refine_near}")
        for name in (
            "budget",
            "pull_size",
            "pulls_per_round",
            "verify_per_round",
            "refine_seeds",
            "refine_pop",
            "refine_rung",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"SearchConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.refine_share < 1.0:
            raise ValueError(f"SearchConfig.refine_share must be in [0, 1), got {self.refine_share}")
        if not 0.0 <= self.polish_share < 1.0:
            raise ValueError(f"SearchConfig.polish_share must be in [0, 1), got {self.polish_share}")
        if not 0.0 <= self.explore_share <= 1.0:
            raise ValueError(f"SearchConfig.explore_share must be in [0, 1], got {self.explore_share}")

    @property
    def search_budget(self) -> int:
        return max(1, self.budget - int(self.budget * self.refine_share))


@dataclass
class Proposal:
    """A circuit the search produced, with where it came from and what is known about it."""

    circuit: Circuit
    source: str  # "generator", "random", "refine" or "store" (reused, orchestrator.design.reuse)
    spec_class: SpecClass | None
    round: int
    predicted: dict[str, float] | None = None
    std: dict[str, float] | None = None  # an ensemble surrogate's spread (gain_db, ugbw_dec, the PM field, fom)
    measured: Performance | None = None
    parent: str | None = None  # circuit key of the refined seed
    known: bool = False  # measured by the store before this search, not simulated by it (a reused miss)


@dataclass
class SearchOutcome:
    """Everything a target's search produced, ready to be stored and reported."""

    target: Target
    met: bool
    winner: str | None  # circuit key
    class_mode: str  # "inside", "overlap" or "none" (no class of the data fits: searched over all)
    arms: list[SpecClass | None]  # None: the family arm
    proposals: dict[str, Proposal]  # by circuit key, in order of appearance
    n_simulations: int
    history: list[tuple[int, float | None]]  # (simulations so far, best FoM of a met circuit so far)
    refinements: list[dict[str, Any]] = field(default_factory=list)
    arm_pulls: list[int] = field(default_factory=list)
    nodes: dict[str, str] = field(default_factory=dict)  # circuit key -> where it was simulated, when known
    first_met: int | None = None  # simulations up to and including the first circuit that met the target

    def simulated(self) -> list[Proposal]:
        """The proposals this search simulated (a known miss taken from the store is not one)."""
        return [p for p in self.proposals.values() if p.measured is not None and not p.known]


def closeness(target: Target, specs: Performance) -> float:
    """1 when every bound holds, falling towards 0 with the largest normalised violation."""
    worst = float(np.max(constraint_values(target, specs), initial=0.0))
    return 1.0 / (1.0 + max(worst, 0.0))


def family_proposer(config: FamilyConfig | None = None) -> Propose:
    """Plain random sampling of the family: each circuit a fresh random topology and sizing."""
    config = config or FamilyConfig()

    def propose(_cls: SpecClass | None, n: int, seed: int) -> list[Circuit]:
        rng = np.random.default_rng(seed)
        return [random_sizing(rng, random_topology(rng, config)) for _ in range(n)]

    return propose


_FAMILY = family_proposer()


class TargetSearch:
    """Searches one target (see the module docstring); ``run`` returns a ``SearchOutcome``."""

    def __init__(
        self,
        target: Target,
        classes: SpecClasses,
        known_classes: Sequence[SpecClass],
        propose: Propose,
        predict: Predict | None,
        simulate: Simulate,
        config: SearchConfig = SearchConfig(),
        source: str = "generator",
        reuse: Sequence[StoredCircuit] = (),
    ) -> None:
        self.target, self.config, self.source = target, config, source
        self.reuse = list({s.circuit.key: s for s in reuse}.values())
        self.propose, self.predict, self.simulate = propose, predict, simulate
        if source == "random":
            self.arms: list[SpecClass | None] = [None]
            self.class_mode = "none"
        else:
            arms, inside = valid_classes(target, classes, known_classes)
            self.class_mode = "inside" if inside else ("overlap" if arms else "none")
            self.arms = [*arms] if arms else [*sorted(set(known_classes))]
            if config.family_arm:
                self.arms.append(None)
        # With a family arm: generator or family first (two arms, the same policy), then the class, so the
        # family arm is not one arm among dozens and a generator that does not help loses its pulls quickly.
        family = source != "random" and self.arms[-1] is None
        self.source_policy = POLICIES[config.policy](2, seed=config.seed + 1) if family else None
        n_classes = len(self.arms) - 1 if family else len(self.arms)
        self.class_policy = POLICIES[config.policy](max(1, n_classes), seed=config.seed)
        self._pulls = [0] * len(self.arms)
        self.proposals: dict[str, Proposal] = {}
        self.n_sims = 0
        self.history: list[tuple[int, float | None]] = []
        self.first_met: int | None = None  # see SearchOutcome.first_met
        self._arm_of: dict[str, int] = {}
        self._judged: dict[str, bool] = {}  # circuit key -> meets the target (by measurement)
        self._best_fom: float | None = None  # best FoM of a measured circuit meeting the target
        self._scores: dict[str, float] = {}  # circuit key -> predicted closeness
        self._optimistic: dict[str, float] = {}  # circuit key -> optimistic closeness ("ucb")
        self._seed = config.seed * 1_000_003
        self._rng = np.random.default_rng(config.seed)

    # --- phases ---------------------------------------------------------------------------------

    def run(self) -> SearchOutcome:
        rounds = 0
        if self.reuse:
            self._start_from_store()
        while self.n_sims < self.config.search_budget and not self._near_enough():
            rounds += 1
            if not self._round(rounds):
                break  # nothing new to simulate
        refinements = self._refine(rounds + 1)
        winner = self._winner()
        return SearchOutcome(
            target=self.target,
            met=winner is not None and self._meets(self.proposals[winner]),
            winner=winner,
            class_mode=self.class_mode,
            arms=list(self.arms),
            proposals=self.proposals,
            n_simulations=self.n_sims,
            history=self.history,
            refinements=refinements,
            arm_pulls=list(self._pulls),
            first_met=self.first_met,
        )

    def _round(self, round_no: int) -> bool:
        fresh: list[Proposal] = []
        for _ in range(self.config.pulls_per_round):
            arm = self._select()
            self._seed += 1
            cls = self.arms[arm]
            propose = self.propose if cls is not None or self.source == "random" else _FAMILY
            circuits = propose(cls, self.config.pull_size, self._seed)
            new = [c for c in {c.key: c for c in circuits}.values() if c.key not in self.proposals]
            for c in new:
                p = Proposal(c, self.source if cls is not None else "random", cls, round_no)
                self.proposals[c.key] = p
                self._arm_of[c.key] = arm
                fresh.append(p)
            self._predict_into(fresh[-len(new) :] if new else [])
            scores = [self._score(p) for p in fresh[-len(new) :]] if new else [0.0]
            self._update(arm, max(scores))
        pending = [p for p in self.proposals.values() if p.measured is None]
        if not pending:
            return False
        pending.sort(key=self._ucb_rank if self.config.verify == "ucb" else self._rank, reverse=True)
        n = min(self.config.verify_per_round, self.config.search_budget - self.n_sims)
        ranked = n - int(n * self.config.explore_share) if self.predict is not None else 0
        rest = pending[ranked:]
        picks = [int(i) for i in self._rng.choice(len(rest), min(n - ranked, len(rest)), replace=False)] if rest else []
        self._verify(pending[:ranked] + [rest[i] for i in sorted(picks)])
        return True

    def _start_from_store(self) -> None:
        """Start from the stored circuits given as ``reuse`` (``orchestrator.design.reuse``). Those whose
        stored measurement meets the target are simulated first: ngspice judges them again in this search,
        counted against the budget. The others are known misses, taken at their stored measurement without
        a simulation, so refinement can start from them at this search's first simulation."""
        fresh = [Proposal(s.circuit, "store", None, 0) for s in self.reuse]
        for p in fresh:
            self.proposals[p.circuit.key] = p
        self._predict_into(fresh)
        meeting = []
        for p, stored in zip(fresh, self.reuse):
            if self.target.met_by(stored.measured.to_dict()):
                meeting.append(p)
            else:
                p.measured, p.known = stored.measured, True
        if meeting:
            self._verify(meeting[: self.config.search_budget])

    def _predict_into(self, proposals: list[Proposal]) -> None:
        """Each proposal's predicted specs (and an ensemble's spread), when the search has a surrogate."""
        if self.predict is None or not proposals:
            return
        for p, pred in zip(proposals, self.predict([p.circuit for p in proposals])):
            p.predicted = {k: float(pred[k]) for k in TARGET_FIELDS if pred.get(k) is not None}
            p.std = {k: float(v) for k, v in pred["std"].items()} if pred.get("std") else None

    def _select(self) -> int:
        """An arm index: the family arm, or a generator class chosen by the class policy."""
        if self.source_policy is not None and self.source_policy.select() == 1:
            arm = len(self.arms) - 1
        else:
            arm = self.class_policy.select()
        self._pulls[arm] += 1
        return arm

    def _update(self, arm: int, reward: float) -> None:
        family = self.source_policy is not None and arm == len(self.arms) - 1
        if self.source_policy is not None:
            self.source_policy.update(int(family), reward)
        if not family:
            self.class_policy.update(arm, reward)

    def _verify(self, proposals: list[Proposal]) -> None:
        results = self.simulate([p.circuit for p in proposals])
        for p, perf in zip(proposals, results):
            self.n_sims += 1
            p.measured = perf
            self._count_first_met(p)
            arm = self._arm_of.get(p.circuit.key)
            if arm is not None:
                self._update(arm, closeness(self.target, perf) if perf.ok else 0.0)
        self.history.append((self.n_sims, self._best_met_fom()))

    def _refine(self, round_no: int) -> list[dict[str, Any]]:
        """Successive halving over the best verified distinct topologies, then a compass polish of the best.

        Every seed gets NSGA-II generations in turn; after each rung of ``refine_rung`` generations the
        better half (met first, then FoM, else least violation) goes on, so the budget flows to the
        topology that earns it. ``polish_share`` of what is left is kept for the compass search around
        the best sizing found, which climbs the last grid steps to the bound where the FoM peaks.
        """
        if self.config.refine_share == 0:
            return []
        verified = [p for p in self.proposals.values() if p.measured is not None and p.measured.ok]
        verified.sort(key=lambda p: (self._meets(p), self._fom_or_closeness(p)), reverse=True)
        seeds: list[Proposal] = []
        for p in verified:
            if all(p.circuit.topology_key != q.circuit.topology_key for q in seeds):
                seeds.append(p)
        pop = self.config.refine_pop
        room = self.config.budget - self.n_sims
        seeds = seeds[: min(self.config.refine_seeds, room // pop)]
        if not seeds:
            return []
        reserve = int(room * self.config.polish_share)
        screen, kappa = self.config.refine_screen, self.config.refine_kappa
        cfg = RefineConfig(pop_size=pop, n_generations=1, seed=self.config.seed, screen=screen, screen_kappa=kappa)
        screens: list[Screen] = []  # the runs' screens: what the surrogate said of the sizings they simulate
        runs = {
            p.circuit.key: SizingRun(
                p.circuit, self.target, self._evaluator(p, round_no, screens), cfg, p.measured, self.predict
            )
            for p in seeds
        }
        screens.extend(run.screen for run in runs.values() if run.screen is not None)
        active, generations = list(runs.values()), 0
        while active:
            stepped = False
            for run in active:
                if self.config.budget - self.n_sims - reserve >= pop and run.step():
                    stepped = True
            if not stepped:
                break
            generations += 1
            if generations % self.config.refine_rung == 0 and len(active) > 1:
                active = sorted(active, key=SizingRun.score, reverse=True)[: math.ceil(len(active) / 2)]
        best = max(runs.values(), key=SizingRun.score)
        while self.n_sims < self.config.budget:
            if best.polish(max_new=self.config.budget - self.n_sims):
                continue
            if not (self.config.budget - self.n_sims >= pop and best.step()):
                break
        return [self._refinement_record(key, run) for key, run in runs.items() if run.n_evaluations]

    def _evaluator(
        self, seed: Proposal, round_no: int, screens: Sequence[Screen] = ()
    ) -> Callable[[Sequence[Circuit]], list[Performance]]:
        """Simulate a refinement batch, count it against the budget and record its circuits as children of
        ``seed``, each with the prediction a screen picked it by (none when unscreened)."""

        def evaluate(circuits: Sequence[Circuit]) -> list[Performance]:
            results = self.simulate(circuits)
            for c, perf in zip(circuits, results):
                self.n_sims += 1
                if c.key not in self.proposals:
                    self.proposals[c.key] = p = Proposal(
                        c, "refine", seed.spec_class, round_no, measured=perf, parent=seed.circuit.key
                    )
                    row = next((s.rows[c.key] for s in screens if c.key in s.rows), None)
                    if row is not None:
                        p.predicted = predicted_specs(row)
                        p.std = {k: float(v) for k, v in row["std"].items()} if row.get("std") else None
                self._count_first_met(self.proposals[c.key])
            self.history.append((self.n_sims, self._best_met_fom()))
            return results

        return evaluate

    @staticmethod
    def _refinement_record(seed_key: str, run: SizingRun) -> dict[str, Any]:
        result = run.result()
        return {
            "seed": seed_key,
            "result": result.circuit.key,
            "n_evaluations": result.n_evaluations,
            "fom_before": result.fom_before,
            "fom_after": result.fom_after,
            "met": result.met,
            "history": [[h.generation, h.n_evaluations, h.best_fom] for h in result.history],
        }

    # --- judging --------------------------------------------------------------------------------

    def _meets(self, p: Proposal) -> bool:
        """Whether ngspice says ``p`` meets the target; worked out once per circuit (its first call also
        counts it towards the best met FoM, so every circuit is judged as its measurement arrives)."""
        if p.measured is None:
            return False
        met = self._judged.get(p.circuit.key)
        if met is None:
            met = self._judged[p.circuit.key] = self.target.met_by(p.measured.to_dict())
            fom = p.measured.fom
            if met and fom is not None and (self._best_fom is None or fom > self._best_fom):
                self._best_fom = fom
        return met

    def _near_enough(self) -> bool:
        """Whether the search phase may end early (``refine_near``): no circuit meets the target yet, and one
        verified circuit misses it by at most ``refine_near`` (its worst normalised violation), so refining it
        now is worth more than more proposals. Once one meets, the search goes on to find better seeds."""
        near = self.config.refine_near
        if not near or not self.config.refine_share or any(self._judged.values()):
            return False
        return any(
            p.measured is not None and p.measured.ok and closeness(self.target, p.measured) >= 1.0 / (1.0 + near)
            for p in self.proposals.values()
        )

    def _count_first_met(self, p: Proposal) -> None:
        """Judge ``p``, just simulated as the ``n_sims``-th circuit; the first that meets sets ``first_met``."""
        if self._meets(p) and self.first_met is None:
            self.first_met = self.n_sims

    def _best_met_fom(self) -> float | None:
        return self._best_fom

    def _fom_or_closeness(self, p: Proposal) -> float:
        assert p.measured is not None
        return (p.measured.fom or 0.0) if self._meets(p) else closeness(self.target, p.measured)

    def _score(self, p: Proposal) -> float:
        """A pull's evidence for one circuit: the surrogate's predicted closeness (1 without a surrogate)."""
        if p.predicted is None:
            return 1.0
        score = self._scores.get(p.circuit.key)
        if score is None:
            predicted = predicted_performance(self.target, p.predicted)
            score = self._scores[p.circuit.key] = closeness(self.target, predicted)
        return score

    def _ucb_rank(self, p: Proposal) -> tuple[float, float, float]:
        """Optimistic closeness first (each predicted spec moved up to ``ucb_kappa`` deviations towards its
        bounds: a circuit the surrogate is unsure of may well meet a narrow window), then the plain rank."""
        score = self._optimistic.get(p.circuit.key)
        if score is None:
            score = self._score(p)
            if p.predicted is not None and p.std:
                moved = optimistic(self.target, p.predicted, p.std, self.config.ucb_kappa)
                score = closeness(self.target, predicted_performance(self.target, moved))
            self._optimistic[p.circuit.key] = score
        return (score, *self._rank(p))

    def _rank(self, p: Proposal) -> tuple[float, float]:
        """Predicted closeness first, then predicted FoM: which new circuits are worth a simulation."""
        fom = p.predicted.get("fom", 0.0) if p.predicted else 0.0
        return (self._score(p), fom if math.isfinite(fom) else 0.0)

    def _winner(self) -> str | None:
        simulated = [p for p in self.proposals.values() if p.measured is not None and p.measured.ok]
        if not simulated:
            return None
        best = max(simulated, key=lambda p: (self._meets(p), self._fom_or_closeness(p)))
        return best.circuit.key

"""Sizing refinement of one topology with NSGA-II (pymoo) and a compass polish, the simulator in the loop.

A campaign's verified circuits are good topologies with rough sizings; refinement keeps the
topology and searches the device values (every r, c and gm the nodes carry, as integer indices
on the circuit's value grid) for a sizing that meets the target with the highest figure of merit.

Each generation's (or polish sweep's) new circuits go to ``evaluate`` as one batch (the Ray ngspice pool in
production, ``MnaBackend().simulate`` in tests); results are cached by circuit key, so a
circuit is never simulated twice and ``n_evaluations`` counts unique simulations.

Objectives (both minimised):

* ``-FoM``: what the campaign ranks by;
* the *worst normalised constraint value* ``max_i G_i`` (minus the smallest margin to any bound
  of the target). The two conflict: the highest FoM usually sits on the edge of a bound (a phase
  margin just above its minimum, a gain just above its floor), while a designer also wants a
  sizing with headroom against process and model error. The front is that trade-off, FoM against
  guaranteed slack, which ``-gain``/``-UGBW`` would not show (both already drive the FoM up).

Constraints ``G_i <= 0``, one per bound side of the target, each in a unit where one step is
comparable: gain in decades of voltage gain (dB / 20), UGBW in decades (log10 Hz), phase margin
in units of 90°, FoM in FoM units (``orchestrator.design.constraints``). Feasible is exactly
``target.met_by``. A failed simulation (status not ok) gets ``FAILED_PENALTY`` on every constraint
and objective, so constrained domination ranks it below every measured circuit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.core.problem import Problem
from pymoo.operators.crossover.sbx import SBX
from pymoo.operators.mutation.pm import PM
from pymoo.operators.repair.rounding import RoundingRepair
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from circuits import Circuit, CktLoopError, Performance, SimStatus, subgraph_type, value_grid
from circuits.circuit import DEVICE_FIELDS
from circuits.targets import Target
from orchestrator.design.constraints import (
    constraint_sides,
    constraint_values,
    objective_values,
)
from orchestrator.design.screen import Predict, Screen

BatchEvaluate = Callable[[Sequence[Circuit]], list[Performance]]

POLISH_FIRST_STEP = 0.2  # the compass polish starts by scaling each value by 1 ± 20 %


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


class RefineError(CktLoopError):
    """Refinement input or an ``evaluate`` answer that cannot be used."""


@dataclass(frozen=True)
class RefineConfig:
    """NSGA-II's knobs. ``max_evaluations`` caps unique simulations: a generation that would pass
    it is not run, so the cap is never exceeded (None: only ``n_generations`` limits the run).

    ``screen`` > 1 with a ``predict`` given to the run: each generation breeds ``screen`` times as many
    sizings as it simulates and the surrogate picks which (``orchestrator.design.screen``); each polish
    sweep simulates 1/``screen`` of its neighbours, the surrogate's best. 1: every bred sizing is simulated.
    """

    pop_size: int = 24
    n_generations: int = 20
    seed: int = 0
    max_evaluations: int | None = None
    local_share: float = 0.75  # of the initial population: the seed's sizing perturbed (the rest uniform on the grid)
    local_sigma: float = 0.4  # spread of those perturbations, in natural-log units of each value
    screen: float = 1.0  # sizings bred per sizing simulated (1: no screening)
    screen_kappa: float = 0.0  # an ensemble's deviations a prediction may move towards the target (search.optimistic)
    screen_correct: bool = True  # shift predictions by the median residual on the run's measured circuits

    def __post_init__(self) -> None:
        for name, minimum in (("pop_size", 2), ("n_generations", 1), ("seed", 0)):
            value = getattr(self, name)
            if not _is_int(value) or value < minimum:
                raise RefineError(f"RefineConfig.{name} must be an integer >= {minimum}, got {value!r}")
        if not 0.0 <= self.local_share <= 1.0:
            raise RefineError(f"RefineConfig.local_share must be in [0, 1], got {self.local_share!r}")
        if not self.local_sigma > 0.0:
            raise RefineError(f"RefineConfig.local_sigma must be > 0, got {self.local_sigma!r}")
        if not (isinstance(self.screen, (int, float)) and 1.0 <= self.screen <= 100.0):
            raise RefineError(f"RefineConfig.screen must be a number in [1, 100], got {self.screen!r}")
        if not self.screen_kappa >= 0.0:
            raise RefineError(f"RefineConfig.screen_kappa must be >= 0, got {self.screen_kappa!r}")
        cap = self.max_evaluations
        if cap is not None and (not _is_int(cap) or cap < self.pop_size):
            raise RefineError(
                f"RefineConfig.max_evaluations must be None or an integer >= pop_size ({self.pop_size}), "
                f"since the first generation alone may need that many, got {cap!r}"
            )


@dataclass(frozen=True)
class GenerationRecord:
    """Progress after one batch: an NSGA-II generation or a polish sweep (1 = the initial population)."""

    generation: int
    n_evaluations: int  # unique simulations so far
    best_fom: float | None  # best FoM among circuits meeting the target so far; None if none yet


@dataclass(frozen=True)
class Candidate:
    """A simulated sizing with its worst normalised margin (>= 0 when it meets the target)."""

    circuit: Circuit
    performance: Performance
    margin: float


@dataclass(frozen=True)
class RefineResult:
    """The best sizing found: highest FoM among those meeting the target, else least violating.

    ``front`` is the FoM-versus-margin trade-off among sizings meeting the target (highest FoM
    first; empty when none does), so a designer can trade FoM for headroom.
    """

    circuit: Circuit
    performance: Performance
    met: bool
    fom_before: float | None  # the seed's (None if its simulation failed)
    fom_after: float | None
    n_evaluations: int
    history: tuple[GenerationRecord, ...]
    front: tuple[Candidate, ...]


# --- decision variables ---------------------------------------------------------------------


def sizing_variables(circuit: Circuit) -> tuple[tuple[int, str], ...]:
    """(node index, device field) for every device value the topology carries, in node order."""
    return tuple(
        (i, name)
        for i, node in enumerate(circuit.nodes)
        for name in DEVICE_FIELDS
        if name in subgraph_type(node.type).devices
    )


def sizing_of(circuit: Circuit) -> np.ndarray:
    """The circuit's own grid indices, in ``sizing_variables`` order."""
    return np.array([getattr(circuit.nodes[i], name) for i, name in sizing_variables(circuit)], dtype=int)


def with_sizing(circuit: Circuit, x: Sequence[int] | np.ndarray) -> Circuit:
    """The same topology with the device values ``x`` (``sizing_variables`` order); off-grid
    values raise the circuit's own CircuitError, naming the node."""
    variables = sizing_variables(circuit)
    if len(x) != len(variables):
        raise RefineError(f"a sizing of this topology has {len(variables)} values, got {len(x)}")
    values = [list(node.values()) for node in circuit.nodes]
    for j, ((i, name), k) in enumerate(zip(variables, x)):
        if not float(k).is_integer():
            raise RefineError(f"sizing value {j} (node {i}, {name}) must be a whole grid index, got {k!r}")
        values[i][DEVICE_FIELDS.index(name)] = round(float(k))
    return circuit.with_values([(r, c, gm) for r, c, gm in values])


# --- simulation cache -----------------------------------------------------------------------


class _Simulations:
    """Every circuit simulated so far, by key, in first-seen order; one ``evaluate`` call per batch."""

    def __init__(self, evaluate: BatchEvaluate, target: Target) -> None:
        self.evaluate = evaluate
        self.target = target
        self.results: dict[str, tuple[Circuit, Performance]] = {}
        self.best_fom: float | None = None
        self.n_known = 0  # results given, not simulated here

    @property
    def n_simulated(self) -> int:
        return len(self.results) - self.n_known

    def know(self, circuit: Circuit, performance: Performance) -> None:
        """A result measured elsewhere (the seed's, by the search that found it): never simulated again."""
        if circuit.key not in self.results:
            self.results[circuit.key] = (circuit, performance)
            self.n_known += 1
            self._note(performance)

    def _note(self, perf: Performance) -> None:
        if self.target.met_by(perf.to_dict()) and perf.fom is not None:
            self.best_fom = perf.fom if self.best_fom is None else max(self.best_fom, perf.fom)

    def n_new(self, circuits: Sequence[Circuit]) -> int:
        return len({c.key for c in circuits} - self.results.keys())

    def run(self, circuits: Sequence[Circuit]) -> list[Performance]:
        fresh = list({c.key: c for c in circuits if c.key not in self.results}.values())
        if fresh:
            answers = self.evaluate(fresh)
            if not isinstance(answers, Sequence) or len(answers) != len(fresh):
                got = len(answers) if isinstance(answers, Sequence) else type(answers).__name__
                raise RefineError(f"evaluate returned {got} results for a batch of {len(fresh)} circuits")
            for circuit, perf in zip(fresh, answers):
                if not isinstance(perf, Performance):
                    raise RefineError(f"evaluate returned a {type(perf).__name__}, not a Performance")
                self.results[circuit.key] = (circuit, perf)
                self._note(perf)
        return [self.results[c.key][1] for c in circuits]


class SizingProblem(Problem):
    """The seed's topology as a pymoo problem: integer grid indices in, (F, G) out, batched."""

    def __init__(self, seed: Circuit, target: Target, simulations: _Simulations) -> None:
        grid = value_grid(seed.grid)
        n_var = len(sizing_variables(seed))
        super().__init__(
            n_var=n_var,
            n_obj=2,
            n_ieq_constr=len(constraint_sides(target)),
            xl=np.full(n_var, grid.k_min),
            xu=np.full(n_var, grid.k_max),
            vtype=int,
        )
        self.seed = seed
        self.target = target
        self.simulations = simulations

    def decode(self, X: np.ndarray) -> list[Circuit]:
        return [with_sizing(self.seed, x) for x in np.atleast_2d(X)]

    def _evaluate(self, X: np.ndarray, out: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        perfs = self.simulations.run(self.decode(X))
        out["F"] = np.array([objective_values(self.target, p) for p in perfs])
        out["G"] = np.array([constraint_values(self.target, p) for p in perfs])


# --- the loop -------------------------------------------------------------------------------


def _check_inputs(seed: Any, target: Any, evaluate: Any, config: Any) -> None:
    if not isinstance(seed, Circuit):
        raise RefineError(f"seed must be a Circuit, got {type(seed).__name__}")
    if not isinstance(target, Target):
        raise RefineError(f"target must be a circuits.targets.Target, got {type(target).__name__}")
    if not callable(evaluate):
        raise RefineError(f"evaluate must be callable on a batch of circuits, got {type(evaluate).__name__}")
    if not isinstance(config, RefineConfig):
        raise RefineError(f"config must be a RefineConfig, got {type(config).__name__}")


class SizingRun:
    """One seed's refinement, advanced a step at a time so a scheduler can share a budget between seeds.

    ``step`` runs one NSGA-II generation (one batch); ``polish`` one compass-search sweep around the
    run's best sizing: every value scaled by 1 ± ``polish_step`` (at least one grid step), all
    neighbours in one batch, moving to the best neighbour if it beats the centre and halving the step
    otherwise. NSGA-II finds the basin; the compass search climbs its last few grid steps, where the
    highest FoM usually sits on a bound. ``max_evaluations`` caps unique simulations; a batch that
    would pass it is not run. A run's first batch holds the seed, so its result can compare, unless
    the seed's measurement is given (``known``, e.g. the search's verification of it): then it is not
    simulated again, and ``n_evaluations`` counts only what the run simulated.
    """

    def __init__(
        self,
        seed: Circuit,
        target: Target,
        evaluate: BatchEvaluate,
        config: RefineConfig,
        known: Performance | None = None,
        predict: Predict | None = None,
    ) -> None:
        _check_inputs(seed, target, evaluate, config)
        if known is not None and not isinstance(known, Performance):
            raise RefineError(f"known must be the seed's Performance, got {type(known).__name__}")
        self.seed, self.target, self.config = seed, target, config
        self.screen = (
            Screen(target, predict, config.screen_kappa, config.screen_correct)
            if predict is not None and config.screen > 1
            else None
        )
        bred = self._bred(config.pop_size - 1) + 1  # the seed, then the rest
        self.simulations = _Simulations(evaluate, target)
        if known is not None:
            self.simulations.know(seed, known)
        self.problem = SizingProblem(seed, target, self.simulations)
        grid = value_grid(seed.grid)
        self.k_min, self.k_max = grid.k_min, grid.k_max
        self.algorithm = NSGA2(
            pop_size=config.pop_size,
            sampling=initial_population(sizing_of(seed), grid.k_min, grid.k_max, config, size=bred),
            n_offsprings=self._bred(config.pop_size),
            crossover=SBX(prob=0.9, eta=15, vtype=float, repair=RoundingRepair()),
            mutation=PM(eta=20, vtype=float, repair=RoundingRepair()),
            eliminate_duplicates=True,
        )
        self.algorithm.setup(self.problem, termination=("n_gen", 10**9), seed=config.seed, verbose=False)
        self.history: list[GenerationRecord] = []
        self.polish_step = POLISH_FIRST_STEP
        self.converged = False  # NSGA-II bred nothing new

    @property
    def n_evaluations(self) -> int:
        """Unique simulations this run made."""
        return self.simulations.n_simulated

    def _bred(self, n: int) -> int:
        """How many sizings to breed for ``n`` simulations."""
        return n if self.screen is None else math.ceil(n * self.config.screen)

    def _screened(self, pop: Any) -> Any:
        """The part of a bred batch to simulate: what is measured already (free), the seed in the first
        batch, and the surrogate's best of the rest, ``pop_size`` simulations in all, in that order, the best
        first (as the polish and the search's ranked half): a batch larger than the simulation slots sends
        the likeliest sizings first, and simulations are counted in that order."""
        if self.screen is None:
            return pop
        circuits = self.problem.decode(pop.get("X"))
        results = self.simulations.results
        first = not self.algorithm.is_initialized
        free = {i for i, c in enumerate(circuits) if c.key in results or (first and c.key == self.seed.key)}
        rest = [i for i in range(len(circuits)) if i not in free]
        n = self.config.pop_size - (1 if first else 0)
        picked = self.screen.pick([circuits[i] for i in rest], n, results)
        return pop[[*sorted(free), *(rest[j] for j in picked)]]

    def _room(self, n_new: int) -> bool:
        cap = self.config.max_evaluations
        return cap is None or self.n_evaluations + n_new <= cap

    def _record(self) -> None:
        self.history.append(GenerationRecord(len(self.history) + 1, self.n_evaluations, self.simulations.best_fom))

    def step(self) -> bool:
        """One NSGA-II generation; False when none could be run (converged, or over the cap)."""
        if self.converged:
            return False
        pop = self.algorithm.ask()
        if pop is None or len(pop) == 0:  # no new offspring could be bred: the search has converged
            self.converged = True
            return False
        pop = self._screened(pop)
        if not self._room(self.simulations.n_new(self.problem.decode(pop.get("X")))):
            return False
        self.algorithm.evaluator.eval(self.problem, pop)
        self.algorithm.tell(infills=pop)
        self._record()
        return True

    def polish(self, max_new: int | None = None) -> bool:
        """One compass sweep of at most ``max_new`` new simulations; False when there is nothing left to try."""
        centre = self.best()
        x = sizing_of(centre[0])
        while True:
            neighbours = self._neighbours(x, self.polish_step)
            fresh = [c for c in neighbours if c.key not in self.simulations.results]
            if fresh:
                break
            if self.polish_step * float(x.max()) < 1.0:  # already at single grid steps: nothing new to try
                return False
            self.polish_step /= 2
        if self.screen is not None:  # the surrogate's best 1/screen of the neighbours, best first
            n = math.ceil(len(fresh) / self.config.screen)
            fresh = [fresh[i] for i in self.screen.pick(fresh, n, self.simulations.results)]
        if self.seed.key not in self.simulations.results:  # a run that starts by polishing measures its seed too
            fresh = [self.seed, *fresh]
        if max_new is not None and len(fresh) > max_new:
            fresh = fresh[:max_new]
        if not fresh or not self._room(len(fresh)):
            return False
        self.simulations.run(fresh)
        self._record()
        if self.best()[0].key == centre[0].key:
            self.polish_step /= 2
        return True

    def _neighbours(self, x: np.ndarray, step: float) -> list[Circuit]:
        out = []
        for j in range(len(x)):
            delta = max(1, round(x[j] * step))
            for k in (x[j] + delta, x[j] - delta):
                if self.k_min <= k <= self.k_max:
                    y = x.copy()
                    y[j] = k
                    out.append(with_sizing(self.seed, y))
        return out

    def best(self) -> tuple[Circuit, Performance]:
        """Highest FoM among sizings meeting the target; else the least violating (earliest on ties)."""
        entries = list(self.simulations.results.values())
        if not entries:
            return self.seed, Performance(SimStatus.SIM_ERROR, error="not simulated yet")
        return entries[_best_index(self.target, entries)]

    def score(self) -> tuple[bool, float]:
        """(meets the target, FoM if it does else minus the total violation): higher is better."""
        if not self.simulations.results:
            return (False, -math.inf)
        _, perf = self.best()
        if self.target.met_by(perf.to_dict()):
            return (True, float(perf.fom if perf.fom is not None else -math.inf))
        return (False, -float(np.maximum(constraint_values(self.target, perf), 0.0).sum()))

    def result(self) -> RefineResult:
        return _result(self.seed, self.target, self.simulations, tuple(self.history))


def refine(
    seed: Circuit,
    target: Target,
    evaluate: BatchEvaluate,
    config: RefineConfig = RefineConfig(),
    predict: Predict | None = None,
) -> RefineResult:
    """Search ``seed``'s sizings for one meeting ``target`` with the highest FoM: ``n_generations`` of
    NSGA-II (see ``initial_population``; integer SBX and polynomial mutation, rounded, breed the rest),
    screened by ``predict`` when ``config.screen`` > 1. Deterministic for ``config.seed`` when ``evaluate``
    and ``predict`` are."""
    run = SizingRun(seed, target, evaluate, config, predict=predict)
    for _ in range(config.n_generations):
        if not run.step():
            break
    return run.result()


def initial_population(
    x: np.ndarray, k_min: int, k_max: int, config: RefineConfig, size: int | None = None
) -> np.ndarray:
    """The seed's sizing, ``local_share`` of the rest log-normal perturbations of it, the others uniform;
    ``size`` rows (default ``pop_size``).

    The seed is a verified, usually near-feasible sizing: most of the first generation stays near it
    (each value times e^N(0, local_sigma), rounded to the grid), and a few uniform draws keep NSGA-II
    from collapsing onto one basin.
    """
    rng = np.random.default_rng(config.seed)
    n_rest = (config.pop_size if size is None else size) - 1
    n_local = round(n_rest * config.local_share)
    local = np.exp(np.log(x)[None, :] + rng.normal(0.0, config.local_sigma, size=(n_local, len(x))))
    uniform = rng.integers(k_min, k_max + 1, size=(n_rest - n_local, len(x)))
    rows = [x[None, :], np.clip(np.rint(local), k_min, k_max).astype(int), uniform]
    return np.vstack(rows)


def _result(
    seed: Circuit, target: Target, simulations: _Simulations, history: tuple[GenerationRecord, ...]
) -> RefineResult:
    entries = list(simulations.results.values())  # first-seen order: the seed comes first
    met = [target.met_by(p.to_dict()) for _, p in entries]
    best = _best_index(target, entries)
    circuit, performance = entries[best]
    seed_perf = simulations.results[seed.key][1]
    return RefineResult(
        circuit=circuit,
        performance=performance,
        met=met[best],
        fom_before=seed_perf.fom,
        fom_after=performance.fom,
        n_evaluations=simulations.n_simulated,
        history=history,
        front=_front(target, [entries[i] for i in range(len(entries)) if met[i]]),
    )


def _best_index(target: Target, entries: Sequence[tuple[Circuit, Performance]]) -> int:
    """Highest FoM among entries meeting the target (earliest on ties); else the least violating."""
    met = [i for i, (_, p) in enumerate(entries) if target.met_by(p.to_dict())]
    if met:
        return max(met, key=lambda i: (entries[i][1].fom, -i))
    violation = [float(np.maximum(constraint_values(target, p), 0.0).sum()) for _, p in entries]
    return min(range(len(entries)), key=lambda i: (violation[i], i))


def _front(target: Target, feasible: list[tuple[Circuit, Performance]]) -> tuple[Candidate, ...]:
    if not feasible:
        return ()
    F = np.array([objective_values(target, p) for _, p in feasible])
    idx = NonDominatedSorting().do(F, only_non_dominated_front=True)
    ranked = sorted((int(i) for i in idx), key=lambda i: (F[i, 0], i))
    return tuple(Candidate(feasible[i][0], feasible[i][1], -float(F[i, 1])) for i in ranked)

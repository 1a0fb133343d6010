"""NSGA-II sizing refinement against the numpy MNA backend (no Ray, no ngspice)."""

from __future__ import annotations

import numpy as np
import pytest

from circuits import Circuit, CircuitError, Performance, SimStatus, generate, subgraph_type, value_grid
from circuits.circuit import DEVICE_FIELDS
from circuits.targets import Target
from orchestrator.design.constraints import FAILED_PENALTY
from orchestrator.design.refine import (
    RefineConfig,
    RefineError,
    SizingRun,
    constraint_values,
    initial_population,
    objective_values,
    refine,
    sizing_of,
    sizing_variables,
    with_sizing,
)
from simulator.mna import MnaBackend

BACKEND = MnaBackend()
TARGET = Target.from_expressions("amp", ["gain_db>=60", "ugbw_hz>=1e8", "pm_deg>=60"])
SMALL = RefineConfig(pop_size=8, n_generations=4, seed=0)


@pytest.fixture(scope="module")
def family() -> list[Circuit]:
    return [s.circuit for s in generate(60, 0)]


@pytest.fixture(scope="module")
def meeting_seed(family) -> Circuit:
    """A family circuit that already meets TARGET (index 40 of seed 0's stream, found by search)."""
    perfs = BACKEND.simulate(family)
    seeds = [c for c, p in zip(family, perfs) if TARGET.met_by(p.to_dict())]
    assert seeds, "seed 0's stream should hold a circuit meeting TARGET"
    return seeds[0]


class Recorder:
    """An ``evaluate`` that remembers every batch it was given."""

    def __init__(self, inner=BACKEND.simulate) -> None:
        self.inner = inner
        self.batches: list[list[Circuit]] = []

    def __call__(self, circuits):
        self.batches.append(list(circuits))
        return self.inner(circuits)


def test_result_keeps_topology_stays_on_grid_and_resimulates_the_same(meeting_seed):
    result = refine(meeting_seed, TARGET, BACKEND.simulate, SMALL)
    assert result.met and TARGET.met_by(result.performance.to_dict())
    assert result.circuit.topology_key == meeting_seed.topology_key
    grid = value_grid(result.circuit.grid)
    for node in result.circuit.nodes:
        devices = subgraph_type(node.type).devices
        for name, k in zip(DEVICE_FIELDS, node.values()):
            assert grid.k_min <= k <= grid.k_max if name in devices else k == 0
    assert BACKEND.simulate([result.circuit]) == [result.performance]
    assert result.fom_after == result.performance.fom


def test_fom_never_drops_below_a_seed_that_meets_the_target(meeting_seed):
    result = refine(meeting_seed, TARGET, BACKEND.simulate, SMALL)
    assert result.fom_before == BACKEND.simulate([meeting_seed])[0].fom
    assert result.fom_after >= result.fom_before
    best = [h.best_fom for h in result.history]
    assert best[0] >= result.fom_before
    assert best == sorted(best) and best[-1] == result.fom_after


def test_one_batch_per_generation_and_no_circuit_simulated_twice(meeting_seed):
    evaluate = Recorder()
    result = refine(meeting_seed, TARGET, evaluate, SMALL)
    assert len(evaluate.batches) == len(result.history) == SMALL.n_generations
    assert evaluate.batches[0][0] == meeting_seed  # the population is seeded with the seed's sizing
    assert all(1 <= len(b) <= SMALL.pop_size for b in evaluate.batches)
    keys = [c.key for b in evaluate.batches for c in b]
    assert len(keys) == len(set(keys)) == result.n_evaluations <= SMALL.pop_size * SMALL.n_generations
    assert [h.n_evaluations for h in result.history] == list(np.cumsum([len(b) for b in evaluate.batches]))
    assert all(c.topology_key == meeting_seed.topology_key for b in evaluate.batches for c in b)


def test_a_seed_whose_measurement_is_known_is_not_simulated_again(meeting_seed):
    evaluate = Recorder()
    (known,) = BACKEND.simulate([meeting_seed])
    run = SizingRun(meeting_seed, TARGET, evaluate, SMALL, known=known)
    assert run.n_evaluations == 0 and run.best() == (meeting_seed, known)
    for _ in range(SMALL.n_generations):
        run.step()
    keys = [c.key for b in evaluate.batches for c in b]
    assert meeting_seed.key not in keys and len(keys) == len(set(keys)) == run.n_evaluations
    assert evaluate.batches[0] and len(evaluate.batches[0]) <= SMALL.pop_size - 1  # the seed's row is not sent
    result = run.result()
    assert result.fom_before == known.fom and result.n_evaluations == len(keys)
    assert result.fom_after >= known.fom
    with pytest.raises(RefineError, match="known"):
        SizingRun(meeting_seed, TARGET, evaluate, SMALL, known=known.to_dict())


def test_same_seed_same_run(family):
    a = refine(family[20], TARGET, BACKEND.simulate, SMALL)
    b = refine(family[20], TARGET, BACKEND.simulate, SMALL)
    assert (a.circuit, a.history, a.n_evaluations) == (b.circuit, b.history, b.n_evaluations)


def test_front_is_a_feasible_fom_versus_margin_trade_off(meeting_seed):
    result = refine(meeting_seed, TARGET, BACKEND.simulate, SMALL)
    assert result.front and result.front[0].circuit == result.circuit
    foms = [c.performance.fom for c in result.front]
    margins = [c.margin for c in result.front]
    assert foms == sorted(foms, reverse=True)
    assert margins == sorted(margins)  # less FoM is only on the front if it buys margin
    assert all(TARGET.met_by(c.performance.to_dict()) and c.margin >= 0 for c in result.front)


def test_impossible_target_returns_the_least_violating_circuit(meeting_seed):
    impossible = Target.from_expressions("impossible", ["gain_db>=500", "pm_deg>=60"])
    result = refine(meeting_seed, impossible, BACKEND.simulate, SMALL)
    assert not result.met and result.front == ()
    assert all(h.best_fom is None for h in result.history)
    assert result.circuit.topology_key == meeting_seed.topology_key

    def violation(p: Performance) -> float:
        return float(np.maximum(constraint_values(impossible, p), 0).sum())

    assert violation(result.performance) <= violation(BACKEND.simulate([meeting_seed])[0])
    assert result.performance.gain_db >= BACKEND.simulate([meeting_seed])[0].gain_db


def test_fom_bound_is_a_constraint_too(meeting_seed):
    seed_fom = BACKEND.simulate([meeting_seed])[0].fom
    target = Target.from_expressions("fom", [f"fom>={seed_fom * 1.5}"])
    result = refine(meeting_seed, target, BACKEND.simulate, SMALL)
    assert result.met and result.fom_after >= seed_fom * 1.5


def test_evaluation_cap_is_never_exceeded(meeting_seed):
    config = RefineConfig(pop_size=8, n_generations=10, seed=0, max_evaluations=20)
    evaluate = Recorder()
    result = refine(meeting_seed, TARGET, evaluate, config)
    assert result.n_evaluations <= 20
    assert len(result.history) < config.n_generations == 10


@pytest.mark.parametrize("pop_size", [2, 3])
def test_tiny_and_odd_populations_run(meeting_seed, pop_size):
    result = refine(meeting_seed, TARGET, BACKEND.simulate, RefineConfig(pop_size=pop_size, n_generations=3))
    assert result.met and result.n_evaluations <= pop_size * 3


def test_every_simulation_failing_gives_the_seed_back_unmet(meeting_seed):
    def failing(circuits):
        return [Performance.failed(SimStatus.SIM_ERROR, "singular") for _ in circuits]

    result = refine(meeting_seed, TARGET, failing, SMALL)
    assert not result.met and result.circuit == meeting_seed
    assert result.fom_before is None and result.fom_after is None


def test_a_seed_that_fails_to_simulate_is_still_refined(meeting_seed):
    def seed_fails(circuits):
        perfs = BACKEND.simulate(circuits)
        return [
            Performance.failed(SimStatus.TIMEOUT, "slow") if c == meeting_seed else p for c, p in zip(circuits, perfs)
        ]

    result = refine(meeting_seed, TARGET, seed_fails, SMALL)
    assert result.fom_before is None
    assert result.met and result.circuit != meeting_seed


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"pop_size": 1}, "pop_size"),
        ({"pop_size": True}, "pop_size"),
        ({"n_generations": 0}, "n_generations"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"pop_size": 8, "max_evaluations": 7}, "max_evaluations"),
        ({"local_share": 1.5}, "local_share"),
        ({"local_sigma": 0.0}, "local_sigma"),
    ],
)
def test_bad_config_names_the_field(kwargs, field):
    with pytest.raises(RefineError, match=f"RefineConfig.{field}"):
        RefineConfig(**kwargs)


def test_bad_inputs_and_bad_evaluate_answers_are_named(meeting_seed):
    with pytest.raises(RefineError, match="seed must be a Circuit"):
        refine(meeting_seed.to_dict(), TARGET, BACKEND.simulate, SMALL)
    with pytest.raises(RefineError, match="target must be"):
        refine(meeting_seed, {"gain_db": 60}, BACKEND.simulate, SMALL)
    with pytest.raises(RefineError, match="evaluate must be callable"):
        refine(meeting_seed, TARGET, None, SMALL)
    with pytest.raises(RefineError, match="evaluate returned 1 results for a batch of 8"):
        refine(meeting_seed, TARGET, lambda cs: BACKEND.simulate(cs[:1]), SMALL)
    with pytest.raises(RefineError, match="not a Performance"):
        refine(meeting_seed, TARGET, lambda cs: [p.to_dict() for p in BACKEND.simulate(cs)], SMALL)


def test_sizing_round_trip(family):
    for circuit in family[::20]:
        assert with_sizing(circuit, sizing_of(circuit)) == circuit
        assert len(sizing_variables(circuit)) == sum(len(subgraph_type(n.type).devices) for n in circuit.nodes)
    with pytest.raises(RefineError, match=r"has \d+ values, got 1"):
        with_sizing(family[0], [5])
    n = len(sizing_variables(family[0]))
    with pytest.raises(RefineError, match=r"must be a whole grid index, got 2\.5"):
        with_sizing(family[0], [2.5] * n)
    with pytest.raises(CircuitError, match="off the 'ocb' grid"):
        with_sizing(family[0], [0] * n)


def test_constraints_are_normalised_and_agree_with_met_by():
    target = Target.from_expressions(
        "t", ["gain_db>=40", "ugbw_hz>=1e8", "ugbw_hz<=1e10", "pm_deg>=45", "pm_deg<=135", "fom>=2"]
    )
    perf = Performance(SimStatus.OK, gain_db=60.0, ugbw_hz=1e9, pm_deg=90.0)
    g = constraint_values(target, perf)
    assert np.allclose(g, [-1.0, -1.0, -1.0, -0.5, -0.5, 2 - perf.fom])
    assert np.allclose(objective_values(target, perf), [-perf.fom, -0.5])
    failed = Performance.failed(SimStatus.NO_CROSSING, "never crosses")
    assert np.all(constraint_values(target, failed) == FAILED_PENALTY)
    rng = np.random.default_rng(0)
    for _ in range(200):
        p = Performance(SimStatus.OK, rng.uniform(0, 120), 10 ** rng.uniform(6, 11), rng.uniform(-30, 200))
        assert (constraint_values(target, p) <= 0).all() == target.met_by(p.to_dict())
    on_the_bound = Performance(SimStatus.OK, gain_db=40.0, ugbw_hz=1e8, pm_deg=45.0)
    assert (constraint_values(target, on_the_bound) <= 0).all() == target.met_by(on_the_bound.to_dict())
    zero = Target.from_expressions("z", ["ugbw_hz>=0"])
    assert constraint_values(zero, perf)[0] < 0


def test_initial_population_is_the_seed_then_its_neighbourhood_then_uniform_draws():
    x = np.array([5, 50, 100])
    config = RefineConfig(pop_size=21, local_share=0.75, local_sigma=0.1, seed=3)
    pop = initial_population(x, 1, 101, config)
    assert pop.shape == (21, 3) and (pop[0] == x).all()
    assert ((pop >= 1) & (pop <= 101)).all() and pop.dtype.kind == "i"
    local = pop[1:16]  # 15 of the 20 others
    assert (np.abs(np.log(local) - np.log(x)) < 0.6).all()  # within 6 sigma of the seed, in log units


def test_polish_climbs_without_losing_ground_and_stops_when_nothing_is_left(meeting_seed):
    run = SizingRun(meeting_seed, TARGET, Recorder(), RefineConfig(pop_size=8, seed=0))
    assert run.step()
    scores = [run.score()]
    sweeps = 0
    while run.polish() and sweeps < 200:
        scores.append(run.score())
        sweeps += 1
    assert sweeps < 200, "the compass search must run out of new neighbours"
    assert scores == sorted(scores)  # never worse: met first, then FoM
    assert scores[-1][0] and scores[-1][1] >= scores[0][1]
    batches = run.simulations.evaluate.batches
    seen = [sizing_of(c) for c in batches[0]]
    for batch in batches[1:]:  # a polish batch: neighbours of a centre simulated before, one value changed
        x = np.array([sizing_of(c) for c in batch])
        centres = [y for y in seen if ((x != y).sum(axis=1) == 1).all()]
        assert centres, "a polish batch must be the one-value neighbours of one earlier sizing"
        seen.extend(x)
    assert run.result().circuit.topology_key == meeting_seed.topology_key


def test_polish_respects_the_evaluation_cap(meeting_seed):
    run = SizingRun(meeting_seed, TARGET, BACKEND.simulate, RefineConfig(pop_size=8, seed=0, max_evaluations=12))
    assert run.step()
    while run.polish(max_new=4):
        pass
    assert run.n_evaluations <= 12


@pytest.mark.parametrize("max_new", [1, 3, None])
def test_a_run_that_starts_by_polishing_measures_its_seed_first(meeting_seed, max_new):
    recorder = Recorder()
    run = SizingRun(meeting_seed, TARGET, recorder, RefineConfig(pop_size=8, seed=0))
    assert run.polish(max_new=max_new)
    assert recorder.batches[0][0].key == meeting_seed.key
    if max_new is not None:
        assert len(recorder.batches[0]) <= max_new
    (seed_perf,) = BACKEND.simulate([meeting_seed])
    result = run.result()
    assert result.fom_before == pytest.approx(seed_perf.fom)
    assert result.met and result.fom_after >= result.fom_before

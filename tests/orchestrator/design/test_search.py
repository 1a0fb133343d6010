"""One target's search, without Ray: the MNA backend stands in for ngspice (they agree to 1e-13)."""

from __future__ import annotations

import pytest

from circuits import Circuit
from circuits.specs import spec_classes
from circuits.targets import Target
from orchestrator.design.search import SearchConfig, TargetSearch, closeness, family_proposer, optimistic
from simulator.mna import MnaBackend

CLASSES = spec_classes("ocb")
MNA = MnaBackend()


class Counting:
    """The simulator, counting what it is asked to simulate."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, circuits):
        self.calls.append(len(circuits))
        return MNA.simulate(circuits)


def oracle(circuits):
    """A perfect surrogate: the simulated specs themselves."""
    out = []
    for perf in MNA.simulate(circuits):
        row = perf.to_dict()
        out.append({k: row[k] if row[k] is not None else -1e9 for k in ("gain_db", "ugbw_hz", "pm_deg", "fom")})
    return out


def search(target: Target, predict=None, source="random", **config) -> tuple[TargetSearch, Counting]:
    sim = Counting()
    cfg = SearchConfig(**{"budget": 200, "seed": 3, **config})
    known = [(2, 1, 1), (2, 2, 1), (3, 1, 1), (1, 0, 0)]
    return TargetSearch(target, CLASSES, known, family_proposer(), predict, sim, cfg, source), sim


EASY = Target.from_expressions("easy", ["gain_db>=40", "ugbw_hz>=1e8", "pm_deg>=45"])


def test_without_refinement_there_is_no_refinement():
    out = search(EASY, refine_share=0.0)[0].run()
    assert out.refinements == [] and all(p.source == "random" for p in out.proposals.values())


def test_an_easy_target_is_met_and_the_winner_is_verified():
    s, sim = search(EASY)
    out = s.run()
    assert out.met and out.winner is not None
    winner = out.proposals[out.winner]
    (again,) = MNA.simulate([winner.circuit])
    assert EASY.met_by(again.to_dict()) and again.fom == pytest.approx(winner.measured.fom)
    assert out.n_simulations == sum(sim.calls) <= 200
    met_foms = [f for _, f in out.history if f is not None]
    assert met_foms == sorted(met_foms)  # the best met FoM never drops


def test_refinement_improves_the_winner_and_records_lineage():
    s, _ = search(EASY, budget=200, refine_share=0.6, refine_seeds=2)
    out = s.run()
    assert len(out.refinements) == 2
    seeds = [out.proposals[r["seed"]].circuit for r in out.refinements]
    assert seeds[0].topology_key != seeds[1].topology_key  # distinct topologies
    for r, seed in zip(out.refinements, seeds):
        assert r["n_evaluations"] > 0 and r["fom_after"] >= r["fom_before"]
        children = [p for p in out.proposals.values() if p.parent == r["seed"]]
        assert children and all(p.source == "refine" for p in children)
        assert all(p.circuit.topology_key == seed.topology_key for p in children)
    assert out.proposals[out.winner].measured.fom >= max(r["fom_before"] for r in out.refinements)
    assert out.n_simulations <= 200


def test_no_circuit_is_simulated_twice_in_a_search_and_every_simulation_counts():
    sim = Counting()
    seen: list[str] = []

    def simulate(circuits):
        seen.extend(c.key for c in circuits)
        return sim(circuits)

    cfg = SearchConfig(budget=300, seed=3, refine_share=0.6, refine_seeds=3)
    out = TargetSearch(EASY, CLASSES, [], family_proposer(), None, simulate, cfg, "random").run()
    assert len(seen) == len(set(seen)) == out.n_simulations == sum(sim.calls) <= 300
    assert len(out.refinements) == 3  # their seeds were verified by the search, and not simulated again


def test_successive_halving_gives_the_budget_to_the_best_seed_and_polishes_its_winner():
    s, _ = search(EASY, budget=400, refine_share=0.7, refine_seeds=4, refine_rung=1, refine_pop=10)
    out = s.run()
    runs = sorted(out.refinements, key=lambda r: r["n_evaluations"], reverse=True)
    assert len(runs) == 4 and len({out.proposals[r["seed"]].circuit.topology_key for r in runs}) == 4
    # rung 1 keeps 2 of 4 seeds, rung 2 keeps 1: the survivor gets most of the budget, the others one or two rungs
    assert runs[0]["n_evaluations"] > runs[1]["n_evaluations"] >= runs[2]["n_evaluations"]
    assert runs[2]["n_evaluations"] <= 10 and runs[3]["n_evaluations"] <= 10
    assert out.proposals[out.winner].parent == runs[0]["seed"]  # the winner comes from the run that went on
    assert out.n_simulations <= 400


def test_an_impossible_target_spends_at_most_its_budget_and_is_not_met():
    impossible = Target.from_expressions("impossible", ["gain_db>=500"])
    s, sim = search(impossible, budget=120)
    out = s.run()
    assert not out.met
    assert out.n_simulations == sum(sim.calls) <= 120
    assert out.winner is not None  # the least violating circuit is still reported
    assert search(impossible, source="generator")[0].class_mode == "overlap"  # no class lies inside


def test_a_perfect_surrogate_sends_only_good_circuits_to_the_simulator():
    hard = Target.from_expressions("hard", ["gain_db>=80", "ugbw_hz>=3e9", "pm_deg>=60"])
    with_oracle, _ = search(hard, predict=oracle, refine_share=0.0, budget=40, pulls_per_round=10, pull_size=20)
    blind, _ = search(hard, refine_share=0.0, budget=40, pulls_per_round=10, pull_size=20)

    def verified_closeness(out):
        done = [p for p in out.proposals.values() if p.measured is not None]
        return sum(closeness(hard, p.measured) for p in done) / len(done)

    assert verified_closeness(with_oracle.run()) > verified_closeness(blind.run()) + 0.1


def test_searches_are_reproducible():
    a, _ = search(EASY)
    b, _ = search(EASY)
    oa, ob = a.run(), b.run()
    assert list(oa.proposals) == list(ob.proposals) and oa.winner == ob.winner


def test_arms_are_the_classes_inside_the_target():
    target = Target.from_expressions("t", ["gain_db>=0"])
    s, _ = search(target, source="generator")
    assert s.class_mode == "inside"
    assert s.arms[-1] is None  # the family arm
    assert all(CLASSES.axes[0].interval(c[0])[0] >= 0 for c in s.arms[:-1])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"policy": "greedy"}, "unknown bandit policy"),
        ({"sampling": "prior"}, "unknown generator sampling"),
        ({"budget": 0}, "budget"),
        ({"refine_share": 1.0}, "refine_share"),
        ({"explore_share": 1.5}, "explore_share"),
        ({"refine_seeds": 0}, "refine_seeds"),
        ({"refine_rung": 0}, "refine_rung"),
        ({"polish_share": -0.1}, "polish_share"),
        ({"verify": "best"}, "unknown verification rule"),
        ({"ucb_kappa": -1.0}, "ucb_kappa"),
        ({"refine_near": 1.5}, "refine_near"),
    ],
)
def test_bad_search_configs_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SearchConfig(**kwargs)


def test_generated_circuits_are_circuits():
    assert all(isinstance(c, Circuit) for c in family_proposer()(None, 5, 1))


def test_the_family_arm_takes_over_from_a_useless_generator():
    dud = family_proposer()(None, 1, 99)[0]

    def useless(_cls, n, _seed):  # the same circuit every time: nothing new after the first pull
        return [dud] * n

    s = TargetSearch(EASY, CLASSES, [(2, 1, 1), (3, 1, 1)], useless, oracle, MNA.simulate, SearchConfig(budget=120))
    assert s.arms[-1] is None  # the family arm
    out = s.run()
    assert out.arm_pulls[-1] > sum(out.arm_pulls[:-1])
    assert out.met and any(p.source == "random" for p in out.proposals.values())


def test_optimistic_moves_each_prediction_towards_its_bounds_by_at_most_kappa_deviations():
    bounds = ["gain_db>=40", "gain_db<=43", "ugbw_hz>=1e8", "ugbw_hz<=1.2e8", "pm_deg>=60"]
    window = Target.from_expressions("w", bounds)
    predicted = {"gain_db": 50.0, "ugbw_hz": 1e7, "pm_deg": 59.0, "fom": 3.0}
    std = {"gain_db": 2.0, "ugbw_dec": 0.25, "pm_deg": 4.0, "fom": 1.0}
    moved = optimistic(window, predicted, std, kappa=2.0)
    assert moved["gain_db"] == 46.0  # 2 x 2 dB down, still above the window
    assert moved["ugbw_hz"] == pytest.approx(10**7.5)  # half a decade up, still below
    assert moved["pm_deg"] == 60.0  # reaches the bound, not past it
    assert moved["fom"] == 3.0 and optimistic(window, predicted, std, kappa=0.0) == predicted


def unsure_surrogate(circuits):
    """The oracle's specs pushed 1 dB low, with a spread that is large on every other circuit."""
    out = []
    for i, row in enumerate(oracle(circuits)):
        spread = 5.0 if i % 2 else 0.01
        row = {**row, "gain_db": row["gain_db"] - 1.0}
        out.append({**row, "std": {"gain_db": spread, "ugbw_dec": 0.01, "pm_deg": 0.1, "fom": 0.1}})
    return out


def test_ucb_verification_simulates_circuits_the_surrogate_is_unsure_of():
    window = Target.from_expressions("w", ["gain_db>=45", "gain_db<=48"])
    cfg = {"refine_share": 0.0, "budget": 10, "verify_per_round": 10, "pulls_per_round": 10, "explore_share": 0.0}
    ranked, _ = search(window, predict=unsure_surrogate, **cfg)
    ucb, _ = search(window, predict=unsure_surrogate, verify="ucb", **cfg)
    r, u = ranked.run(), ucb.run()
    assert list(r.proposals) == list(u.proposals)  # the same circuits proposed; a different choice simulated
    spread = {k: p.std["gain_db"] for k, p in u.proposals.items()}
    unsure = [spread[p.circuit.key] > 1 for p in u.simulated()]
    assert all(p.std is not None for p in u.proposals.values())
    assert sum(unsure) >= 8 and sum(spread[p.circuit.key] > 1 for p in r.simulated()) <= 6, (unsure, r.simulated())


def test_screened_refinement_asks_the_search_surrogate_and_keeps_to_the_budget():
    """With refine_screen the search's own surrogate picks refinement's simulations from 4x as many bred
    sizings (each one predicted before it is simulated); off, refinement never asks it."""
    asked: list[str] = []

    def recording_oracle(circuits):
        asked.extend(c.key for c in circuits)
        return oracle(circuits)

    window = Target.from_expressions("w", ["gain_db>=50", "gain_db<=53", "ugbw_hz>=5e7", "ugbw_hz<=5.4e7"])
    for screen in (1.0, 4.0):
        asked.clear()
        s, sim = search(window, predict=recording_oracle, budget=100, refine_screen=screen)
        out = s.run()
        assert out.n_simulations == sum(sim.calls) <= 100
        refined = [k for k, p in out.proposals.items() if p.source == "refine"]
        assert refined
        predicted_refined = set(refined) & set(asked)
        if screen == 1.0:
            assert not predicted_refined and all(out.proposals[k].predicted is None for k in refined)
        else:
            assert predicted_refined == set(refined)
            for k in refined:  # each records the prediction it was picked by (stored with the candidate)
                p = out.proposals[k]
                assert p.measured is not None and p.predicted is not None
                if p.measured.ok:
                    assert p.predicted["gain_db"] == p.measured.gain_db
            searched = sum(1 for p in out.proposals.values() if p.source != "refine")
            assert len(asked) - searched >= 2 * len(refined)  # it bred more than it simulated


def test_refinement_screens_by_the_mean_unless_told_to_be_optimistic():
    """refine_kappa 0 (the default) ranks an ensemble's bred sizings by its mean; 2 moves each prediction up
    to 2 deviations towards the window first, so refinement then simulates mostly the sizings it is unsure of."""
    window = Target.from_expressions("w", ["gain_db>=45", "gain_db<=48"])
    spread: dict[str, float] = {}

    def recording(circuits):
        rows = unsure_surrogate(circuits)
        spread.update({c.key: r["std"]["gain_db"] for c, r in zip(circuits, rows)})
        return rows

    unsure = {}
    for kappa in (0.0, 2.0):
        spread.clear()
        s, _ = search(window, predict=recording, budget=100, refine_kappa=kappa)
        refined = [k for k, p in s.run().proposals.items() if p.source == "refine"]
        unsure[kappa] = sum(spread[k] > 1 for k in refined) / len(refined)
    assert unsure[2.0] > unsure[0.0] + 0.2, unsure


def test_the_first_met_circuit_is_counted_in_simulation_order():
    class Recording(Counting):
        def __init__(self) -> None:
            super().__init__()
            self.order: list[Circuit] = []

        def __call__(self, circuits):
            self.order.extend(circuits)
            return super().__call__(circuits)

    sim = Recording()
    target = Target.from_expressions("mid", ["gain_db>=60", "ugbw_hz>=1e8", "pm_deg>=45"])
    cfg = SearchConfig(budget=200, seed=3)
    out = TargetSearch(target, CLASSES, [], family_proposer(), None, sim, cfg, "random").run()
    assert out.met and out.first_met is not None
    judged = [target.met_by(p.to_dict()) for p in MNA.simulate(sim.order)]
    assert out.first_met == judged.index(True) + 1  # the first circuit ngspice says meets it, counted from 1
    batch_end = next(n for n, fom in out.history if fom is not None)
    assert out.first_met <= batch_end < out.first_met + cfg.verify_per_round
    impossible = Target.from_expressions("no", ["gain_db>=400"])
    assert (
        TargetSearch(impossible, CLASSES, [], family_proposer(), None, Counting(), cfg, "random").run().first_met
        is None
    )

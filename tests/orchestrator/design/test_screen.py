"""Surrogate-steered refinement: a closed-form fake surrogate, the numpy MNA backend as the simulator."""

from __future__ import annotations

import math

import numpy as np
import pytest

from circuits import Circuit, CktLoopError, generate
from circuits.targets import Target
from orchestrator.design.campaign import CampaignSettings
from orchestrator.design.refine import RefineConfig, RefineError, SizingRun, refine, sizing_of
from orchestrator.design.screen import Screen, predicted_score
from orchestrator.design.search import SearchConfig
from simulator.mna import MnaBackend

MNA = MnaBackend()
# Unreachable by design: every sizing violates it, so the least violating is the one predicted best.
HIGH_GAIN = Target.from_expressions("high", ["gain_db>=1e6"])


class SumOfIndices:
    """A closed-form surrogate: predicted gain (and FoM) is the sum of the circuit's grid indices, so the
    predicted best of any batch is the one with the largest sum. Records what it is asked."""

    def __init__(self) -> None:
        self.asked: list[list[Circuit]] = []

    def __call__(self, circuits):
        self.asked.append(list(circuits))
        return [self.row(c) for c in circuits]

    @staticmethod
    def row(c: Circuit) -> dict[str, float]:
        k = float(sizing_of(c).sum())
        return {"gain_db": k, "ugbw_hz": 1e6, "pm_deg": 60.0, "fom": k}


class Recorder:
    def __init__(self) -> None:
        self.batches: list[list[Circuit]] = []

    def __call__(self, circuits):
        self.batches.append(list(circuits))
        return MNA.simulate(circuits)


@pytest.fixture(scope="module")
def seed() -> Circuit:
    circuits = [s.circuit for s in generate(30, 0)]
    return max(circuits, key=lambda c: len(sizing_of(c)))  # the most values: room to breed


def score(c: Circuit) -> float:
    return float(sizing_of(c).sum())


def test_each_generation_simulates_the_predicted_best_of_what_it_bred_and_respects_the_budget(seed):
    predict, sim = SumOfIndices(), Recorder()
    cfg = RefineConfig(pop_size=8, seed=0, screen=4, screen_correct=False, max_evaluations=30)
    run = SizingRun(seed, HIGH_GAIN, sim, cfg, predict=predict)
    while run.step():
        pass
    assert run.n_evaluations <= 30 and sum(len(b) for b in sim.batches) == run.n_evaluations
    assert len(sim.batches) == 3 and [len(b) for b in sim.batches] == [8, 8, 8]  # a fourth would pass the cap
    simulated = {c.key for batch in sim.batches for c in batch}
    for batch, asked in zip(sim.batches, predict.asked):
        candidates = [c for c in asked if c.key != seed.key]
        assert len(candidates) >= 3 * len(batch)  # bred about 4 per simulation
        left_out = [score(c) for c in candidates if c.key not in simulated]
        picked = [score(c) for c in batch if c.key != seed.key]
        assert min(picked) >= max(left_out)
        assert picked == sorted(picked, reverse=True)  # simulated (and counted) the predicted best first
    assert sim.batches[0][0].key == seed.key  # the first batch still holds the seed


def test_screened_refinement_climbs_the_surrogate_faster_than_blind_refinement(seed):
    """Against the same budget, the circuits a screened run simulates are the ones the surrogate likes."""

    def mean_score(screen: float) -> float:
        sim = Recorder()
        cfg = RefineConfig(pop_size=8, n_generations=3, seed=0, screen=screen, screen_correct=False)
        refine(seed, HIGH_GAIN, sim, cfg, predict=SumOfIndices())
        return float(np.mean([score(c) for b in sim.batches for c in b]))

    assert mean_score(4) > mean_score(1) + 1


def test_screen_one_or_no_surrogate_is_todays_refinement(seed):
    predict = SumOfIndices()
    plain = refine(seed, HIGH_GAIN, MNA.simulate, RefineConfig(pop_size=8, n_generations=3, seed=2))
    off = refine(seed, HIGH_GAIN, MNA.simulate, RefineConfig(pop_size=8, n_generations=3, seed=2), predict=predict)
    blind = refine(seed, HIGH_GAIN, MNA.simulate, RefineConfig(pop_size=8, n_generations=3, seed=2, screen=4))
    assert plain.circuit.key == off.circuit.key == blind.circuit.key
    assert plain.history == off.history == blind.history and not predict.asked


def test_a_screened_polish_simulates_the_predicted_best_share_of_the_neighbours_best_first(seed):
    predict, sim = SumOfIndices(), Recorder()
    run = SizingRun(seed, HIGH_GAIN, sim, RefineConfig(pop_size=8, seed=0, screen=4), predict=predict)
    assert run.polish()
    n_neighbours = len(run._neighbours(sizing_of(seed), 0.2))
    (batch,) = sim.batches
    assert batch[0].key == seed.key and len(batch) == 1 + math.ceil(n_neighbours / 4)
    picked = [score(c) for c in batch[1:]]
    assert picked == sorted(picked, reverse=True)
    assert run.polish(max_new=1) and len(sim.batches[1]) == 1


def test_the_screen_corrects_a_surrogate_off_by_a_constant_with_the_measured_residuals(seed):
    """A surrogate that reads every UGBW 10x too high and every gain 30 dB low ranks a window as the true
    specs do once shifted by its residual on the seed; uncorrected it picks other circuits."""
    family = [s.circuit for s in generate(200, 3)]
    perfs = MNA.simulate(family)
    ok = [(c, p) for c, p in zip(family, perfs) if p.ok]
    centre = ok[len(ok) // 2][1]
    window = Target.from_expressions(
        "w",
        [
            f"gain_db>={centre.gain_db - 10}",
            f"gain_db<={centre.gain_db + 10}",
            f"ugbw_hz>={centre.ugbw_hz / 3}",
            f"ugbw_hz<={centre.ugbw_hz * 3}",
        ],
    )
    truth = {c.key: p for c, p in ok}

    def biased(circuits):
        return [
            {"gain_db": truth[c.key].gain_db - 30, "ugbw_hz": truth[c.key].ugbw_hz * 10, "fom": 1.0} for c in circuits
        ]

    measured = {ok[0][0].key: ok[0]}
    candidates = [c for c, _ in ok[1:]]
    inside = [window.met_by(truth[c.key].to_dict()) for c in candidates]
    n = sum(inside)
    assert 0 < n < len(candidates) // 2
    corrected = Screen(window, biased).pick(candidates, n, measured)
    assert all(inside[i] for i in corrected)
    raw = Screen(window, biased, correct=False).pick(candidates, n, measured)
    assert sum(inside[i] for i in raw) < n


def test_an_ensembles_spread_moves_a_prediction_towards_the_target():
    window = Target.from_expressions("w", ["gain_db>=45", "gain_db<=48"])
    near = {"gain_db": 44.0, "fom": 1.0}
    assert predicted_score(window, near, None, 2.0)[0] < 0
    assert predicted_score(window, near, {"gain_db": 1.0}, 2.0)[0] == 0  # within 2 deviations: may be met
    assert predicted_score(window, near, {"gain_db": 1.0}, 0.0)[0] < 0


def test_bad_screens_and_bad_predict_answers_are_named(seed):
    with pytest.raises(RefineError, match=r"RefineConfig\.screen must"):
        RefineConfig(screen=0.5)
    with pytest.raises(RefineError, match=r"RefineConfig\.screen_kappa"):
        RefineConfig(screen_kappa=-1.0)
    with pytest.raises(ValueError, match="refine_screen"):
        SearchConfig(refine_screen=0.0)
    with pytest.raises(ValueError, match="refine_kappa"):
        SearchConfig(refine_kappa=-0.5)
    with pytest.raises(CktLoopError, match="predict must be callable"):
        Screen(HIGH_GAIN, "not a function")  # type: ignore[arg-type]
    run = SizingRun(seed, HIGH_GAIN, MNA.simulate, RefineConfig(pop_size=8, screen=2), predict=lambda cs: [])
    with pytest.raises(CktLoopError, match="predict returned 0 answers"):
        run.step()


def test_campaigns_stored_before_the_option_resume_unscreened():
    def search(**knobs: float) -> dict:
        return CampaignSettings(generator="g", surrogate="s", search=SearchConfig(**knobs)).describe()["search"]

    assert "refine_screen" not in search(refine_screen=1.0) and "refine_kappa" not in search(refine_screen=1.0)
    assert search(refine_screen=4.0)["refine_screen"] == 4.0 and "refine_kappa" not in search(refine_screen=4.0)
    assert search(refine_kappa=2.0)["refine_kappa"] == 2.0 and search()["refine_screen"] == 8.0

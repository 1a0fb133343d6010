"""Bandit policies on synthetic arms whose best is known."""

import numpy as np
import pytest

from orchestrator.design.bandit import POLICIES, UCB1, GaussianThompson, Uniform


def play(policy, means, pulls, noise=1.0, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(pulls):
        arm = policy.select()
        policy.update(arm, means[arm] + noise * rng.standard_normal())
    return [a.pulls for a in policy.arms]


@pytest.mark.parametrize("cls", [UCB1, GaussianThompson])
def test_policies_concentrate_on_the_best_arm(cls):
    means = [10.0, 12.0, 20.0, 11.0, 9.0]
    counts = play(cls(len(means), seed=1), means, 400)
    assert counts.index(max(counts)) == 2
    assert counts[2] > 0.5 * 400
    assert min(counts) >= 1  # every arm tried


def test_uniform_spreads_pulls_evenly():
    counts = play(Uniform(4, seed=0), [1.0, 2.0, 3.0, 4.0], 40)
    assert counts == [10, 10, 10, 10]


def test_reward_scale_does_not_matter_to_ucb():
    small = play(UCB1(3, seed=2), [0.1, 0.2, 0.3], 200, noise=0.01)
    large = play(UCB1(3, seed=2), [1000.0, 2000.0, 3000.0], 200, noise=100.0)
    assert small == large


def test_policies_are_seeded_and_check_inputs():
    assert play(GaussianThompson(5, seed=3), [1, 2, 3, 4, 5], 50) == play(
        GaussianThompson(5, seed=3), [1, 2, 3, 4, 5], 50
    )
    with pytest.raises(ValueError, match="at least one arm"):
        UCB1(0)
    with pytest.raises(ValueError, match="finite"):
        UCB1(2).update(0, float("nan"))
    assert set(POLICIES) == {"ucb1", "thompson", "uniform"}

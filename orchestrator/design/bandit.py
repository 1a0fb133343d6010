"""Bandit policies over a target's valid spec classes (the arms).

Plain, seeded classes: a campaign worker (a Ray actor) owns one and asks it which class to pull
next. Rewards are a pull's best figure of merit; their scale is unknown in advance, so UCB1 works
on rewards rescaled to [0, 1] by the range seen so far, and Thompson sampling keeps a Gaussian
posterior per arm. ``Uniform`` is the baseline that spreads pulls evenly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass
class ArmStats:
    pulls: int = 0
    total: float = 0.0
    total_sq: float = 0.0

    @property
    def mean(self) -> float:
        return self.total / self.pulls if self.pulls else 0.0

    @property
    def variance(self) -> float:
        if self.pulls < 2:
            return 0.0
        return max(self.total_sq / self.pulls - self.mean**2, 0.0)


@dataclass
class Policy:
    """Shared bookkeeping; subclasses choose the next arm in ``select``."""

    n_arms: int
    seed: int = 0
    arms: list[ArmStats] = field(init=False)

    def __post_init__(self) -> None:
        if self.n_arms < 1:
            raise ValueError(f"a bandit needs at least one arm, got {self.n_arms}")
        self.arms = [ArmStats() for _ in range(self.n_arms)]
        self.rng = np.random.default_rng(self.seed)

    @property
    def pulls(self) -> int:
        return sum(a.pulls for a in self.arms)

    def update(self, arm: int, reward: float) -> None:
        if not math.isfinite(reward):
            raise ValueError(f"reward for arm {arm} must be finite, got {reward}")
        stats = self.arms[arm]
        stats.pulls += 1
        stats.total += reward
        stats.total_sq += reward * reward

    def select(self) -> int:
        raise NotImplementedError

    def _unpulled(self) -> int | None:
        fresh = [i for i, a in enumerate(self.arms) if a.pulls == 0]
        return int(self.rng.choice(fresh)) if fresh else None


@dataclass
class UCB1(Policy):
    """UCB1 (Auer et al. 2002) on rewards rescaled by the observed range: mean + c·sqrt(2 ln N / n)."""

    c: float = 1.0

    def select(self) -> int:
        fresh = self._unpulled()
        if fresh is not None:
            return fresh
        means = np.array([a.mean for a in self.arms])
        lo, hi = min(means), max(means)
        scaled = (means - lo) / (hi - lo) if hi > lo else np.zeros_like(means)
        n = np.array([a.pulls for a in self.arms])
        bonus = self.c * np.sqrt(2.0 * math.log(self.pulls) / n)
        scores = scaled + bonus
        best = np.flatnonzero(scores == scores.max())
        return int(self.rng.choice(best))


@dataclass
class GaussianThompson(Policy):
    """Thompson sampling with a Gaussian posterior per arm: draw mean + sd/sqrt(n)·N(0, 1), take the best."""

    def select(self) -> int:
        fresh = self._unpulled()
        if fresh is not None:
            return fresh
        pooled = np.sqrt(np.mean([a.variance for a in self.arms])) or 1.0
        draws = [
            a.mean + (math.sqrt(a.variance) or pooled) / math.sqrt(a.pulls) * self.rng.standard_normal()
            for a in self.arms
        ]
        return int(np.argmax(draws))


@dataclass
class Uniform(Policy):
    """Round-robin: every arm equally often (the allocation a bandit must beat)."""

    def select(self) -> int:
        counts = [a.pulls for a in self.arms]
        least = [i for i, c in enumerate(counts) if c == min(counts)]
        return int(self.rng.choice(least))


POLICIES = {"ucb1": UCB1, "thompson": GaussianThompson, "uniform": Uniform}

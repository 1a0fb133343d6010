"""Surrogate screening for refinement: breed more sizings than are simulated, simulate the promising ones.

Refinement (``orchestrator.design.refine``) breeds ``RefineConfig.screen`` times as many sizings as
it simulates (each NSGA-II generation, the initial population included, and each compass sweep of the
polish); a ``Screen`` asks the surrogate about all of them and the ones it expects to meet the target
are simulated. ``predict`` is a plain callable (circuits in, one dict of predicted specs per circuit out:
``gain_db``, ``ugbw_hz``, ``pm_deg`` where the surrogate has it, ``fom``, and for an ensemble ``std``),
so nothing here knows of Ray: the bandit worker passes its batched call of the surrogate actor, tests a
closed-form function.

The score is the search's (``orchestrator.design.search``): the worst normalised violation of the
target's bounds by the predicted specs, then the predicted FoM; with ``kappa`` > 0 each spec is first
moved up to ``kappa`` of an ensemble's deviations towards its bounds (``optimistic``). By default
``kappa`` is 0, the ensemble's mean: measured on 100 window targets, optimism at 2 deviations made many
bred sizings look as good as met and lost 6 targets of 82 (docs/loop.md).

Refinement keeps one topology, and a surrogate's error is largely shared by the sizings of one
topology (UGBW off by 10 % for the seed is off by about as much for its neighbours), while window
targets are narrower than that error. So, with ``correct``, each prediction is first shifted by the
median residual (measured minus predicted; UGBW in decades) over the run's circuits measured so far,
the seed's included: the surrogate then decides which way to move from a measured sizing rather than
where the window lies.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from circuits import Circuit, CktLoopError, Performance, SimStatus
from circuits.specs import SPEC_FIELDS, TARGET_FIELDS
from circuits.targets import Target
from orchestrator.design.constraints import constraint_values

Predict = Callable[[Sequence[Circuit]], list[dict[str, Any]]]


def predicted_performance(target: Target, predicted: dict[str, Any]) -> Performance:
    """The surrogate's prediction as a Performance on the fields it predicts; the bounds on fields it
    does not predict (e.g. pm_deg for a surrogate of OCB's PM reading) are treated as holding."""
    values = {k: float(predicted[k]) for k in SPEC_FIELDS if predicted.get(k) is not None}
    fill = {f: b.low if b.low is not None else b.high for f, b in target.bounds}
    for k in SPEC_FIELDS:
        values.setdefault(k, fill.get(k) or 0.0)
    return Performance(SimStatus.OK, gain_db=values["gain_db"], ugbw_hz=values["ugbw_hz"], pm_deg=values["pm_deg"])


def _decades(hz: float) -> float:
    return math.log10(hz) if hz > 0 else -math.inf


def optimistic(target: Target, predicted: dict[str, float], std: dict[str, float], kappa: float) -> dict[str, float]:
    """``predicted`` with each bounded spec moved up to ``kappa`` of its deviation in ``std`` towards its
    bounds (UGBW in decades; a PM bound reads whichever PM field ``std`` has), never past them."""
    out = dict(predicted)
    for name, bound in target.bounds:
        value = predicted.get(name)
        spread = std.get("ugbw_dec" if name == "ugbw_hz" else name)
        if spread is None and name == "pm_deg":
            spread = next((v for k, v in std.items() if k.startswith("pm")), None)
        if value is None or spread is None or not math.isfinite(value) or (name == "ugbw_hz" and value <= 0):
            continue
        scale = _decades if name == "ugbw_hz" else float
        x = scale(value)
        low = None if bound.low is None else scale(bound.low)
        high = None if bound.high is None else scale(bound.high)
        if low is not None and x < low:
            x = min(low, x + kappa * spread)
        elif high is not None and x > high:
            x = max(high, x - kappa * spread)
        out[name] = 10**x if name == "ugbw_hz" else x
    return out


def predicted_specs(row: Mapping[str, Any]) -> dict[str, float]:
    """The finite target fields of a surrogate's answer (``std`` and the rest left out)."""
    out = {}
    for k in TARGET_FIELDS:
        v = row.get(k)
        if v is not None and math.isfinite(float(v)) and (k != "ugbw_hz" or float(v) > 0):
            out[k] = float(v)
    return out


def predicted_score(
    target: Target, predicted: dict[str, float], std: dict[str, float] | None, kappa: float
) -> tuple[float, float]:
    """(minus the worst normalised violation of the predicted specs, moved by up to ``kappa`` deviations
    of ``std`` when given; the predicted FoM): higher is better, the first 0 where the target is predicted met."""
    moved = optimistic(target, predicted, std, kappa) if std else predicted
    worst = float(np.max(constraint_values(target, predicted_performance(target, moved)), initial=0.0))
    fom = predicted.get("fom", 0.0)
    return (-max(worst, 0.0), fom)


def _residual(predicted: dict[str, float], measured: Performance) -> dict[str, float]:
    """measured minus predicted per spec the surrogate answered (UGBW in decades)."""
    got = measured.to_dict()
    out = {}
    for k, v in predicted.items():
        m = got.get(k)
        if m is None or not math.isfinite(m) or (k == "ugbw_hz" and m <= 0):
            continue
        out[k] = math.log10(m) - math.log10(v) if k == "ugbw_hz" else m - v
    return out


class Screen:
    """One refinement run's screen: ``pick`` which of a batch of bred sizings to simulate.

    Predictions are cached by circuit key, so a sizing bred twice is predicted once; ``pick`` also
    predicts the measured circuits it has no prediction for (the seed), whose residuals correct the rest.
    ``calls`` counts calls of ``predict``.
    """

    def __init__(self, target: Target, predict: Predict, kappa: float = 0.0, correct: bool = True) -> None:
        if not callable(predict):
            raise CktLoopError(f"predict must be callable on a batch of circuits, got {type(predict).__name__}")
        self.target, self.predict, self.kappa, self.correct = target, predict, kappa, correct
        self.rows: dict[str, dict[str, Any]] = {}  # circuit key -> the surrogate's answer
        self.calls = 0

    def _ask(self, circuits: Sequence[Circuit]) -> None:
        todo = list({c.key: c for c in circuits if c.key not in self.rows}.values())
        if not todo:
            return
        answers = self.predict(todo)
        self.calls += 1
        if not isinstance(answers, Sequence) or len(answers) != len(todo):
            got = len(answers) if isinstance(answers, Sequence) else type(answers).__name__
            raise CktLoopError(f"predict returned {got} answers for a batch of {len(todo)} circuits")
        for c, row in zip(todo, answers):
            self.rows[c.key] = dict(row)

    def offsets(self, measured: Mapping[str, tuple[Circuit, Performance]]) -> dict[str, float]:
        """The median residual per spec over the measured circuits predicted (empty without ``correct``)."""
        if not self.correct:
            return {}
        residuals: dict[str, list[float]] = {}
        for key, (_, perf) in measured.items():
            if perf.ok and key in self.rows:
                for k, r in _residual(predicted_specs(self.rows[key]), perf).items():
                    residuals.setdefault(k, []).append(r)
        return {k: float(np.median(v)) for k, v in residuals.items()}

    def scores(
        self, circuits: Sequence[Circuit], measured: Mapping[str, tuple[Circuit, Performance]]
    ) -> list[tuple[float, float]]:
        """Each circuit's ``predicted_score``, corrected by the residuals on ``measured``."""
        self._ask([*circuits, *(c for c, p in measured.values() if p.ok and self.correct)])
        shift = self.offsets(measured)
        out = []
        for c in circuits:
            row = self.rows[c.key]
            specs = predicted_specs(row)
            for k, d in shift.items():
                if k in specs:
                    specs[k] = specs[k] * 10**d if k == "ugbw_hz" else specs[k] + d
            out.append(predicted_score(self.target, specs, row.get("std"), self.kappa))
        return out

    def pick(
        self, circuits: Sequence[Circuit], n: int, measured: Mapping[str, tuple[Circuit, Performance]]
    ) -> list[int]:
        """Indices of the ``n`` circuits with the best scores, best first (the earlier one on ties); all of
        them, in order, when there are no more than ``n`` (then nothing is predicted)."""
        if n >= len(circuits):
            return list(range(len(circuits)))
        if n <= 0:
            return []
        scores = self.scores(circuits, measured)
        return sorted(range(len(circuits)), key=lambda i: (scores[i][0], scores[i][1], -i), reverse=True)[:n]

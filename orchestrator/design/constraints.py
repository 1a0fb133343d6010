"""A target's bounds as normalised constraints and objectives: the one scale refinement and screening judge by.

Constraints ``G_i <= 0``, one per bound side of the target, each in a unit where one step is
comparable: gain in decades of voltage gain (dB / 20), UGBW in decades (log10 Hz), phase margin
in units of 90°, FoM in FoM units. Feasible is exactly ``target.met_by``. A failed simulation
(status not ok) gets ``FAILED_PENALTY`` on every constraint and objective.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from circuits import Performance
from circuits.targets import Target

FAILED_PENALTY = 1e3  # far above any measured circuit's normalised violation or -FoM
UGBW_FLOOR_HZ = 1e-3  # below any sweep, so log10 of a bound <= 0 Hz stays finite and ordered
_TINY = 1e-12


def normalised(field: str, value: Any) -> Any:
    """A spec (a number or an array of them) in units where one step means about as much for every field
    (see module doc)."""
    if field == "gain_db":
        return value / 20.0
    if field == "ugbw_hz":
        return np.log10(np.maximum(value, UGBW_FLOOR_HZ))
    if field == "pm_deg":
        return value / 90.0
    return value  # fom


def constraint_sides(target: Target) -> tuple[tuple[str, str, float], ...]:
    """(field, 'min' or 'max', bound) for every bound side of the target: one constraint each."""
    sides = []
    for field, bound in target.bounds:
        if bound.low is not None:
            sides.append((field, "min", bound.low))
        if bound.high is not None:
            sides.append((field, "max", bound.high))
    return tuple(sides)


def constraint_values(target: Target, performance: Performance) -> np.ndarray:
    """Normalised G (<= 0 where a bound holds), exactly as feasible as ``target.met_by``."""
    sides = constraint_sides(target)
    if not performance.ok:
        return np.full(len(sides), FAILED_PENALTY)
    specs = performance.to_dict()
    g = np.empty(len(sides))
    for j, (field, side, limit) in enumerate(sides):
        value = float(specs[field])
        gap = float(normalised(field, limit) - normalised(field, value))
        g[j] = gap if side == "min" else -gap
        holds = value >= limit if side == "min" else value <= limit
        # Rounding in log10 must not flip the verdict of the exact comparison met_by makes.
        g[j] = min(g[j], 0.0) if holds else max(g[j], _TINY)
    return g


def objective_values(target: Target, performance: Performance) -> np.ndarray:
    """(-FoM, worst normalised constraint value); both FAILED_PENALTY for a failed simulation."""
    if not performance.ok:
        return np.array([FAILED_PENALTY, FAILED_PENALTY])
    fom = performance.fom
    assert fom is not None
    return np.array([-fom, float(np.max(constraint_values(target, performance)))])

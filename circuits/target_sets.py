"""Sets of design targets drawn from data, for campaigns and benchmarks.

* ``paper_targets``: as CktGen draws its automated-design targets (reference §5): the thresholds of
  classes that occur in the data (gain >= the class's lower gain edge, and so on for every axis),
  plus random "outer" threshold triples that occur in no row but are dominated by a class that does.
  Every such target is feasible: a circuit of the dominating class meets it.
* ``hard_targets``: gain and UGBW thresholds with a phase-margin window that random circuits of the
  family rarely meet (a rate below ``max_rate`` on a sample of the family, with a few witnesses, so
  each is known to be feasible).
* ``window_targets``: narrow two-sided windows around the measured specs of random circuits of the family
  (gain ± 1.5 dB, UGBW ± 8 %, PM ± 3°): what a designer asks of a known-good circuit, feasible by the
  circuit itself, and far narrower than the surrogate's errors on unseen circuits.

Targets are minimum requirements on the axes of a class preset in physical units (the ``cktloop``
preset bins a standard phase margin, so its targets read as a designer writes them).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from circuits.specs import SpecClass, SpecClasses
from circuits.targets import Bound, Target


def threshold_target(name: str, classes: SpecClasses, cls: SpecClass) -> Target:
    """gain_db >= the class's lower gain edge, and so on per axis (open lower edges are left out)."""
    bounds = []
    for axis, k in zip(classes.axes, cls):
        if axis.sign != 1.0:
            raise ValueError(f"threshold targets need axes binned on the value itself; {axis.field} is not")
        lo, _ = axis.interval(k)
        if math.isfinite(lo):
            bounds.append((axis.field, Bound(lo, None)))
    if not bounds:
        bounds.append((classes.axes[0].field, Bound(-1e9, None)))  # the all-lowest class: anything goes
    return Target(name, tuple(bounds))


def _dominated(cls: SpecClass, present: Iterable[SpecClass]) -> bool:
    return any(all(p >= c for p, c in zip(other, cls)) for other in present)


def paper_targets(classes: SpecClasses, present: Iterable[SpecClass], n: int, seed: int = 1) -> list[Target]:
    """``n`` targets: half class thresholds and half outer triples, the other kind filling in where one runs short."""
    seen = sorted(set(present))
    if not seen:
        raise ValueError("paper_targets: no classes given")
    rng = np.random.default_rng(seed)
    outer = [c for c in itertools.product(*(range(k) for k in classes.sizes)) if c not in set(seen)]
    outer = [c for c in outer if _dominated(c, seen)]
    n_inner = min(len(seen), n - min(len(outer), n // 2))
    n_outer = min(len(outer), n - n_inner)
    inner_pick = [seen[i] for i in sorted(rng.choice(len(seen), n_inner, replace=False))]
    outer_pick = [outer[i] for i in sorted(rng.choice(len(outer), n_outer, replace=False))] if n_outer else []
    return [
        threshold_target(f"{kind}-{'-'.join(map(str, c))}", classes, c)
        for kind, picks in (("class", inner_pick), ("outer", outer_pick))
        for c in picks
    ]


def meet_rates(targets: Sequence[Target], rows: Sequence[Mapping[str, Any]]) -> list[float]:
    """The share of ``rows`` (measured results; failed ones never meet) that meet each target."""
    if not rows:
        raise ValueError("meet_rates: no rows")
    ok = np.array([r.get("status") == "ok" for r in rows])
    fields = {f for t in targets for f, _ in t.bounds}
    values = {f: np.array([np.nan if r.get(f) is None else float(r[f]) for r in rows]) for f in fields}
    rates = []
    for t in targets:
        met = ok.copy()
        for f, b in t.bounds:
            v = values[f]
            with np.errstate(invalid="ignore"):
                met &= ~np.isnan(v) & (v >= (b.low if b.low is not None else -np.inf))
                met &= v <= (b.high if b.high is not None else np.inf)
        rates.append(float(met.mean()))
    return rates


HARD_GAIN_DB = (40.0, 60.0, 80.0, 100.0, 120.0, 140.0, 160.0, 180.0, 200.0, 220.0)
HARD_UGBW_HZ = (1e8, 3e8, 1e9, 2e9, 5e9, 1e10, 2e10)
HARD_PM_DEG = ((45.0, 90.0), (60.0, 90.0), (75.0, 90.0), (45.0, None), (60.0, None))


def threshold_grid() -> list[Target]:
    """gain_db >= g, ugbw_hz >= u and pm_deg in a window, over the grids above (350 targets)."""
    return [
        Target(
            f"g{g:g}-u{u:.0e}-pm{lo:g}-{hi:g}" if hi is not None else f"g{g:g}-u{u:.0e}-pm{lo:g}",
            (("gain_db", Bound(g, None)), ("ugbw_hz", Bound(u, None)), ("pm_deg", Bound(lo, hi))),
        )
        for g, u, (lo, hi) in itertools.product(HARD_GAIN_DB, HARD_UGBW_HZ, HARD_PM_DEG)
    ]


def hard_targets(
    rows: Sequence[Mapping[str, Any]],
    n: int,
    seed: int = 1,
    max_rate: float = 1 / 500,
    min_witnesses: int = 5,
    candidates: Sequence[Target] | None = None,
) -> list[tuple[Target, float]]:
    """Up to ``n`` targets of ``candidates`` (default ``threshold_grid()``) met by fewer than ``max_rate`` of
    ``rows`` (a random sample of the family) but by at least ``min_witnesses`` of them, so each is known to
    be feasible; with their measured rate."""
    pool = list(candidates) if candidates is not None else threshold_grid()
    rates = meet_rates(pool, rows)
    hard = [(t, r) for t, r in zip(pool, rates) if r * len(rows) >= min_witnesses and r < max_rate]
    rng = np.random.default_rng(seed)
    pick = sorted(rng.choice(len(hard), min(n, len(hard)), replace=False)) if hard else []
    return [hard[i] for i in pick]


WINDOW_GAIN_DB = 1.5
WINDOW_UGBW_FRACTION = 0.08
WINDOW_PM_DEG = 3.0
WINDOW_FIELDS = ("gain_db", "ugbw_hz", "pm_deg")


def window_target(
    name: str,
    row: Mapping[str, Any],
    gain_db: float = WINDOW_GAIN_DB,
    ugbw_fraction: float = WINDOW_UGBW_FRACTION,
    pm_deg: float = WINDOW_PM_DEG,
) -> Target:
    """gain within ``gain_db`` dB, UGBW within ``ugbw_fraction`` of it and PM within ``pm_deg`` degrees of the
    measured specs in ``row`` (the row itself meets it)."""
    g, u, p = (float(row[f]) for f in WINDOW_FIELDS)
    return Target(
        name,
        (
            ("gain_db", Bound(g - gain_db, g + gain_db)),
            ("ugbw_hz", Bound(u * (1.0 - ugbw_fraction), u * (1.0 + ugbw_fraction))),
            ("pm_deg", Bound(p - pm_deg, p + pm_deg)),
        ),
    )


def _windowable(row: Mapping[str, Any]) -> bool:
    if row.get("status") != "ok":
        return False
    values = [row.get(f) for f in WINDOW_FIELDS]
    return all(isinstance(v, int | float) and math.isfinite(v) for v in values) and float(row["ugbw_hz"]) > 0


def window_source(rows: Sequence[Mapping[str, Any]], min_pm_deg: float = 0.0) -> list[Mapping[str, Any]]:
    """The rows windows are drawn around: a dataset's held-out split (``split == "test"``; models train on
    the other split) when it has any, else every row; in either case only rows measured ok with finite specs
    and a phase margin above ``min_pm_deg`` (an unstable amplifier is no designer's target: about 30 % of
    the family's circuits)."""
    held_out = [r for r in rows if r.get("split") == "test"]
    return [r for r in (held_out or rows) if _windowable(r) and float(r["pm_deg"]) > min_pm_deg]


def window_targets(rows: Sequence[Mapping[str, Any]], n: int, seed: int = 1) -> list[Target]:
    """``n`` windows (``window_target``) around distinct rows of ``rows`` drawn with ``seed``, named
    ``window-<k>-<row id>``; rows not measured ok are skipped. Fewer rows than ``n``: one per row."""
    usable = [r for r in rows if _windowable(r)]
    rng = np.random.default_rng(seed)
    pick = [int(i) for i in rng.choice(len(usable), min(n, len(usable)), replace=False)] if usable else []
    return [window_target(f"window-{k}-{usable[i].get('id', i)}", usable[i]) for k, i in enumerate(pick)]


def to_campaign(name: str, targets: Sequence[Target], budget: int | None = None) -> dict[str, Any]:
    """A campaign file's content (see ``orchestrator.design.campaign_file``) for ``targets``."""
    data: dict[str, Any] = {"name": name}
    if budget is not None:
        data["budget"] = budget
    data["targets"] = [
        {
            "name": t.name,
            "specs": {
                f: {k: v for k, v in (("min", b.low), ("max", b.high)) if v is not None} for f, b in t.bounds
            },
        }
        for t in targets
    ]
    return data

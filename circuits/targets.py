"""Design targets: bounds on measured specs, and which spec classes can meet them.

A target is a set of bounds, each a minimum, a maximum or both, on ``gain_db``, ``ugbw_hz`` or
``pm_deg`` (``fom`` too). A spec class is *valid* for a target when its whole interval lies inside
every bound (so any circuit of that class meets the target); ``overlapping`` classes, which may or
may not meet it, serve as the nearest classes when no class lies wholly inside.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from circuits.errors import CktLoopError
from circuits.specs import TARGET_FIELDS, SpecClass, SpecClasses

_EXPRESSION = re.compile(r"^\s*([a-z_]+)\s*(>=|<=|>|<)\s*([-+0-9.eE]+)\s*$")


@dataclass(frozen=True)
class Bound:
    """``low <= value <= high``; either side may be open (None)."""

    low: float | None = None
    high: float | None = None

    def contains(self, value: float) -> bool:
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)


@dataclass(frozen=True)
class Target:
    """A named set of bounds, e.g. gain_db >= 60, ugbw_hz >= 1e9, pm_deg >= 60."""

    name: str
    bounds: tuple[tuple[str, Bound], ...]

    def __post_init__(self) -> None:
        if not self.bounds:
            raise CktLoopError(f"target {self.name!r}: no bounds given")
        for field, bound in self.bounds:
            where = f"target {self.name!r}, field {field!r}"
            if field not in TARGET_FIELDS:
                raise CktLoopError(f"{where}: unknown spec (known: {', '.join(TARGET_FIELDS)})")
            for side in (bound.low, bound.high):
                if side is not None and not math.isfinite(side):
                    raise CktLoopError(f"{where}: bound {side!r} is not a finite number")
            if bound.low is not None and bound.high is not None and bound.low > bound.high:
                raise CktLoopError(f"{where}: min {bound.low:g} > max {bound.high:g}")

    def met_by(self, result: Mapping[str, Any]) -> bool:
        """Whether measured specs (a result with ``status`` ok) satisfy every bound."""
        if result.get("status") != "ok":
            return False
        for field, bound in self.bounds:
            value = result.get(field)
            if value is None or not bound.contains(value):
                return False
        return True

    def describe(self) -> str:
        parts = []
        for field, b in self.bounds:
            if b.low is not None:
                parts.append(f"{field} >= {b.low:g}")
            if b.high is not None:
                parts.append(f"{field} <= {b.high:g}")
        return ", ".join(parts)

    @classmethod
    def from_expressions(cls, name: str, expressions: Iterable[str]) -> Target:
        """Parse ``['gain_db>=60', 'ugbw_hz>=1e9']`` (``>``/``<`` read as ``>=``/``<=``)."""
        bounds: dict[str, Bound] = {}
        for text in expressions:
            match = _EXPRESSION.match(text)
            if not match:
                raise CktLoopError(f"target {name!r}: cannot read {text!r} (expected e.g. 'gain_db>=60')")
            field, op, number = match.groups()
            try:
                value = float(number)
            except ValueError:
                raise CktLoopError(f"target {name!r}: {number!r} in {text!r} is not a number") from None
            old = bounds.get(field, Bound())
            bounds[field] = Bound(value, old.high) if op.startswith(">") else Bound(old.low, value)
        return cls(name, tuple(bounds.items()))

    @classmethod
    def from_mapping(cls, name: str, data: Any) -> Target:
        """Parse ``{gain_db: {min: 60}, pm_deg: {min: 45, max: 90}}``; a side given as None (``max: null``, as
        campaigns store their targets' bounds) is no bound."""
        if not isinstance(data, Mapping):
            raise CktLoopError(f"target {name!r}: 'specs' must map spec names to {{min: .., max: ..}}")
        bounds = []
        for field, spec in data.items():
            where = f"target {name!r}, field {field!r}"
            if not isinstance(spec, Mapping) or not spec or set(spec) - {"min", "max"}:
                raise CktLoopError(f"{where}: expected {{min: number, max: number}} (one or both), got {spec!r}")
            values = {}
            for side in ("min", "max"):
                if spec.get(side) is not None:
                    if isinstance(spec[side], bool) or not isinstance(spec[side], int | float | str):
                        raise CktLoopError(f"{where}: {side} must be a number, got {spec[side]!r}")
                    try:
                        values[side] = float(spec[side])
                    except ValueError:
                        raise CktLoopError(f"{where}: {side} must be a number, got {spec[side]!r}") from None
            if not values:
                raise CktLoopError(f"{where}: expected {{min: number, max: number}} (one or both), got {spec!r}")
            bounds.append((str(field), Bound(values.get("min"), values.get("max"))))
        return cls(name, tuple(bounds))


def class_fits(target: Target, classes: SpecClasses, cls: SpecClass, inside: bool = True) -> bool:
    """Whether every circuit of class ``cls`` meets ``target`` (``inside``) or some might (overlap).

    Bounds on fields the classes do not bin (e.g. ``fom``) are left to verification.
    """
    by_field = dict(zip(classes.fields, zip(classes.axes, cls)))
    for field, bound in target.bounds:
        if field not in by_field:
            continue
        axis, k = by_field[field]
        lo, hi = axis.interval(k)
        low = -math.inf if bound.low is None else bound.low
        high = math.inf if bound.high is None else bound.high
        if inside and not (lo >= low and hi <= high):
            return False
        if not inside and (hi <= low or lo > high):
            return False
    return True


def valid_classes(target: Target, classes: SpecClasses, candidates: Iterable[SpecClass]) -> tuple[list, bool]:
    """The candidate classes wholly inside the target, or (if none) those overlapping it; and which it was."""
    candidates = sorted(set(candidates))
    inside = [c for c in candidates if class_fits(target, classes, c, inside=True)]
    if inside:
        return inside, True
    return [c for c in candidates if class_fits(target, classes, c, inside=False)], False

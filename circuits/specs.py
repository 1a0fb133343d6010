"""Spec classes: (gain, UGBW, phase margin) discretised into joint classes, bin edges as configuration.

A class is one integer per axis; an axis maps a measured value to the number of its edges at or
below the value (so class 0 lies below the first edge and the last class above the last edge).
The ``ocb`` preset reproduces the classes CktGen floors out of OCB's normalised labels (reference
§2.3) in physical units, on the phase margin as OCB reads it (``pm_ocb_deg``, class 0 = the
largest margins). The ``cktloop`` preset bins a standard phase margin the way designers state targets.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from circuits.errors import CktLoopError

SpecClass = tuple[int, ...]
SPEC_FIELDS = ("gain_db", "ugbw_hz", "pm_deg")  # a circuit's measured specs, in this order everywhere
TARGET_FIELDS = (*SPEC_FIELDS, "fom")  # what a target may bound and a prediction may hold


@dataclass(frozen=True)
class SpecAxis:
    """One spec dimension: ``field`` of a result, binned by increasing ``edges`` of ``sign``·value."""

    field: str
    edges: tuple[float, ...]
    sign: float = 1.0  # −1 bins the negated value (OCB's PM classes grow as the margin falls)

    def __post_init__(self) -> None:
        if not self.edges or any(b <= a for a, b in zip(self.edges, self.edges[1:])):
            raise CktLoopError(f"spec axis {self.field}: edges must be a non-empty increasing list, got {self.edges}")
        if self.sign not in (1.0, -1.0):
            raise CktLoopError(f"spec axis {self.field}: sign must be 1 or -1, got {self.sign}")

    @property
    def n_classes(self) -> int:
        return len(self.edges) + 1

    def classify(self, value: float) -> int:
        v = self.sign * value
        return sum(1 for e in self.edges if e <= v)

    def interval(self, k: int) -> tuple[float, float]:
        """The range of ``field`` values in class ``k`` (in the field's own sign)."""
        lo = self.edges[k - 1] if k > 0 else -math.inf
        hi = self.edges[k] if k < len(self.edges) else math.inf
        return (lo, hi) if self.sign > 0 else (-hi, -lo)


@dataclass(frozen=True)
class SpecClasses:
    """Joint classes over several axes (gain, UGBW, PM by default)."""

    name: str
    axes: tuple[SpecAxis, ...]

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(a.field for a in self.axes)

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(a.n_classes for a in self.axes)

    def classify(self, result: Mapping[str, Any]) -> SpecClass | None:
        """The joint class of a result (an exported row or ``Performance.to_dict()``); None unless status is ok."""
        if result.get("status") != "ok":
            return None
        values = [result.get(a.field) for a in self.axes]
        finite = [float(v) for v in values if v is not None and math.isfinite(v)]
        if len(finite) < len(values):
            return None
        return tuple(a.classify(v) for a, v in zip(self.axes, finite))

    def describe(self, cls: SpecClass) -> str:
        """A class as a person reads it, e.g. ``gain_db in [80.47, 180.47) ...``."""
        parts = []
        for axis, k in zip(self.axes, cls):
            lo, hi = axis.interval(k)
            parts.append(f"{axis.field} in [{lo:.4g}, {hi:.4g})")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "axes": [{"field": a.field, "edges": list(a.edges), "sign": a.sign} for a in self.axes],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SpecClasses:
        try:
            axes = tuple(
                SpecAxis(a["field"], tuple(float(e) for e in a["edges"]), float(a.get("sign", 1.0)))
                for a in data["axes"]
            )
            return cls(str(data["name"]), axes)
        except (KeyError, TypeError, ValueError) as exc:
            raise CktLoopError(f"malformed spec classes {data!r}: {exc}") from None


def filter_seen(train: Iterable[SpecClass | None], test: Iterable[SpecClass | None]) -> list[bool]:
    """Which test classes occur among the training classes (unseen ones are dropped, as in CktGen)."""
    seen = {c for c in train if c is not None}
    return [c is not None and c in seen for c in test]


def _ocb() -> SpecClasses:
    # OCB normalisation (reference §2.3): g = G/100 + 1.19531, b = UGF/1e9 + 1e-5, p = PM_ocb/(−90) + 2.00001;
    # CktGen floors each. floor(x) = k  <=>  edge_k <= value < edge_(k+1), with the edges below.
    gain = tuple(100.0 * (k - 1.19531) for k in range(1, 4))
    ugbw = tuple((k - 1e-5) * 1e9 for k in range(1, 33))
    pm = tuple(90.0 * (k - 2.00001) for k in range(1, 5))  # on −PM_ocb
    return SpecClasses(
        "ocb", (SpecAxis("gain_db", gain), SpecAxis("ugbw_hz", ugbw), SpecAxis("pm_ocb_deg", pm, sign=-1.0))
    )


def _cktloop() -> SpecClasses:
    gain = (0.0, 40.0, 60.0, 80.0, 100.0, 120.0, 140.0, 160.0, 180.0, 200.0, 220.0)
    ugbw = (1e6, 1e7, 1e8, 3e8, 1e9, 2e9, 5e9, 1e10, 2e10)
    pm = (0.0, 30.0, 45.0, 60.0, 75.0, 90.0)
    return SpecClasses("cktloop", (SpecAxis("gain_db", gain), SpecAxis("ugbw_hz", ugbw), SpecAxis("pm_deg", pm)))


PRESETS: dict[str, SpecClasses] = {"ocb": _ocb(), "cktloop": _cktloop()}


def spec_classes(name: str) -> SpecClasses:
    try:
        return PRESETS[name]
    except KeyError:
        raise CktLoopError(f"unknown spec classes {name!r} (known: {', '.join(sorted(PRESETS))})") from None

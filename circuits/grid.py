"""Device value grids: circuits store integer grid indices, the netlister scales them.

OCB stores every device value as an integer feature ``k``; the physical value is
``k`` times a per-device basis (reference §1.3). A grid fixes the admissible ``k`` and
the basis, so "a value off the grid" is a precise, checkable statement.
"""

from __future__ import annotations

from dataclasses import dataclass

OHM_PER_UNIT = 1e5  # 0.1 MΩ
FARAD_PER_UNIT = 1e-14  # 10 fF
SIEMENS_PER_UNIT = 1e-4  # 0.1 mS


@dataclass(frozen=True)
class ValueGrid:
    """Admissible integer indices ``k_min..k_max``; physical value = k · scale · basis."""

    name: str
    k_min: int
    k_max: int
    scale: float
    description: str

    def contains(self, k: int) -> bool:
        return self.k_min <= k <= self.k_max

    def ohms(self, k: int) -> float:
        return k * self.scale * OHM_PER_UNIT

    def farads(self, k: int) -> float:
        return k * self.scale * FARAD_PER_UNIT

    def siemens(self, k: int) -> float:
        """Magnitude of the transconductance; the sign comes from the subgraph type."""
        return k * self.scale * SIEMENS_PER_UNIT


GRIDS: dict[str, ValueGrid] = {
    "ocb": ValueGrid("ocb", 1, 101, 1.0, "CktGNN's discrete generator: R 0.1-10.1 MΩ, C 10-1010 fF, |gm| 0.1-10.1 mS"),
}
DEFAULT_GRID = "ocb"


def value_grid(name: str) -> ValueGrid:
    try:
        return GRIDS[name]
    except KeyError:
        raise ValueError(f"unknown value grid {name!r} (known: {', '.join(sorted(GRIDS))})") from None

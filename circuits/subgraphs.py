"""The 26 OCB subgraph types: which devices each carries and how they are wired.

Facts from the OCB family (reference §1.1). A subgraph sits between an input net ``a``
and an output net ``b``; gm subgraphs also carry a fixed load (1 MΩ ∥ 50 fF) on the net
their transconductor drives.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property


class Arrangement(StrEnum):
    """How a subgraph's R and C sit between its two nets (besides any gm)."""

    NONE = "none"  # no passive element (In, Out, bare gm stages)
    R = "r"
    C = "c"
    SERIES_RC = "series_rc"  # R from a to an internal node, C from it to b
    PARALLEL = "parallel"  # every passive element directly between a and b


@dataclass(frozen=True)
class SubgraphType:
    """One row of the OCB subgraph table."""

    index: int
    name: str
    has_r: bool
    has_c: bool
    gm_sign: int  # +1 / -1 for gm stages, 0 for passive types and In/Out
    feedback: bool  # gm senses the later net and drives the earlier one
    arrangement: Arrangement

    @property
    def has_gm(self) -> bool:
        return self.gm_sign != 0

    @property
    def is_terminal(self) -> bool:
        return self.index in (IN, OUT)

    @property
    def is_passive(self) -> bool:
        return not self.is_terminal and not self.has_gm

    @cached_property  # read for every node of every circuit built: computed once per type
    def devices(self) -> tuple[str, ...]:
        """Names of the device values this type carries, in (r, c, gm) order."""
        return tuple(name for name, present in (("r", self.has_r), ("c", self.has_c), ("gm", self.has_gm)) if present)


IN, OUT = 0, 1


def _table() -> tuple[SubgraphType, ...]:
    rows = [
        SubgraphType(0, "In", False, False, 0, False, Arrangement.NONE),
        SubgraphType(1, "Out", False, False, 0, False, Arrangement.NONE),
        SubgraphType(2, "R", True, False, 0, False, Arrangement.R),
        SubgraphType(3, "C", False, True, 0, False, Arrangement.C),
        SubgraphType(4, "R-C series", True, True, 0, False, Arrangement.SERIES_RC),
        SubgraphType(5, "R|C parallel", True, True, 0, False, Arrangement.PARALLEL),
    ]
    # Types 6..25 come in blocks of four: (+ff, -ff, +fb, -fb) for each passive dressing.
    dressings = [
        ("gm", False, False, Arrangement.NONE),
        ("C|gm", False, True, Arrangement.PARALLEL),
        ("R|gm", True, False, Arrangement.PARALLEL),
        ("C|R|gm", True, True, Arrangement.PARALLEL),
        ("RC-series|gm", True, True, Arrangement.SERIES_RC),
    ]
    index = 6
    for label, has_r, has_c, arrangement in dressings:
        for sign, feedback in ((+1, False), (-1, False), (+1, True), (-1, True)):
            polarity = "+" if sign > 0 else "-"
            direction = "-" if feedback else "+"
            name = label.replace("gm", f"{polarity}gm{direction}")
            rows.append(SubgraphType(index, name, has_r, has_c, sign, feedback, arrangement))
            index += 1
    return tuple(rows)


SUBGRAPH_TYPES: tuple[SubgraphType, ...] = _table()
N_TYPES = len(SUBGRAPH_TYPES)  # 26

FEEDFORWARD_GM = tuple(t.index for t in SUBGRAPH_TYPES if t.has_gm and not t.feedback)
FEEDBACK_GM = tuple(t.index for t in SUBGRAPH_TYPES if t.has_gm and t.feedback)
PASSIVE = tuple(t.index for t in SUBGRAPH_TYPES if t.is_passive)


def subgraph_type(index: int) -> SubgraphType:
    """Look a type up by index, naming the bad index if there is none."""
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < N_TYPES:
        raise ValueError(f"unknown node type {index!r} (expected an integer 0..{N_TYPES - 1})")
    return SUBGRAPH_TYPES[index]

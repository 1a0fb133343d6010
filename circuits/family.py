"""A seeded random generator of the OCB op-amp family, following CktGNN's rules (reference §1.4).

One topology is drawn, then ``sizings_per_topology`` circuits are sized on it with every device
value drawn uniformly from the grid. Stage 3 exists with p = 0.8; slots A, C and B with p = 0.6.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from circuits.circuit import POS_IN, POS_OUT, Circuit, Node
from circuits.grid import DEFAULT_GRID, value_grid
from circuits.subgraphs import IN, OUT, subgraph_type

MAIN_STAGE_TYPES = (6, 7, 10, 11)
FREE_SLOT_TYPES = tuple(range(2, 26))
PASSIVE_SLOT_TYPES = (2, 3, 4, 5)
POS_SLOT_A, POS_SLOT_C, POS_SLOT_B = 5, 6, 7


@dataclass(frozen=True)
class FamilyConfig:
    """The family's knobs; defaults are CktGNN's generator defaults."""

    p_third_stage: float = 0.8
    p_slot: float = 0.6
    sizings_per_topology: int = 20
    grid: str = DEFAULT_GRID

    def __post_init__(self) -> None:
        for name in ("p_third_stage", "p_slot"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {getattr(self, name)}")
        if self.sizings_per_topology < 1:
            raise ValueError(f"sizings_per_topology must be >= 1, got {self.sizings_per_topology}")
        value_grid(self.grid)


@dataclass(frozen=True)
class Sample:
    """A generated circuit with its place in the stream: topology number and sizing number."""

    index: int
    topology: int
    sizing: int
    circuit: Circuit


def random_topology(rng: np.random.Generator, config: FamilyConfig = FamilyConfig()) -> Circuit:
    """Draw one topology; device values are set to the grid minimum until sized."""
    types = {2: _choice(rng, MAIN_STAGE_TYPES), 3: _choice(rng, MAIN_STAGE_TYPES)}
    if rng.uniform() <= config.p_third_stage:
        types[4] = _choice(rng, MAIN_STAGE_TYPES)
    nodes = [Node(IN, POS_IN), Node(OUT, POS_OUT)] + [Node(t, p) for p, t in types.items()]
    stages = [i + 2 for i in range(len(types))]  # node indices of stage 1..n
    edges = [(0, stages[0]), *pairwise(stages), (stages[-1], 1)]
    # Anchors for free slots: In, stage 1 and (3-stage only) stage 2; Out closes every pair.
    anchors = [0, *stages[:-1]]

    def add_side(pos: int, type_: int, src: int, dst: int) -> None:
        nodes.append(Node(type_, pos))
        edges.extend([(src, len(nodes) - 1), (len(nodes) - 1, dst)])

    def free_slot(pos: int) -> None:
        if rng.uniform() <= config.p_slot:
            type_ = _choice(rng, FREE_SLOT_TYPES)
            pairs = [(a, b) for k, a in enumerate(anchors) for b in [*anchors[k + 1 :], 1]]
            src, dst = pairs[int(rng.integers(len(pairs)))]
            add_side(pos, type_, src, dst)

    free_slot(POS_SLOT_A)
    if rng.uniform() <= config.p_slot:
        type_ = _choice(rng, PASSIVE_SLOT_TYPES)
        src = stages[0] if len(stages) == 2 else stages[int(rng.integers(2))]
        add_side(POS_SLOT_C, type_, src, 1)
    free_slot(POS_SLOT_B)
    grid = value_grid(config.grid)
    nodes = [
        Node(n.type, n.pos, *(grid.k_min if d in subgraph_type(n.type).devices else 0 for d in ("r", "c", "gm")))
        for n in nodes
    ]
    return Circuit(nodes=tuple(nodes), edges=tuple(edges), grid=config.grid)


def random_sizing(rng: np.random.Generator, topology: Circuit) -> Circuit:
    """Redraw every device value of ``topology`` uniformly on its grid."""
    grid = value_grid(topology.grid)
    values = []
    for node in topology.nodes:
        devices = subgraph_type(node.type).devices
        r, c, gm = (int(rng.integers(grid.k_min, grid.k_max + 1)) if d in devices else 0 for d in ("r", "c", "gm"))
        values.append((r, c, gm))
    return topology.with_values(values)


def generate(n: int, seed: int, config: FamilyConfig = FamilyConfig()) -> Iterator[Sample]:
    """The deterministic stream of ``n`` circuits for ``seed``; a prefix of a longer stream."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = np.random.default_rng(seed)
    topology = None
    for index in range(n):
        topo_number, sizing = divmod(index, config.sizings_per_topology)
        if sizing == 0:
            topology = random_topology(rng, config)
        assert topology is not None
        yield Sample(index, topo_number, sizing, random_sizing(rng, topology))


def _choice(rng: np.random.Generator, options: tuple[int, ...]) -> int:
    return options[int(rng.integers(len(options)))]

"""The circuit domain model: a DAG of OCB subgraph nodes with device values on a grid.

A circuit is a *spine* (In → stage 1 → stage 2 [→ stage 3] → Out, positions 0, 2, 3, 4, 1)
plus side nodes (positions 5-7), each spanning two spine nets: an edge X → side → Y puts
the side element between X's output net and Y's output net (reference §1.4-1.6).
Construction validates, so a ``Circuit`` that exists is always netlistable.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from itertools import pairwise
from typing import Any

from circuits.errors import CircuitError
from circuits.grid import DEFAULT_GRID, value_grid
from circuits.subgraphs import IN, OUT, subgraph_type

POS_IN, POS_OUT = 0, 1
MAIN_POSITIONS = (2, 3, 4)
SIDE_POSITIONS = (5, 6, 7)
N_POSITIONS = 8
MAX_NODES = 8
DEVICE_FIELDS = ("r", "c", "gm")


@dataclass(frozen=True, order=True)
class Node:
    """One subgraph: its type (0-25), slot position (0-7) and integer device values."""

    type: int
    pos: int
    r: int = 0
    c: int = 0
    gm: int = 0

    def values(self) -> tuple[int, int, int]:
        return (self.r, self.c, self.gm)


@dataclass(frozen=True)
class Circuit:
    """A validated OCB op-amp: nodes, directed edges between node indices, and a value grid."""

    nodes: tuple[Node, ...]
    edges: tuple[tuple[int, int], ...]
    grid: str = DEFAULT_GRID
    _spine: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", tuple(self.nodes))
        for j, edge in enumerate(self.edges):
            if not (isinstance(edge, tuple | list) and len(edge) == 2 and all(_is_int(x) for x in edge)):
                raise CircuitError(f"edge {j} must be a pair of node indices, got {edge!r}")
        object.__setattr__(self, "edges", tuple(sorted({(u, v) for u, v in self.edges})))
        problems = structure_problems(self.nodes, self.edges, self.grid)
        if problems:
            raise CircuitError(problems[0])
        object.__setattr__(self, "_spine", _spine(self.nodes, self.edges))

    # --- structure -------------------------------------------------------------------------

    @property
    def spine(self) -> tuple[int, ...]:
        """Node indices along the main path, In first and Out last."""
        return self._spine

    @property
    def n_stages(self) -> int:
        return len(self._spine) - 2

    def predecessors(self, v: int) -> list[int]:
        return [u for u, w in self.edges if w == v]

    def successors(self, u: int) -> list[int]:
        return [w for v, w in self.edges if v == u]

    def side_nodes(self) -> list[int]:
        return [i for i, n in enumerate(self.nodes) if n.pos in SIDE_POSITIONS]

    def topological_order(self) -> list[int]:
        """Node indices In first, Out last, each side node right before the later end of its span."""
        order: list[int] = []
        for s in self._spine:
            order.extend(sorted(i for i in self.side_nodes() if self.successors(i) == [s]))
            order.append(s)
        return order

    # --- identity ---------------------------------------------------------------------------

    def canonical(self) -> Circuit:
        """The same circuit with nodes in a canonical order (so equal circuits compare equal)."""
        return self._canonical

    @cached_property
    def _canonical(self) -> Circuit:
        spine_rank = {node: rank for rank, node in enumerate(self._spine)}
        span: list[list[int]] = [[] for _ in self.nodes]  # spine ranks of predecessors, then of successors
        for u, v in self.edges:
            span[v].append(spine_rank.get(u, -1))
        for u, v in self.edges:
            span[u].append(spine_rank.get(v, -1))

        def sort_key(i: int) -> tuple[Any, ...]:
            n = self.nodes[i]
            return (n.pos, n.type, n.values(), tuple(span[i]))

        order = sorted(range(len(self.nodes)), key=sort_key)
        if order == list(range(len(self.nodes))):
            return self
        new_index = {old: new for new, old in enumerate(order)}
        # A renumbering of a valid circuit is valid: built without checking it again.
        return _unchecked(
            tuple(self.nodes[i] for i in order),
            tuple(sorted((new_index[u], new_index[v]) for u, v in self.edges)),
            self.grid,
        )

    @cached_property
    def key(self) -> str:
        """Content hash: identical for the same circuit whatever its node order."""
        return _hash(_key_json(self.canonical()))

    @cached_property
    def topology_key(self) -> str:
        """Hash of the topology alone (types, positions, edges), ignoring device values."""
        c = self.canonical()
        nodes = ",".join(f"[{n.type},{n.pos}]" for n in c.nodes)
        return _hash(f'{{"edges":[{_edges_json(c.edges)}],"nodes":[{nodes}]}}')

    def with_values(self, values: Sequence[tuple[int, int, int]]) -> Circuit:
        """The same topology with new (r, c, gm) grid indices, one triple per node (only the values
        are checked again: the structure is this circuit's)."""
        if len(values) != len(self.nodes):
            raise CircuitError(f"expected {len(self.nodes)} value triples, got {len(values)}")
        nodes = tuple(replace(n, r=int(r), c=int(c), gm=int(g)) for n, (r, c, g) in zip(self.nodes, values))
        grid = value_grid(self.grid)
        for i, node in enumerate(nodes):
            problems = _value_problems(i, node, subgraph_type(node.type), grid)
            if problems:
                raise CircuitError(problems[0])
        return _unchecked(nodes, self.edges, self.grid)

    # --- serialisation ----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "grid": self.grid,
            "nodes": [{"type": n.type, "pos": n.pos, "r": n.r, "c": n.c, "gm": n.gm} for n in self.nodes],
            "edges": [list(e) for e in self.edges],
        }

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.canonical().to_dict(), indent=indent, separators=None if indent else (",", ":"))

    @classmethod
    def from_dict(cls, data: Any) -> Circuit:
        """Build and validate a circuit from parsed JSON, naming the first bad field."""
        if not isinstance(data, dict):
            raise CircuitError(f"circuit must be a JSON object, got {type(data).__name__}")
        unknown = set(data) - {"grid", "nodes", "edges"}
        if unknown:
            raise CircuitError(f"unknown circuit field(s): {', '.join(sorted(unknown))}")
        for name in ("nodes", "edges"):
            if not isinstance(data.get(name), list):
                raise CircuitError(f"circuit field {name!r} must be a list")
        nodes = [_node_from_dict(i, raw) for i, raw in enumerate(data["nodes"])]
        edges = []
        for j, e in enumerate(data["edges"]):
            if not (isinstance(e, list) and len(e) == 2 and all(_is_int(x) for x in e)):
                raise CircuitError(f"edge {j} must be a pair of node indices, got {e!r}")
            edges.append((e[0], e[1]))
        grid = data.get("grid", DEFAULT_GRID)
        if not isinstance(grid, str):
            raise CircuitError(f"circuit field 'grid' must be a string, got {grid!r}")
        return cls(nodes=tuple(nodes), edges=tuple(edges), grid=grid)

    @classmethod
    def from_json(cls, text: str) -> Circuit:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CircuitError(f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
        return cls.from_dict(data)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _node_from_dict(i: int, raw: Any) -> Node:
    if not isinstance(raw, dict):
        raise CircuitError(f"node {i} must be an object with type, pos, r, c, gm")
    unknown = set(raw) - {"type", "pos", *DEVICE_FIELDS}
    if unknown:
        raise CircuitError(f"node {i}: unknown field(s) {', '.join(sorted(unknown))}")
    for name in ("type", "pos"):
        if name not in raw:
            raise CircuitError(f"node {i}: missing field {name!r}")
    for name in ("type", "pos", *DEVICE_FIELDS):
        if name in raw and not _is_int(raw[name]):
            raise CircuitError(f"node {i}: field {name!r} must be an integer, got {raw[name]!r}")
    return Node(**{k: raw[k] for k in ("type", "pos", *DEVICE_FIELDS) if k in raw})


def _digest(data: dict[str, Any]) -> str:
    return _hash(json.dumps(data, sort_keys=True, separators=(",", ":")))


def _hash(blob: str) -> str:
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def _edges_json(edges: Iterable[tuple[int, int]]) -> str:
    return ",".join(f"[{u},{v}]" for u, v in edges)


def _key_json(c: Circuit) -> str:
    """``_digest``'s text of ``c.to_dict()`` (keys sorted, no spaces), written out directly: the
    circuit key is hashed for every circuit a search meets, and ``json.dumps`` was most of its cost."""
    nodes = ",".join(f'{{"c":{n.c},"gm":{n.gm},"pos":{n.pos},"r":{n.r},"type":{n.type}}}' for n in c.nodes)
    return f'{{"edges":[{_edges_json(c.edges)}],"grid":{json.dumps(c.grid)},"nodes":[{nodes}]}}'


def _unchecked(nodes: tuple[Node, ...], edges: tuple[tuple[int, int], ...], grid: str) -> Circuit:
    """A circuit known to be valid (sorted distinct edges), built without ``__post_init__``'s checks."""
    c = object.__new__(Circuit)
    for name, value in (("nodes", nodes), ("edges", edges), ("grid", grid), ("_spine", _spine(nodes, edges))):
        object.__setattr__(c, name, value)
    return c


def _spine(nodes: Sequence[Node], edges: Iterable[tuple[int, int]]) -> tuple[int, ...]:
    by_pos = {n.pos: i for i, n in enumerate(nodes) if n.pos not in SIDE_POSITIONS}
    return tuple(by_pos[p] for p in (POS_IN, *MAIN_POSITIONS, POS_OUT) if p in by_pos)


def structure_problems(nodes: Sequence[Node], edges: Sequence[tuple[int, int]], grid: str = DEFAULT_GRID) -> list[str]:
    """Every reason the graph is not a valid OCB circuit; empty when it is.

    Rules: one In at position 0, one Out at position 1; 2 or 3 main-path stages at positions
    2, 3(, 4) chained In → stages → Out with no feedback or passive types; each side node (positions 5-7)
    spans two distinct spine nets in forward order; device values on the grid, absent ones 0;
    the graph is acyclic (implied by the spine order).
    """
    try:
        g = value_grid(grid)
    except ValueError as exc:
        return [str(exc)]
    problems: list[str] = []
    n = len(nodes)
    if not 3 <= n <= MAX_NODES:  # 3 lets the stage rule name a missing stage
        return [f"a circuit has 3 to {MAX_NODES} nodes, got {n}"]
    for i, node in enumerate(nodes):
        try:
            t = subgraph_type(node.type)
        except ValueError as exc:
            problems.append(f"node {i}: {exc}")
            continue
        if not _is_int(node.pos) or not 0 <= node.pos < N_POSITIONS:
            problems.append(f"node {i}: position {node.pos!r} is not in 0..{N_POSITIONS - 1}")
            continue
        if (t.index == IN) != (node.pos == POS_IN) or (t.index == OUT) != (node.pos == POS_OUT):
            problems.append(f"node {i}: type {t.name} cannot sit at position {node.pos}")
        if node.pos in MAIN_POSITIONS and t.feedback:
            problems.append(f"node {i}: feedback type {t.name} on the main path (position {node.pos})")
        if node.pos in MAIN_POSITIONS and t.is_passive:
            problems.append(f"node {i}: passive type {t.name} on the main path (position {node.pos}); stages need a gm")
        problems.extend(_value_problems(i, node, t, g))
    if problems:
        return problems
    positions = [node.pos for node in nodes]
    for p, label in ((POS_IN, "In"), (POS_OUT, "Out")):
        if positions.count(p) != 1:
            problems.append(f"a circuit needs exactly one {label} node, got {positions.count(p)}")
    for p in MAIN_POSITIONS:
        if positions.count(p) > 1:
            problems.append(f"main-path position {p} is used {positions.count(p)} times")
    stages = [p for p in MAIN_POSITIONS if p in positions]
    if stages not in ([2, 3], [2, 3, 4]):
        problems.append(f"the main path needs stages at positions 2, 3 and optionally 4, got {stages}")
    for j, (u, v) in enumerate(edges):
        if not (0 <= u < n and 0 <= v < n):
            problems.append(f"edge {j} ({u}, {v}) refers to a node that does not exist")
        elif u == v:
            problems.append(f"edge {j} ({u}, {v}) is a self-loop")
    if problems:
        return problems

    spine = _spine(nodes, edges)
    rank = {node: r for r, node in enumerate(spine)}
    chain = set(pairwise(spine))
    edge_set = set(edges)
    for u, v in sorted(chain - edge_set):
        problems.append(f"missing main-path edge {u} -> {v}")
    for u, v in sorted(edge_set - chain):
        if u in rank and v in rank:
            kind = "cycle through" if rank[u] >= rank[v] else "extra edge on"
            problems.append(f"{kind} the main path: edge {u} -> {v}")
    for i in range(n):
        if i in rank:
            continue
        preds = [u for u, v in edges if v == i]
        succs = [v for u, v in edges if u == i]
        if len(preds) != 1 or len(succs) != 1:
            problems.append(
                f"side node {i} needs exactly one incoming and one outgoing edge, got {len(preds)} and {len(succs)}"
            )
            continue
        a, b = preds[0], succs[0]
        if a not in rank or b not in rank:
            problems.append(f"side node {i} must connect two main-path nodes, got {a} -> {i} -> {b}")
        elif rank[a] >= rank[b]:
            problems.append(f"side node {i} closes a cycle: {a} -> {i} -> {b} runs backwards on the main path")
        elif b == spine[-2]:
            problems.append(f"side node {i} ends at the last stage, whose output net is Out's: connect it to Out")
        elif b == spine[-1] and a == spine[-2]:
            problems.append(f"side node {i} spans the last stage's output and Out, which are the same net")
    return problems


def _value_problems(i: int, node: Node, t: Any, g: Any) -> list[str]:
    """What is wrong with node ``i``'s device values for its type ``t`` on grid ``g``."""
    problems = []
    for name, k in zip(DEVICE_FIELDS, node.values()):
        if name in t.devices and not (_is_int(k) and g.contains(k)):
            problems.append(
                f"node {i}: {name} value {k!r} is off the {g.name!r} grid ({g.k_min}..{g.k_max}) for type {t.name}"
            )
        elif name not in t.devices and k != 0:
            problems.append(f"node {i}: type {t.name} has no {name} device but {name}={k!r}")
    return problems

"""Fixed-size array view of a circuit, for models: node tokens in topological order, adjacency, values.

Numpy only (the models turn these into tensors). Nodes come In first and Out last; unused rows are
padding (type ``PAD_TYPE``, position ``PAD_POS``, no edges) so models can mask them instead of
mistaking them for In nodes (reference §6.10). ``decode`` is the inverse for generated graphs: it
snaps values to the grid, zeroes devices a type does not have, and validates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from circuits.circuit import MAX_NODES, N_POSITIONS, Circuit, Node
from circuits.grid import DEFAULT_GRID, value_grid
from circuits.subgraphs import N_TYPES, subgraph_type

PAD_TYPE = N_TYPES  # 26
PAD_POS = N_POSITIONS  # 8
DEVICES = ("r", "c", "gm")


@dataclass(frozen=True)
class EncodedCircuit:
    """``types``/``pos`` (MAX_NODES,), ``adj`` (MAX_NODES, MAX_NODES) with adj[u, v] = edge u→v, u < v,
    ``values`` (MAX_NODES, 3) grid indices (r, c, gm), ``n_nodes``."""

    types: np.ndarray
    pos: np.ndarray
    adj: np.ndarray
    values: np.ndarray
    n_nodes: int


def encode(circuit: Circuit) -> EncodedCircuit:
    order = circuit.topological_order()
    index = {old: new for new, old in enumerate(order)}
    types = np.full(MAX_NODES, PAD_TYPE, dtype=np.int64)
    pos = np.full(MAX_NODES, PAD_POS, dtype=np.int64)
    values = np.zeros((MAX_NODES, 3), dtype=np.int64)
    adj = np.zeros((MAX_NODES, MAX_NODES), dtype=np.int64)
    for new, old in enumerate(order):
        node = circuit.nodes[old]
        types[new], pos[new] = node.type, node.pos
        values[new] = node.values()
    for u, v in circuit.edges:
        adj[index[u], index[v]] = 1
    return EncodedCircuit(types, pos, adj, values, len(order))


def decode(
    types: np.ndarray, pos: np.ndarray, adj: np.ndarray, values: np.ndarray, n_nodes: int, grid: str = DEFAULT_GRID
) -> Circuit:
    """A circuit from model outputs; raises ``CircuitError`` naming why the graph is not a valid op-amp.

    ``values`` may be continuous: they are rounded and clipped to the grid, and devices the predicted
    type lacks are zeroed (reference §6.12).
    """
    g = value_grid(grid)
    nodes = []
    for i in range(n_nodes):
        t = int(types[i])
        devices = subgraph_type(t).devices if 0 <= t < N_TYPES else ()
        snapped = [
            min(max(round(float(values[i][k])), g.k_min), g.k_max) if name in devices else 0
            for k, name in enumerate(DEVICES)
        ]
        nodes.append(Node(t, int(pos[i]), *snapped))
    edges = [(u, v) for u in range(n_nodes) for v in range(n_nodes) if adj[u][v]]
    return Circuit(tuple(nodes), tuple(edges), grid=grid)

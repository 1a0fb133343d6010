"""Decoding CktGen latents into circuits, greedily or by drawing (``Draw``).

By default constrained by the op-amp grammar (``generator/grammar.py``): the best-scoring (or a drawn)
(type, position) pair that can still complete a valid circuit, each side node's source by its edge
logits, the other edges fixed by the grammar. ``grammar: false`` decodes as the paper does (argmax type
and position, edge if p > 0.5, Out forced at the 8th node, loose ends wired to Out), which the
evaluation reports as the unconstrained validity. Values are snapped to the grid and masked by type by
``circuits.encoding.decode``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from circuits.circuit import MAX_NODES, N_POSITIONS, POS_IN, POS_OUT, SIDE_POSITIONS, Circuit
from circuits.encoding import PAD_POS, PAD_TYPE, decode
from circuits.errors import CircuitError, CktLoopError
from circuits.grid import value_grid
from circuits.subgraphs import IN, OUT
from generator.data import denormalise_values
from generator.grammar import GrammarState

if TYPE_CHECKING:
    from generator.model import CktGen


@dataclass(frozen=True)
class Draw:
    """How decoding chooses: greedily at ``temperature`` 0, else by drawing from the decoder's
    distributions sharpened (< 1) or flattened (> 1) by the temperature, with ``generator``'s numbers."""

    temperature: float = 0.0
    generator: torch.Generator | None = None

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise CktLoopError(f"temperature must be >= 0, got {self.temperature}")

    def _uniform(self, like: torch.Tensor) -> torch.Tensor:
        device = None if self.generator is None else self.generator.device
        return torch.rand(like.shape, generator=self.generator, device=device).to(like.device)

    def pick(self, scores: torch.Tensor) -> torch.Tensor:
        """An index over the last axis: the argmax, or a draw from softmax(scores / temperature)
        (Gumbel-max, so masked ``-inf`` scores are never drawn)."""
        if self.temperature <= 0:
            return scores.argmax(-1)
        gumbel = -torch.log(-torch.log(self._uniform(scores).clamp_min(1e-20)))
        return (scores / self.temperature + gumbel).argmax(-1)

    def edges(self, logits: torch.Tensor, threshold: float) -> torch.Tensor:
        """0/1 edges: probability above ``threshold``, or a coin with probability sigmoid(logits / temperature)."""
        if self.temperature <= 0:
            return (torch.sigmoid(logits) > threshold).float()
        return (self._uniform(logits) < torch.sigmoid(logits / self.temperature)).float()


GREEDY = Draw()


def decode_graphs(
    model: CktGen, z: torch.Tensor, cond: torch.Tensor | None, value_z: torch.Tensor, draw: Draw
) -> dict[str, torch.Tensor]:
    """Padded graph arrays decoded from ``z`` (on the model's device), one node per step through the
    decoder's key/value cache (``CktGen.decode_step``); device values read ``value_z``."""
    b, dev = z.shape[0], z.device
    types = torch.full((b, MAX_NODES), PAD_TYPE, dtype=torch.long, device=dev)
    pos = torch.full((b, MAX_NODES), PAD_POS, dtype=torch.long, device=dev)
    topo = torch.zeros(b, MAX_NODES, MAX_NODES, device=dev)
    adj = torch.zeros(b, MAX_NODES, MAX_NODES, device=dev)
    values = torch.zeros(b, MAX_NODES, 3, device=dev)
    n_nodes = torch.full((b,), MAX_NODES, dtype=torch.long, device=dev)
    done = torch.zeros(b, dtype=torch.bool, device=dev)
    types[:, 0], pos[:, 0], topo[:, 0, 0] = IN, POS_IN, 1.0
    grammar = GrammarState(b, dev) if model.config.grammar else None
    graph = {"types": types, "pos": pos, "topo": topo, "adj": adj}  # filled in place, step by step
    state: dict[str, Any] = {}
    for i in range(1, MAX_NODES):
        out = model.decode_step(z, graph, i, state, cond)
        active = ~done
        node = model.node_values(out["h_last"][:, None], value_z, i - 1)[:, 0]
        values[:, i - 1] = torch.where(active[:, None], node, 0.0)
        edge_logits = model.edge_logits(out["topo"])[:, :i, i]  # u < i → i
        type_logits, pos_logits = out["type_logits"], out["pos_logits"]
        if grammar is None:
            t, p, edges = choose_free(i, type_logits, pos_logits, edge_logits, draw, model.config.edge_threshold)
        else:
            t, p, edges = choose_constrained(i, grammar, type_logits, pos_logits, edge_logits, draw)
            grammar.advance(i, t, p, active)
        types[:, i] = torch.where(active, t, types[:, i])
        pos[:, i] = torch.where(active, p, pos[:, i])
        topo[:, i, i] = active.float()
        adj[:, :i, i] = edges * active[:, None]
        is_out = active & (t == OUT)
        if grammar is None:
            loose = (adj[:, :i, :].sum(-1) == 0).float()  # earlier nodes with no outgoing edge
            adj[:, :i, i] = torch.maximum(adj[:, :i, i], loose * is_out[:, None])
        n_nodes = torch.where(is_out, torch.full_like(n_nodes, i + 1), n_nodes)
        done = done | is_out
        if bool(done.all()):
            break
    values = model.from_value_space(values) * model.device_mask[types]
    return {"types": types, "pos": pos, "adj": adj, "values": values, "n_nodes": n_nodes}


def choose_free(
    i: int,
    type_logits: torch.Tensor,
    pos_logits: torch.Tensor,
    edge_logits: torch.Tensor,
    draw: Draw,
    threshold: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The paper's decoding: argmax type and position, every edge with p > threshold, Out forced at the
    8th node; when drawing, type and position are drawn and each edge is a coin with its probability."""
    t, p = draw.pick(type_logits), draw.pick(pos_logits)
    if i == MAX_NODES - 1:
        forced = t != OUT
        t = torch.full_like(t, OUT)
        p = torch.where(forced, torch.full_like(p, POS_OUT), p)
    return t, p, draw.edges(edge_logits, threshold)


def choose_constrained(
    i: int,
    grammar: GrammarState,
    type_logits: torch.Tensor,
    pos_logits: torch.Tensor,
    edge_logits: torch.Tensor,
    draw: Draw,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The most likely (or a drawn) (type, position) pair the grammar allows; a side node's one source
    by its edge logits."""
    score = F.log_softmax(type_logits, -1)[:, :, None] + F.log_softmax(pos_logits, -1)[:, None, :]
    score = score.masked_fill(~grammar.allowed_pairs(i), -math.inf)
    choice = draw.pick(score.flatten(1))
    t, p = choice // N_POSITIONS, choice % N_POSITIONS
    source = draw.pick(edge_logits.masked_fill(~grammar.allowed_sources(i), -math.inf))
    side_edges = F.one_hot(source, i).float()
    is_side = (p >= SIDE_POSITIONS[0])[:, None]
    return t, p, torch.where(is_side, side_edges, grammar.spine_edges(i))


def to_circuits(graphs: dict[str, torch.Tensor], grid: str) -> list[Circuit | CircuitError]:
    """Decoded arrays → Circuits (or the CircuitError naming why one is invalid)."""
    # Plain lists: ``decode`` indexes element by element, which is slow on numpy scalars.
    g = value_grid(grid)
    values = denormalise_values(graphs["values"].detach().cpu().double(), grid)
    values = values.round().clamp(g.k_min, g.k_max).tolist()
    types, pos = graphs["types"].tolist(), graphs["pos"].tolist()
    adj, counts = graphs["adj"].int().tolist(), graphs["n_nodes"].tolist()
    results: list[Circuit | CircuitError] = []
    for j in range(len(counts)):
        try:
            results.append(decode(types[j], pos[j], adj[j], values[j], counts[j], grid=grid))
        except CircuitError as exc:
            results.append(exc)
    return results

"""Grammar-constrained decoding: at every step, only the node types, positions and edges that can still
end in a valid op-amp (``circuits.circuit.structure_problems``) are allowed.

In topological order (``Circuit.topological_order``) every valid circuit reads

    In, A*, s1, B*, s2, ( C*, Out  |  s3, D*, Out )

where s1..s3 are main-path stages at positions 2, 3, 4 (feed-forward gm types), and a side node
(position 5-7, any non-terminal type) sits right before the spine node it ends at. So:

* A sides end at s1 and start at In;
* B sides end at s2 and start at In or s1; s2 must not be the last stage, so they force s3;
* C sides end at Out with no s3 (so no s3 may follow them, and none may follow B sides); they must
  not start at s2, whose net is Out's;
* D sides end at Out and must not start at s3, for the same reason;
* at most ``MAX_NODES`` nodes, so a step may only open what the remaining slots can close.

The edges are then fixed by the grammar except for each side node's source: a spine node receives
an edge from the previous spine node and from every side placed since it. The decoder's edge
logits still choose each side's source among the allowed ones. All of it is vectorised over the
batch, so constrained decoding costs about what free decoding does.
"""

from __future__ import annotations

import torch

from circuits.circuit import MAIN_POSITIONS, MAX_NODES, N_POSITIONS, POS_OUT, SIDE_POSITIONS
from circuits.subgraphs import N_TYPES, OUT, SUBGRAPH_TYPES

STAGE_TYPES = tuple(t.index for t in SUBGRAPH_TYPES if t.has_gm and not t.feedback)
SIDE_TYPES = tuple(t.index for t in SUBGRAPH_TYPES if not t.is_terminal)


def pair_tables() -> dict[str, torch.Tensor]:
    """Boolean (type, position) tables: ``stage`` (3, N_TYPES, N_POSITIONS), one per stage number,
    ``side`` and ``out`` (N_TYPES, N_POSITIONS)."""
    stage = torch.zeros(len(MAIN_POSITIONS), N_TYPES, N_POSITIONS, dtype=torch.bool)
    for k, p in enumerate(MAIN_POSITIONS):
        stage[k, list(STAGE_TYPES), p] = True
    side = torch.zeros(N_TYPES, N_POSITIONS, dtype=torch.bool)
    for p in SIDE_POSITIONS:
        side[list(SIDE_TYPES), p] = True
    out = torch.zeros(N_TYPES, N_POSITIONS, dtype=torch.bool)
    out[OUT, POS_OUT] = True
    return {"stage": stage, "side": side, "out": out}


class GrammarState:
    """Where each circuit of a batch stands in the grammar after its first ``step`` nodes (In is node 0)."""

    def __init__(self, batch: int, device: torch.device) -> None:
        self.tables = {k: v.to(device) for k, v in pair_tables().items()}
        self.stages = torch.zeros(batch, dtype=torch.long, device=device)  # s: stages placed so far
        self.pending = torch.zeros(batch, dtype=torch.long, device=device)  # sides since the last spine node
        self.force3 = torch.zeros(batch, dtype=torch.bool, device=device)  # a B side was placed
        self.spine = torch.full((batch, 4), -1, dtype=torch.long, device=device)  # node index of In, s1, s2, s3
        self.spine[:, 0] = 0
        self.last_spine = torch.zeros(batch, dtype=torch.long, device=device)

    def allowed_pairs(self, step: int) -> torch.Tensor:
        """(B, N_TYPES, N_POSITIONS): the (type, position) choices for node ``step`` that can still complete."""
        room = MAX_NODES - 1 - step  # slots left after this node
        s, t = self.stages, self.tables
        # Nodes still needed after placing a stage (becoming stage s + 1), a side, or Out.
        need_stage = torch.where(s == 0, 2, torch.where(s == 1, 1 + self.force3.long(), 1))
        need_side = torch.where(s <= 1, 3, 1)
        stage_ok = (s < 3) & ~((s == 2) & (self.pending > 0)) & (need_stage <= room)
        # A B side forces s3, and a side after s2 rules s3 out: after B sides, s2 is followed by s3 directly.
        side_ok = (need_side <= room) & ~((s == 2) & self.force3)
        out_ok = (s >= 2) & ~((s == 2) & self.force3)
        stage_table = t["stage"][s.clamp(max=2)]  # (B, T, P) for the stage that would be placed
        return (
            (stage_ok[:, None, None] & stage_table)
            | (side_ok[:, None, None] & t["side"][None])
            | (out_ok[:, None, None] & t["out"][None])
        )

    def allowed_sources(self, step: int) -> torch.Tensor:
        """(B, step) bool: the spine nodes a side node placed at ``step`` may start at."""
        b = self.stages.shape[0]
        rank = torch.arange(4, device=self.stages.device)
        s = self.stages[:, None]
        # Ranks 0..s are placed; after s2 or s3 the side ends at Out, so the last stage is excluded.
        ok_rank = (rank[None] <= s) & ~((rank[None] == s) & (s >= 2))
        sources = torch.zeros(b, step, dtype=torch.bool, device=s.device)
        placed = ok_rank & (self.spine >= 0) & (self.spine < step)
        for r in range(4):
            rows = placed[:, r].nonzero(as_tuple=True)[0]
            sources[rows, self.spine[rows, r]] = True
        return sources

    def spine_edges(self, step: int) -> torch.Tensor:
        """(B, step) float: edges into a spine node at ``step``, from the last spine node and every side since."""
        u = torch.arange(step, device=self.stages.device)
        return (u[None] >= self.last_spine[:, None]).float()

    def advance(self, step: int, types: torch.Tensor, pos: torch.Tensor, active: torch.Tensor) -> None:
        """Record node ``step`` of each active circuit (type and position already chosen from ``allowed_pairs``)."""
        is_stage = active & (pos >= MAIN_POSITIONS[0]) & (pos <= MAIN_POSITIONS[-1])
        is_side = active & (pos >= SIDE_POSITIONS[0])
        is_spine = is_stage | (active & (types == OUT))
        self.force3 |= is_side & (self.stages == 1)
        self.pending = torch.where(is_spine, 0, self.pending + is_side.long())
        self.stages = self.stages + is_stage.long()
        rows = is_stage.nonzero(as_tuple=True)[0]
        self.spine[rows, self.stages[rows]] = step
        self.last_spine = torch.where(is_spine, step, self.last_spine)

"""Padded per-circuit arrays → a PyTorch Geometric ``Batch``, and node states back into their slots.

Splits keep circuits as fixed-size padded tensors (``surrogate.data.encode_batch``): they index by row
and move to a device as one block. The encoders run PyG layers on the real nodes only, so padding rows
take no part in message passing whatever they hold: ``to_batch`` keeps the nodes ``mask`` marks and
the edges between them, and remembers each node's slot (its row in the padded layout) so ``to_slots``
can put node states back where a readout expects them.
"""

from __future__ import annotations

import torch
from torch_geometric.data import Batch


def to_batch(
    mask: torch.Tensor, adj: torch.Tensor, nodes: dict[str, torch.Tensor], edges: dict[str, torch.Tensor] | None = None
) -> Batch:
    """A ``Batch`` of the nodes where ``mask`` (B, N) is true and the edges u→v where ``adj`` (B, N, N) is
    nonzero between two of them. ``nodes`` values (B, N, …) become node attributes, ``edges`` values
    (B, N, N, …) edge attributes; ``slot`` holds each node's row, ``batch`` its circuit, and ``ptr`` counts
    all B circuits, those without a real node too."""
    mask = mask.bool()
    graph, slot = mask.nonzero(as_tuple=True)  # row-major: nodes of circuit 0 first, each in slot order
    node_id = torch.cumsum(mask.reshape(-1).long(), 0).reshape(mask.shape) - 1
    linked = (adj != 0) & mask.unsqueeze(2) & mask.unsqueeze(1)
    eg, src, dst = linked.nonzero(as_tuple=True)
    counts = mask.sum(dim=1)
    ptr = torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)])
    return Batch(
        edge_index=torch.stack([node_id[eg, src], node_id[eg, dst]]),
        batch=graph,
        ptr=ptr,
        slot=slot,
        **{k: v[graph, slot] for k, v in nodes.items()},
        **{k: v[eg, src, dst] for k, v in (edges or {}).items()},
    )


def to_slots(h: torch.Tensor, batch: Batch, n_slots: int) -> torch.Tensor:
    """(B, n_slots, H) node states at their slots, zeros where a circuit has no node."""
    flat = h.new_zeros(batch.num_graphs * n_slots, h.shape[-1])
    return flat.index_copy(0, batch.batch * n_slots + batch.slot, h).reshape(batch.num_graphs, n_slots, -1)

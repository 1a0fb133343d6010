"""CktGen's GIN connectivity embedding on PyG's GraphConv, against its formula written out by hand, and the
loading of checkpoints written before the port (one linear layer on x_v ⊕ Σ_{u→v} x_u)."""

from __future__ import annotations

import torch
from torch import nn

from circuits.circuit import MAX_NODES
from generator.layers import Gin


def _graph() -> tuple[torch.Tensor, torch.Tensor]:
    """Two padded circuits: 0→1, 0→2, 1→2 (3 nodes) and 0→1 (2 nodes); rank one-hots, zero on padding."""
    topo = torch.zeros(2, MAX_NODES, MAX_NODES)
    topo[0, :3, :3] = torch.eye(3)
    topo[1, :2, :2] = torch.eye(2)
    adj = torch.zeros(2, MAX_NODES, MAX_NODES)
    adj[0, 0, 1] = adj[0, 0, 2] = adj[0, 1, 2] = 1.0
    adj[1, 0, 1] = 1.0
    return topo, adj


def _old_weights(hidden: int, out: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    return {
        "net.0.weight": torch.randn(hidden, 2 * MAX_NODES),
        "net.0.bias": torch.randn(hidden),
        "net.3.weight": torch.randn(out, hidden),
        "net.3.bias": torch.randn(out),
    }


def test_gin_is_one_linear_layer_on_a_node_and_its_predecessors_then_an_mlp() -> None:
    old = _old_weights(hidden=6, out=5)
    gin = Gin(hidden=6, out=5, dropout=0.5).eval()
    gin.load_state_dict(old)  # strict: the old layout's four tensors fill the GraphConv and the output layer
    topo, adj = _graph()
    with torch.no_grad():
        got = gin(topo, adj)
    for b in range(2):
        for v in range(MAX_NODES):
            preds = [u for u in range(MAX_NODES) if adj[b, u, v]]
            pooled = sum((topo[b, u] for u in preds), torch.zeros(MAX_NODES))
            hidden = torch.relu(old["net.0.weight"] @ torch.cat([topo[b, v], pooled]) + old["net.0.bias"])
            torch.testing.assert_close(got[b, v], old["net.3.weight"] @ hidden + old["net.3.bias"])


def test_gin_reads_the_decoders_prefix_slices() -> None:
    torch.manual_seed(0)
    gin = Gin(hidden=6, out=5, dropout=0.0)
    topo, adj = _graph()
    with torch.no_grad():
        whole = gin(topo, adj)
        prefix = gin(topo[:, :3, :], adj[:, :3, :3])  # strided views, as CktGen's step-wise decoding passes
    torch.testing.assert_close(prefix, whole[:, :3])


def test_new_checkpoints_round_trip() -> None:
    torch.manual_seed(0)
    gin = Gin(hidden=6, out=5, dropout=0.0)
    state = gin.state_dict()
    assert set(state) == {"conv.lin_rel.weight", "conv.lin_rel.bias", "conv.lin_root.weight", "net.2.weight",
                          "net.2.bias"}
    again = Gin(hidden=6, out=5, dropout=0.0)
    again.load_state_dict(state)
    topo, adj = _graph()
    with torch.no_grad():
        torch.testing.assert_close(again(topo, adj), gin(topo, adj))


def test_gin_draws_its_weights_as_the_layer_it_replaced() -> None:
    torch.manual_seed(3)
    gin = Gin(hidden=6, out=5, dropout=0.0)
    next_draw = torch.rand(1)
    torch.manual_seed(3)
    joint, last = nn.Linear(2 * MAX_NODES, 6), nn.Linear(6, 5)  # the hand-written layer's modules, in order
    torch.testing.assert_close(torch.cat([gin.conv.lin_root.weight, gin.conv.lin_rel.weight], 1), joint.weight)
    torch.testing.assert_close(gin.conv.lin_rel.bias, joint.bias)
    torch.testing.assert_close(gin.net[2].weight, last.weight)
    torch.testing.assert_close(next_draw, torch.rand(1))  # the modules built after it draw as before

"""The surrogate's PyG layers against the formulas they implement, computed by hand on small graphs, and the
loading of checkpoints written before the port (hand-written layers, other parameter names)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from circuits.circuit import MAX_NODES, N_POSITIONS
from circuits.encoding import PAD_TYPE
from circuits.grid import GRIDS, ValueGrid
from surrogate.config import SurrogateConfig
from surrogate.data import value_scales
from surrogate.graphs import to_batch, to_slots
from surrogate.model import DIGIN
from surrogate.nets import MAX_NETS, N_ROLES, PAIR_FEATURES, NetEncoder

SIZES = (4, 33, 5)
DAG = SurrogateConfig(type_dim=8, pos_dim=8, hidden=16, readout_hidden=32, graph_dim=16, size_hidden=16, size_dim=4,
                      node_values=True, value_features="both", embed_dim=16, spec_emb_dim=8, head_hidden=16,
                      dropout=0.0, gin_eps=0.25, train_eps=True)


def _dag_inputs() -> dict[str, torch.Tensor]:
    """One circuit: nodes 0, 1, 2 with edges 0→1, 0→2, 1→2, then padding; a second, all padding."""
    types = torch.full((2, MAX_NODES), PAD_TYPE)
    types[0, :3] = torch.tensor([0, 5, 1])
    pos = torch.full((2, MAX_NODES), N_POSITIONS)
    pos[0, :3] = torch.tensor([0, 2, 1])
    adj = torch.zeros(2, MAX_NODES, MAX_NODES)
    adj[0, 0, 1] = adj[0, 0, 2] = adj[0, 1, 2] = 1.0
    values = torch.zeros(2, MAX_NODES, 3)
    values[0, 1] = torch.tensor([0.0, 0.5, 0.25])
    return {"types": types, "pos": pos, "adj": adj, "values": values, "log_values": values.sqrt()}


def test_dag_gin_is_the_papers_update_in_topological_order() -> None:
    torch.manual_seed(0)
    model = DIGIN(DAG, SIZES).eval()
    inputs = _dag_inputs()
    with torch.no_grad():
        got = model.encode_circuits(**inputs)
        feats = torch.cat([inputs["values"][0, :3], inputs["log_values"][0, :3]], dim=-1)
        x = model.node_in(torch.cat([model.type_emb(inputs["types"][0, :3]), model.pos_emb(inputs["pos"][0, :3])], -1))
        x = x + model.value_in(feats)
        mlp, k = model.gin.nn, 1.25  # (1 + ε)
        h0 = mlp(k * x[0])
        h1 = mlp(k * x[1] + h0)
        h2 = mlp(k * x[2] + h0 + h1)
        states = torch.cat([h0, h1, h2, torch.zeros(5 * DAG.hidden)])
        sizes = torch.zeros(N_POSITIONS, 6)
        sizes[[0, 2, 1]] = feats  # position p holds that node's values
        code = model.size_code(sizes.reshape(-1))
        expected = model.embed(torch.cat([model.readout(states), code]))
        nothing = [model.readout(torch.zeros(MAX_NODES * DAG.hidden)), model.size_code(torch.zeros(N_POSITIONS * 6))]
        empty = model.embed(torch.cat(nothing))
    torch.testing.assert_close(got[0], expected, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(got[1], empty)


def test_dag_gin_ignores_edges_against_the_node_order() -> None:
    torch.manual_seed(0)
    model = DIGIN(DAG, SIZES).eval()
    inputs = _dag_inputs()
    backwards = {k: v.clone() for k, v in inputs.items()}
    backwards["adj"][0, 2, 0] = backwards["adj"][0, 1, 1] = 1.0  # a later node and a self loop: no state yet
    with torch.no_grad():
        torch.testing.assert_close(model.encode_circuits(**backwards), model.encode_circuits(**inputs))


def _old_layout(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The state dict as the hand-written layers named it before the port."""
    old = {}
    for key, value in state.items():
        if key.startswith("gin.nn."):
            key = "gin." + key.removeprefix("gin.nn.")
        elif key == "gin.eps":
            key, value = "eps", value.reshape(())
        elif key.startswith("net_encoder.convs."):
            r, name, tail = key.removeprefix("net_encoder.convs.").split(".", 2)
            kind = {"src": "msg_src", "dst": "msg_dst", "edge": "msg_edge", "update_mlp": "update"}.get(name, name)
            key = f"net_encoder.{kind}.{r}.{tail}"
        old[key] = value.clone()
    return old


@pytest.mark.parametrize("config", [DAG, SurrogateConfig(encoder="nets", hidden=16, rounds=2, graph_dim=16,
                                                         embed_dim=16, spec_emb_dim=8, head_hidden=16)])
def test_checkpoints_of_the_hand_written_layers_load_onto_the_pyg_layers(config: SurrogateConfig) -> None:
    torch.manual_seed(0)
    trained = DIGIN(config, SIZES)
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(torch.randn_like(p))
    old = _old_layout(trained.state_dict())
    assert "eps" in old or "net_encoder.msg_src.1.weight" in old
    fresh = DIGIN(config, SIZES)
    fresh.load_state_dict(old)  # strict: every old key lands on a new parameter
    for name, value in trained.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[name], value, msg=name)


def test_net_conv_is_the_edge_featured_gin_written_out() -> None:
    torch.manual_seed(0)
    enc = NetEncoder(hidden=8, rounds=1, out_dim=4, dropout=0.0).eval()
    n_pair = len(PAIR_FEATURES)
    role = torch.zeros(1, MAX_NETS, N_ROLES)
    mask = torch.zeros(1, MAX_NETS)
    mask[0, [0, 1, 3]] = 1.0  # inp, n1, out; n2 absent
    role[0, [0, 1, 3], [0, 1, 3]] = 1.0
    pair = torch.zeros(1, MAX_NETS, MAX_NETS, n_pair)
    pair[0, 0, 1, 4:] = torch.tensor([1.0, 1.0, 0.5])  # gm sensing inp, driving n1
    pair[0, 1, 3, :2] = torch.tensor([1.0, 0.3])  # R between n1 and out (one direction stored)
    pair[0, 3, 3, 2:4] = torch.tensor([1.0, 0.7])  # C from out to ground
    pair[0, 2, 0, :2] = 9.0  # junk on the absent net n2
    with torch.no_grad():
        got = enc(role, mask, pair)
        real = [0, 1, 3]
        p = pair[0][real][:, real]
        x = torch.cat([role[0, real], torch.diagonal(p).T, p.sum(0), p.sum(1)], dim=-1)
        h = enc.node_in(x)
        conv = enc.convs[0]
        edges = [(0, 1), (1, 0), (1, 2), (2, 1)]  # linked either way; out's ground C is no edge
        agg = torch.zeros_like(h)
        for u, v in edges:
            e = torch.cat([p[u, v], p[v, u]])
            agg[v] += F.silu(conv.src(h[u]) + conv.dst(h[v]) + conv.edge(e))
        h = conv.norm(h + conv.update_mlp(torch.cat([h, agg], dim=-1)))
        expected = enc.readout(torch.cat([h[2], h[0], h.sum(0)]))
    torch.testing.assert_close(got[0], expected, atol=1e-6, rtol=1e-5)


def test_to_batch_keeps_real_nodes_and_their_slots() -> None:
    mask = torch.tensor([[1, 0, 1, 1], [0, 0, 0, 0], [0, 1, 0, 0]], dtype=torch.bool)
    adj = torch.zeros(3, 4, 4)
    adj[0, 0, 2] = adj[0, 2, 3] = 1.0
    adj[0, 0, 1] = adj[0, 1, 3] = 1.0  # into and out of the padding slot 1: dropped
    feat = torch.arange(12.0).reshape(3, 4, 1)
    graphs = to_batch(mask, adj, {"f": feat}, {"w": adj.unsqueeze(-1) * 2})
    assert graphs.num_graphs == 3
    assert graphs.batch.tolist() == [0, 0, 0, 2] and graphs.slot.tolist() == [0, 2, 3, 1]
    assert graphs.f.squeeze(-1).tolist() == [0.0, 2.0, 3.0, 9.0]
    assert graphs.edge_index.tolist() == [[0, 1], [1, 2]] and graphs.w.squeeze(-1).tolist() == [2.0, 2.0]
    back = to_slots(graphs.f, graphs, 4)
    torch.testing.assert_close(back, feat * mask.unsqueeze(-1))


def test_value_scales_follow_the_circuits_grid(monkeypatch: pytest.MonkeyPatch) -> None:
    k = np.array([0, 1, 10, 101])
    linear, log = value_scales(k, "ocb")
    np.testing.assert_allclose(linear, k / 101)
    np.testing.assert_allclose(log, [0.0, 0.0, math.log(10) / math.log(101), 1.0])
    monkeypatch.setitem(GRIDS, "fine", ValueGrid("fine", 1, 1001, 0.1, "ten times finer"))
    linear, log = value_scales(np.array([0, 10, 1001]), "fine")
    np.testing.assert_allclose(linear, [0.0, 10 / 1001, 1.0])
    np.testing.assert_allclose(log, [0.0, math.log(10) / math.log(1001), 1.0])

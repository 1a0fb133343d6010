"""The electrical view of a circuit for the surrogate: nets as graph nodes, R, C and gm elements between them.

The paper's DIGIN reads the subgraph DAG, where a device value sits on the subgraph that holds it and
the network has to learn which nets each subgraph joins. Gain, bandwidth and phase margin are set by
the admittances between nets, so ``encoder: nets`` reads the circuit the way the simulator does: the
element list of ``simulator.netlist.elements`` (the fixed stage loads included), folded per ordered
pair of nets into

* R: present, log10 of the summed conductance (parallel resistors add) + 6 (1 MΩ reads 0);
* C: present, log10 of the summed capacitance + 13 (100 fF reads 0);
* gm sensing net u and driving net v: present, the sign of the summed transconductance, log10 of
  its magnitude + 3 (1 mS reads 0).

Elements to ground sit on the diagonal. Nets have fixed slots (``inp``, ``n1``, ``n2``, ``out``, then
the internal nets of series R–C branches), so the readout finds the input and the output, and a
circuit's features do not depend on the order its nodes are listed in (internal nets are named after
the canonical node order).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.data import Batch
from torch_geometric.nn import MessagePassing, global_add_pool

from circuits import Circuit
from simulator.netlist import GROUND, INPUT_NET, OUTPUT_NET, elements
from surrogate.graphs import to_batch, to_slots

SPINE_NETS = (INPUT_NET, "n1", "n2", OUTPUT_NET)  # fixed slots 0..3; internal nets follow
MAX_NETS = 8  # 4 spine nets + at most 3 series R–C branches (side slots), with room to spare
N_ROLES = len(SPINE_NETS) + 1  # the spine nets, then "internal"
PAIR_FEATURES = ("r", "log_g", "c", "log_c", "gm", "gm_sign", "log_gm")
INPUT_SLOT, OUTPUT_SLOT = SPINE_NETS.index(INPUT_NET), SPINE_NETS.index(OUTPUT_NET)
_OFFSET = {"R": 6.0, "C": 13.0, "G": 3.0}  # log10 offsets: 1 µS, 100 fF and 1 mS read 0


def net_features(circuit: Circuit) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(role (MAX_NETS, N_ROLES) one-hot, mask (MAX_NETS,), pair (MAX_NETS, MAX_NETS, 7)) of one circuit."""
    parts = elements(circuit.canonical())  # canonical node order names the internal nets alike
    nets = {n for e in parts for n in (e.pos, e.neg, e.ctrl_p, e.ctrl_n)} - {"", GROUND}
    internal = sorted(nets - set(SPINE_NETS))
    if len(SPINE_NETS) + len(internal) > MAX_NETS:
        raise ValueError(f"circuit {circuit.key} has {len(internal)} internal nets; at most {MAX_NETS - 4} fit")
    slot = {n: i for i, n in enumerate(SPINE_NETS)} | {n: len(SPINE_NETS) + i for i, n in enumerate(internal)}
    sums = {kind: np.zeros((MAX_NETS, MAX_NETS)) for kind in _OFFSET}
    for e in parts:
        if e.kind == "G":
            sums["G"][slot[e.ctrl_p], slot[e.pos]] += e.value  # senses ctrl_p, drives pos (ctrl_n, neg: ground)
            continue
        y = 1.0 / e.value if e.kind == "R" else e.value
        a, b = slot.get(e.pos), slot.get(e.neg)
        if a is None or b is None:  # to ground: on the diagonal
            (k,) = [s for s in (a, b) if s is not None]
            sums[e.kind][k, k] += y
        else:
            sums[e.kind][a, b] += y
            sums[e.kind][b, a] += y
    pair = np.zeros((MAX_NETS, MAX_NETS, len(PAIR_FEATURES)), dtype=np.float32)
    for kind, (flag, log) in (("R", (0, 1)), ("C", (2, 3)), ("G", (4, 6))):
        total = sums[kind]
        present = total != 0
        pair[..., flag] = present
        pair[..., log][present] = np.log10(np.abs(total[present])) + _OFFSET[kind]
    pair[..., 5] = np.sign(sums["G"])
    role = np.zeros((MAX_NETS, N_ROLES), dtype=np.float32)
    mask = np.zeros(MAX_NETS, dtype=np.float32)
    for net in nets:  # a 2-stage amplifier has no n2: its slot stays masked
        k = slot[net]
        role[k, min(k, N_ROLES - 1)] = 1.0  # spine nets by name, every internal net alike
        mask[k] = 1.0
    return role, mask, pair


def encode_nets(circuits: Sequence[Circuit]) -> dict[str, torch.Tensor]:
    """Model inputs for ``encoder: nets``: ``net_role`` (B, 8, 5), ``net_mask`` (B, 8), ``net_pair`` (B, 8, 8, 7)."""
    role, mask, pair = zip(*(net_features(c) for c in circuits)) if circuits else ((), (), ())
    shape = (len(circuits), MAX_NETS)
    return {
        "net_role": torch.from_numpy(np.array(role, dtype=np.float32).reshape(*shape, N_ROLES)),
        "net_mask": torch.from_numpy(np.array(mask, dtype=np.float32).reshape(shape)),
        "net_pair": torch.from_numpy(np.array(pair, dtype=np.float32).reshape(*shape, MAX_NETS, len(PAIR_FEATURES))),
    }


class NetConv(MessagePassing):
    """One round of the nets GIN: h_v ← LN(h_v + MLP(h_v ⊕ Σ_u m_uv)), m_uv = SiLU(A·h_u + B·h_v + E·e_uv)
    summed over the edges u→v; ``edge_attr`` carries e_uv (the pair's features both ways round)."""

    def __init__(self, hidden: int, n_edge: int, dropout: float) -> None:
        super().__init__(aggr="add")
        self.src = nn.Linear(hidden, hidden)
        self.dst = nn.Linear(hidden, hidden, bias=False)
        self.edge = nn.Linear(n_edge, hidden, bias=False)
        self.update_mlp = nn.Sequential(
            nn.Linear(2 * hidden, hidden), nn.SiLU(), nn.Dropout(dropout), nn.Linear(hidden, hidden)
        )
        self.norm = nn.LayerNorm(hidden)

    def forward(self, h: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor) -> torch.Tensor:
        msg = self.propagate(edge_index, a=self.src(h), b=self.dst(h), edge_attr=edge_attr, size=(len(h), len(h)))
        return self.norm(h + self.update_mlp(torch.cat([h, msg], dim=-1)))

    def message(self, a_j: torch.Tensor, b_i: torch.Tensor, edge_attr: torch.Tensor) -> torch.Tensor:
        return F.silu(a_j + b_i + self.edge(edge_attr))


# Checkpoints written before the port kept one list per weight kind: msg_src.{r}, …, norm.{r}.
_OLD_NAMES = {"msg_src": "src", "msg_dst": "dst", "msg_edge": "edge", "update": "update_mlp", "norm": "norm"}


class NetEncoder(nn.Module):
    """``rounds`` of ``NetConv`` over the pairs of nets that share an element (either direction, so a
    stage's load is felt upstream too), on PyG's ``Batch`` of the real nets. Node input: role ⊕ elements
    to ground ⊕ the summed pair features both ways. Readout: MLP of (h_out ⊕ h_inp ⊕ Σ_v h_v) → ``out_dim``."""

    def __init__(self, hidden: int, rounds: int, out_dim: int, dropout: float) -> None:
        super().__init__()
        n_pair = len(PAIR_FEATURES)
        self.node_in = nn.Sequential(nn.Linear(N_ROLES + 3 * n_pair, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.convs = nn.ModuleList([NetConv(hidden, 2 * n_pair, dropout) for _ in range(rounds)])
        self.readout = nn.Sequential(nn.Linear(3 * hidden, hidden), nn.SiLU(), nn.Linear(hidden, out_dim))
        self.register_load_state_dict_pre_hook(_rename_old_keys)

    def forward(self, net_role: torch.Tensor, net_mask: torch.Tensor, net_pair: torch.Tensor) -> torch.Tensor:
        graphs = net_graphs(net_role, net_mask, net_pair)
        h = self.node_in(graphs.x)
        for conv in self.convs:
            h = conv(h, graphs.edge_index, graphs.edge_attr)
        slots = to_slots(h, graphs, MAX_NETS)
        pooled = global_add_pool(h, graphs.batch, size=graphs.num_graphs)
        return self.readout(torch.cat([slots[:, OUTPUT_SLOT], slots[:, INPUT_SLOT], pooled], dim=-1))


def net_graphs(net_role: torch.Tensor, net_mask: torch.Tensor, net_pair: torch.Tensor) -> Batch:
    """The padded ``encode_nets`` tensors as a ``Batch``: one node per real net (``x``: role ⊕ elements to
    ground ⊕ Σ_v e_uv ⊕ Σ_u e_uv), one edge u→v per linked pair (``edge_attr``: e_uv ⊕ e_vu)."""
    pair = net_pair * (net_mask.unsqueeze(1) * net_mask.unsqueeze(2)).unsqueeze(-1)
    ground = torch.diagonal(pair, dim1=1, dim2=2).transpose(1, 2)  # (B, N, F): elements to ground
    x = torch.cat([net_role, ground, pair.sum(1), pair.sum(2)], dim=-1)
    present = pair[..., 0] + pair[..., 2] + pair[..., 4]
    linked = (present + present.transpose(1, 2)) > 0
    linked &= ~torch.eye(pair.shape[1], dtype=torch.bool, device=pair.device)
    edge = torch.cat([pair, pair.transpose(1, 2)], dim=-1)
    return to_batch(net_mask, linked, {"x": x}, {"edge_attr": edge})


def _rename_old_keys(module: nn.Module, state: dict, prefix: str, *_: object) -> None:
    """Map a pre-port checkpoint's ``{kind}.{round}.…`` keys onto ``convs.{round}.{name}.…`` in place."""
    for key in [k for k in state if k.startswith(prefix)]:
        kind, _, rest = key[len(prefix) :].partition(".")
        if kind in _OLD_NAMES:
            round_, _, tail = rest.partition(".")
            state[f"{prefix}convs.{round_}.{_OLD_NAMES[kind]}.{tail}"] = state.pop(key)

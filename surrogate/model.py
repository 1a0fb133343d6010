"""The DIGIN surrogate: CktGen's GIN evaluator (reference §4.3) plus a spec regressor.

Circuit encoder: per node, type embedding ⊕ position embedding → linear = x_v; one shared GIN update
(PyG's ``GINConv``) applied in topological (node-index) order, h_v = MLP((1+ε)·x_v + Σ_{u→v} h_u), on a
PyG ``Batch`` of the real nodes: padding nodes (type ``PAD_TYPE``) are left out of the graph, so nothing
a padding row holds can change a prediction (§6.10). Readout: node states concatenated in index order
(8 nodes, zeros for padding) → MLP, ⊕ a size code from the device values slotted by position (k/k_max of
the circuit's value grid, 8 positions × (r, c, gm)) → linear = circuit
embedding. Heads: one classifier per spec axis (sizes from the class preset), a FoM regressor and a
3-output spec regressor (z-scored gain/100, log10 UGBW, PM/90). A spec embedder (one table per axis)
serves CktGen's contrastive loss and its retrieval metrics.

Beyond the paper (all off in ``configs/paper.yaml``):

* ``node_values`` adds each node's own (r, c, gm) to its token, so the GIN sees device values where
  they sit in the graph rather than only through the 8-wide size code;
* ``value_features`` feeds device values as log(k)/log(k_max) ("log") or both scales ("both"): gain,
  poles and UGBW are products and ratios of gm, R and C, so their logarithms add;
* ``pm_circular`` regresses the (wrapped) phase margin as (cos, sin), so ±180° are neighbours;
* ``class_source: regression`` reads the joint class off the regressed specs through the preset's
  bin edges instead of the class heads (the heads are still trained and give ``class_prob``);
* ``encoder: nets`` replaces the subgraph-DAG encoder (and its size code) by a GIN over the circuit's
  nets with its R, C and gm elements as edge features (``surrogate.nets``): the admittances between
  nets are what set gain, bandwidth and phase margin;
* ``reg_beta`` sets where the regression's Smooth-L1 turns from quadratic to linear (1, torch's
  default, in the paper's units of z-scores; small values keep pulling on small errors);
* ``align_detached`` keeps the contrastive, alignment and class terms from training the encoder: they
  train an MLP on the detached encoder output (the ``embedding`` that retrieval, MM-D and FID read),
  the class heads on it and the spec embedder, while the spec and FoM heads read the encoder output,
  which learns from them alone. Otherwise the alignment terms pull every circuit toward its class's
  cluster, and a new circuit close to training circuits of a class is read as that class whatever
  its own specs.
"""

from __future__ import annotations

from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.data import Batch
from torch_geometric.nn import GINConv

from circuits import CktLoopError
from circuits.circuit import MAX_NODES, N_POSITIONS
from circuits.encoding import PAD_TYPE
from circuits.subgraphs import N_TYPES
from surrogate.config import VALUE_FEATURES, SurrogateConfig
from surrogate.graphs import to_batch, to_slots
from surrogate.nets import NetEncoder

MODEL_NAME = "digin"


def _head(d_in: int, d_hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.ReLU(), nn.Linear(d_hidden, d_out))


class DIGIN(nn.Module):
    """Circuit encoder, heads and spec embedder. ``class_sizes`` comes from a ``SpecClasses`` preset."""

    def __init__(self, config: SurrogateConfig, class_sizes: tuple[int, ...]) -> None:
        super().__init__()
        if not class_sizes or any(k < 1 for k in class_sizes):
            raise CktLoopError(f"class sizes must be positive, got {class_sizes}")
        self.config = config
        self.class_sizes = tuple(int(k) for k in class_sizes)
        c = config
        if c.encoder == "nets":
            self.net_encoder = NetEncoder(c.hidden, c.rounds, c.graph_dim, c.dropout)
            self.embed = nn.Linear(c.graph_dim, c.embed_dim)
        else:
            self._subgraph_encoder(c)
        self.align_proj = _head(c.embed_dim, c.embed_dim, c.embed_dim) if c.align_detached else None
        self.class_heads = nn.ModuleList([_head(c.embed_dim, c.head_hidden, k) for k in self.class_sizes])
        self.fom_head = _head(c.embed_dim, c.head_hidden, 1)
        self.reg_head = _head(c.embed_dim, c.head_hidden, c.n_reg)
        self.spec_tables = nn.ModuleList([nn.Embedding(k, c.spec_emb_dim) for k in self.class_sizes])
        self.spec_mlp = nn.Sequential(
            nn.Linear(len(self.class_sizes) * c.spec_emb_dim, c.embed_dim), nn.Linear(c.embed_dim, c.embed_dim)
        )

    # --- encoders ------------------------------------------------------------------------------

    def _subgraph_encoder(self, c: SurrogateConfig) -> None:
        """The paper's DIGIN layers: embeddings, the GIN update, the concatenated readout and the size code."""
        self.type_emb = nn.Embedding(N_TYPES + 1, c.type_dim, padding_idx=PAD_TYPE)
        self.pos_emb = nn.Embedding(N_POSITIONS + 1, c.pos_dim, padding_idx=N_POSITIONS)
        n_values = VALUE_FEATURES[c.value_features]
        self.node_in = nn.Linear(c.type_dim + c.pos_dim, c.hidden)
        self.value_in = nn.Linear(n_values, c.hidden) if c.node_values else None
        mlp = nn.Sequential(
            nn.Linear(c.hidden, c.hidden), nn.ReLU(), nn.Dropout(c.dropout), nn.Linear(c.hidden, c.hidden)
        )
        self.gin = GINConv(mlp, eps=c.gin_eps, train_eps=c.train_eps)
        self.register_load_state_dict_pre_hook(_rename_old_gin_keys)
        self.readout = nn.Sequential(
            nn.Linear(MAX_NODES * c.hidden, c.readout_hidden), nn.ReLU(), nn.Linear(c.readout_hidden, c.graph_dim)
        )
        self.size_code = nn.Sequential(
            nn.Linear(N_POSITIONS * n_values, c.size_hidden), nn.ReLU(), nn.Linear(c.size_hidden, c.size_dim)
        )
        self.embed = nn.Linear(c.graph_dim + c.size_dim, c.embed_dim)

    def value_features(self, values: torch.Tensor, log_values: torch.Tensor) -> torch.Tensor:
        """The configured device-value features from ``encode_batch``'s two scales (absent devices: 0 on both)."""
        return {"linear": values, "log": log_values, "both": torch.cat([values, log_values], dim=-1)}[
            self.config.value_features
        ]

    def encode_circuits(
        self, types: torch.Tensor, pos: torch.Tensor, adj: torch.Tensor, values: torch.Tensor, log_values: torch.Tensor
    ) -> torch.Tensor:
        """(B, embed_dim) circuit embeddings from encoded circuits (see ``surrogate.data.encode_batch``)."""
        b, n = types.shape
        if n != MAX_NODES:
            raise CktLoopError(f"expected circuits padded to {MAX_NODES} nodes, got {n}")
        nodes = {"type": types, "position": pos.clamp(0, N_POSITIONS), "feats": self.value_features(values, log_values)}
        graphs = to_batch(types != PAD_TYPE, adj, nodes)
        x = self.node_in(torch.cat([self.type_emb(graphs.type.clamp(0, PAD_TYPE)), self.pos_emb(graphs.position)], -1))
        if self.value_in is not None:
            x = x + self.value_in(graphs.feats)
        graph = self.readout(to_slots(self._dag_gin(x, graphs), graphs, MAX_NODES).reshape(b, -1))
        # Size vector slotted by position (reference §4.1): position p holds that node's (r, c, gm).
        placed = graphs.position < N_POSITIONS
        slot = (graphs.batch * N_POSITIONS + graphs.position)[placed]
        sizes = graphs.feats.new_zeros(b * N_POSITIONS, graphs.feats.shape[-1]).index_add(0, slot, graphs.feats[placed])
        return self.embed(torch.cat([graph, self.size_code(sizes.reshape(b, -1))], dim=-1))

    def _dag_gin(self, x: torch.Tensor, graphs: Batch) -> torch.Tensor:
        """Node states h_v = GIN((1+ε)·x_v + Σ_{u→v} h_u), one node index at a time across the batch: nodes are
        in topological order, so a node's predecessors have their states when its turn comes (edges from
        later nodes read zeros, as the paper's update ignores them)."""
        h = torch.zeros_like(x)
        src, dst = graphs.edge_index
        for v in range(MAX_NODES):
            nodes = (graphs.slot == v).nonzero().squeeze(1)
            if len(nodes) == 0:
                continue
            into = graphs.slot[dst] == v
            edges = torch.stack([src[into], torch.searchsorted(nodes, dst[into])])
            h = h.index_copy(0, nodes, self.gin((h, x[nodes]), edges, size=(len(x), len(nodes))))
        return h

    def encode_specs(self, cls: torch.Tensor) -> torch.Tensor:
        """(B, embed_dim) spec embeddings from joint classes (B, n_axes)."""
        parts = [table(cls[:, i]) for i, table in enumerate(self.spec_tables)]
        return self.spec_mlp(torch.cat(parts, dim=-1))

    # --- forward -------------------------------------------------------------------------------

    def forward(
        self, inputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor] | None = None
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor] | None]:
        """Outputs (``embedding``, ``logits`` list per axis, ``fom`` z, ``reg`` (B, ``n_reg``)) and, when
        ``targets`` (``cls``, ``fom``, ``reg``, ``pm``) are given, the loss terms and their weighted ``total``."""
        if self.config.encoder == "nets":
            enc = self.embed(self.net_encoder(inputs["net_role"], inputs["net_mask"], inputs["net_pair"]))
        else:
            enc = self.encode_circuits(
                inputs["types"], inputs["pos"], inputs["adj"], inputs["values"], inputs["log_values"]
            )
        emb = enc if self.align_proj is None else self.align_proj(enc.detach())
        out: dict[str, Any] = {
            "embedding": emb,
            "logits": [head(emb) for head in self.class_heads],
            "fom": self.fom_head(enc).squeeze(-1),
            "reg": self.reg_head(enc),
        }
        if targets is None:
            return out, None
        return out, self.loss(out, targets)

    def loss(self, out: dict[str, Any], targets: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        c = self.config
        cls = targets["cls"]
        emb = out["embedding"]
        spec = self.encode_specs(cls)
        red = c.class_reduction
        terms = {
            "align": F.smooth_l1_loss(spec, emb, reduction=red),
            "nce": info_nce(spec, emb, cls, c.temperature),
            "class": sum(F.cross_entropy(lg, cls[:, i], reduction=red) for i, lg in enumerate(out["logits"])),
            "fom": F.smooth_l1_loss(out["fom"], targets["fom"]),
            "reg": F.smooth_l1_loss(out["reg"], self.reg_targets(targets), beta=c.reg_beta),
        }
        weights = {"align": c.w_align, "nce": c.w_nce, "class": c.w_class, "fom": c.w_fom, "reg": c.w_reg}
        terms["total"] = cast(torch.Tensor, sum(weights[k] * v for k, v in terms.items()))
        return terms  # type: ignore[return-value]

    def reg_targets(self, targets: dict[str, torch.Tensor]) -> torch.Tensor:
        """What the regressor is trained on: the z-scored specs, PM as (cos, sin) when ``pm_circular``."""
        if not self.config.pm_circular:
            return targets["reg"]
        angle = torch.deg2rad(targets["pm"]).unsqueeze(-1)
        return torch.cat([targets["reg"][:, :2], torch.cos(angle), torch.sin(angle)], dim=-1)


def same_class_mask(cls: torch.Tensor) -> torch.Tensor:
    """CktGen's filter mask: −inf off the diagonal wherever two rows share a joint class, else 0."""
    same = (cls.unsqueeze(1) == cls.unsqueeze(0)).all(dim=-1)
    same.fill_diagonal_(False)
    return torch.zeros(same.shape, device=cls.device).masked_fill(same, float("-inf"))


def info_nce(spec: torch.Tensor, emb: torch.Tensor, cls: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE on cosine similarity (spec rows × circuit columns) with same-class negatives removed."""
    sim = F.normalize(spec, dim=-1) @ F.normalize(emb, dim=-1).T / temperature
    sim = sim + same_class_mask(cls)
    target = torch.arange(len(cls), device=cls.device)
    return 0.5 * (F.cross_entropy(sim, target) + F.cross_entropy(sim.T, target))


def _rename_old_gin_keys(module: nn.Module, state: dict, prefix: str, *_: object) -> None:
    """Map a pre-port checkpoint's GIN (an MLP ``gin.{i}.…`` and a scalar ``eps``) onto ``GINConv``'s
    ``gin.nn.{i}.…`` and ``gin.eps`` (shape (1,)), in place."""
    old = prefix + "gin."
    for key in [k for k in state if k.startswith(old) and k[len(old)].isdigit()]:
        state[prefix + "gin.nn." + key[len(old) :]] = state.pop(key)
    if prefix + "eps" in state:
        state[prefix + "gin.eps"] = state.pop(prefix + "eps").reshape(1)

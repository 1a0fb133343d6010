"""The DIGIN surrogate: CktGen's GIN evaluator (reference §4.3) plus a spec regressor.

Circuit encoder: per node, type embedding ⊕ position embedding → linear = x_v; one shared GIN update
applied in topological (node-index) order, h_v = MLP((1+ε)·x_v + Σ_{u→v} h_u); padding nodes (type
``PAD_TYPE``) are masked out of the adjacency and zeroed, so nothing a padding row holds can change a
prediction (§6.10). Readout: node states concatenated in index order (8 nodes) → MLP, ⊕ a size code
from the device values slotted by position (k/101, 8 positions × (r, c, gm)) → linear = circuit
embedding. Heads: one classifier per spec axis (sizes from the class preset), a FoM regressor and a
3-output spec regressor (z-scored gain/100, log10 UGBW, PM/90). A spec embedder (one table per axis)
serves CktGen's contrastive loss and its retrieval metrics.

Beyond the paper (all off in ``configs/paper.yaml``):

* ``node_values`` adds each node's own (r, c, gm) to its token, so the GIN sees device values where
  they sit in the graph rather than only through the 8-wide size code;
* ``value_features`` feeds device values as log(k)/log(101) ("log") or both scales ("both"): gain,
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

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from circuits import CktLoopError
from circuits.circuit import MAX_NODES, N_POSITIONS
from circuits.encoding import PAD_TYPE
from circuits.subgraphs import N_TYPES
from surrogate.data import VALUE_SCALE
from surrogate.nets import NetEncoder

MODEL_NAME = "digin"
VALUE_FEATURES = {"linear": 3, "log": 3, "both": 6}  # feature width per node for each choice
CLASS_SOURCES = ("heads", "regression")
ENCODERS = ("subgraphs", "nets")


@dataclass(frozen=True)
class SurrogateConfig:
    """Every architectural knob and loss weight; defaults are the paper's (reference §4.3)."""

    type_dim: int = 256  # node-type embedding width
    pos_dim: int = 256  # position (path) embedding width
    hidden: int = 512  # node-state width (GIN)
    gin_eps: float = 0.0  # ε of the GIN update
    train_eps: bool = False  # learn ε
    dropout: float = 0.5  # inside the GIN MLP
    readout_hidden: int = 2048  # readout MLP: (8·hidden) → readout_hidden → graph_dim
    graph_dim: int = 512
    size_hidden: int = 256  # size code MLP: 24 → size_hidden → size_dim
    size_dim: int = 8
    node_values: bool = False  # beyond the paper: each node's (r, c, gm) added to its token
    value_features: str = "linear"  # how values enter tokens and size code: k/101, log(k)/log(101) or both
    embed_dim: int = 256  # circuit (and spec) embedding width
    spec_emb_dim: int = 256  # per-axis spec embedding table width
    head_hidden: int = 32  # hidden width of the class / FoM / spec heads
    temperature: float = 0.1  # InfoNCE temperature
    class_reduction: str = "sum"  # "sum" (paper) or "mean" for the cross-entropies and the alignment loss
    w_align: float = 0.01
    w_nce: float = 1.0
    w_class: float = 1.0
    w_fom: float = 1.0
    w_reg: float = 1.0  # beyond the paper: Smooth-L1 on the three z-scored specs
    pm_circular: bool = False  # regress a wrapped phase margin as (cos, sin) instead of PM/90
    class_source: str = "heads"  # "heads" (paper) or "regression": classes from the regressed specs
    encoder: str = "subgraphs"  # "subgraphs" (paper: the subgraph DAG) or "nets" (nets joined by elements)
    rounds: int = 6  # message-passing rounds of the nets encoder
    reg_beta: float = 1.0  # Smooth-L1 beta of the spec regression
    align_detached: bool = False  # contrastive, alignment and class terms train an MLP on the detached encoder

    def __post_init__(self) -> None:
        if self.class_reduction not in ("sum", "mean"):
            raise ValueError(f"class_reduction must be 'sum' or 'mean', got {self.class_reduction!r}")
        if self.value_features not in VALUE_FEATURES:
            raise ValueError(f"value_features must be one of {', '.join(VALUE_FEATURES)}, got {self.value_features!r}")
        if self.class_source not in CLASS_SOURCES:
            raise ValueError(f"class_source must be one of {', '.join(CLASS_SOURCES)}, got {self.class_source!r}")
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {', '.join(ENCODERS)}, got {self.encoder!r}")
        if self.reg_beta <= 0:
            raise ValueError(f"reg_beta must be > 0, got {self.reg_beta}")
        for name in (
            "type_dim",
            "pos_dim",
            "hidden",
            "readout_hidden",
            "graph_dim",
            "size_hidden",
            "size_dim",
            "embed_dim",
            "spec_emb_dim",
            "head_hidden",
            "rounds",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")

    @property
    def n_reg(self) -> int:
        """Regressor outputs: z-scored gain and log10 UGBW, then PM as one z-score or as (cos, sin)."""
        return 4 if self.pm_circular else 3

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


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
        self.gin = nn.Sequential(
            nn.Linear(c.hidden, c.hidden), nn.ReLU(), nn.Dropout(c.dropout), nn.Linear(c.hidden, c.hidden)
        )
        self.eps = nn.Parameter(torch.tensor(float(c.gin_eps)), requires_grad=c.train_eps)
        self.readout = nn.Sequential(
            nn.Linear(MAX_NODES * c.hidden, c.readout_hidden), nn.ReLU(), nn.Linear(c.readout_hidden, c.graph_dim)
        )
        self.size_code = nn.Sequential(
            nn.Linear(N_POSITIONS * n_values, c.size_hidden), nn.ReLU(), nn.Linear(c.size_hidden, c.size_dim)
        )
        self.embed = nn.Linear(c.graph_dim + c.size_dim, c.embed_dim)

    def value_features(self, values: torch.Tensor) -> torch.Tensor:
        """(…, 3) values k/101 → the configured features; absent devices (k = 0) stay 0 on every scale."""
        log = torch.log(torch.clamp(values * VALUE_SCALE, min=1.0)) / math.log(VALUE_SCALE)
        return {"linear": values, "log": log, "both": torch.cat([values, log], dim=-1)}[self.config.value_features]

    def encode_circuits(
        self, types: torch.Tensor, pos: torch.Tensor, adj: torch.Tensor, values: torch.Tensor
    ) -> torch.Tensor:
        """(B, embed_dim) circuit embeddings from encoded circuits (see ``surrogate.data.encode_batch``)."""
        b, n = types.shape
        if n != MAX_NODES:
            raise CktLoopError(f"expected circuits padded to {MAX_NODES} nodes, got {n}")
        mask = types != PAD_TYPE  # (B, N)
        fmask = mask.to(adj.dtype)
        adj = adj * fmask.unsqueeze(2) * fmask.unsqueeze(1)
        values = values * fmask.unsqueeze(-1)
        x = self.node_in(
            torch.cat([self.type_emb(types.clamp(0, PAD_TYPE)), self.pos_emb(pos.clamp(0, N_POSITIONS))], dim=-1)
        )
        feats = self.value_features(values)  # (B, N, F)
        if self.value_in is not None:
            x = x + self.value_in(feats)
        states: list[torch.Tensor] = []
        for v in range(n):
            agg = (1.0 + self.eps) * x[:, v]
            if states:
                prev = torch.stack(states, dim=1)  # (B, v, H)
                agg = agg + torch.einsum("bu,buh->bh", adj[:, :v, v], prev)
            states.append(self.gin(agg) * fmask[:, v : v + 1])
        graph = self.readout(torch.stack(states, dim=1).reshape(b, -1))
        # Size vector slotted by position (reference §4.1): position p holds that node's (r, c, gm).
        slot = F.one_hot(pos.clamp(0, N_POSITIONS), N_POSITIONS + 1)[..., :N_POSITIONS].to(values.dtype)
        sizes = torch.einsum("bnp,bnk->bpk", slot * fmask.unsqueeze(-1), feats).reshape(b, -1)
        return self.embed(torch.cat([graph, self.size_code(sizes)], dim=-1))

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
            enc = self.encode_circuits(inputs["types"], inputs["pos"], inputs["adj"], inputs["values"])
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
        terms["total"] = sum(weights[k] * v for k, v in terms.items())  # type: ignore[assignment]
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

"""The CktGen conditional VAE (reference §4.2), cleaned per §6.

* **Circuit encoder**: per node, type ⊕ position ⊕ a one-layer GIN connectivity embedding → linear
  to ``d_model``; two learned distribution tokens (μ, σ) prepended; fixed sinusoidal position
  encodings; a transformer encoder **with a key padding mask** (§6.10); a value code (MLP over the
  masked, normalised device values) concatenated to both token outputs; linear μ and log σ² heads.
* **Spec encoder**: one embedding per spec axis (table sizes from the ``SpecClasses`` preset, §6.9)
  → concat → MLP → μ, log σ².
* **Decoder**: GPT-like over three token streams (types, positions, topology), each
  ``[latent, node 0 … node 7]``; position i of any stream attends to positions ≤ i of all three.
  ``dec_streams: 1`` instead sums the three node embeddings into one stream of 9 tokens: the same
  information reaches position i (everything at positions ≤ i), attention and MLPs cost a third, and
  the heads read one shared hidden state; the CPU presets use it to fit the time budget.
  The output at position i predicts node i: type logits, position logits and a topology feature;
  the edge u→v probability is an MLP on (topology feature of v ⊕ that of u) for u < v only, so a
  decoded graph is a DAG by construction. Device values of node i are regressed from the type
  stream at position i + 1 (which has seen node i's type and position) — a per-node regressor
  instead of the paper's latent-only 24-vector indexed by position.
* **Losses** (all summed over the batch, as in the paper): reconstruction from the circuit latent
  and from the spec latent (type CE·type_rate + position CE·pos_rate + edge BCE + value MSE in grid
  units ·value_rate/value_divisor, on present devices only), four KL terms, Smooth-L1 latent
  alignment, filtered InfoNCE (temperature 0.1), and per-axis classifier guidance on the circuit
  latent. Every term can be switched off in ``CktGenConfig``; ``kl_mode: prior`` with only ``recon_ckt``
  on is the paper's reconstruction-only VAE (its Table 5 model).
* **Sampling**: greedy, or drawn from the decoder's distributions at a ``temperature`` (the paper
  decodes each prior latent 10 times, which only a stochastic decoder makes sense of). By default
  constrained by the op-amp grammar (``generator/grammar.py``): the best-scoring (or a drawn)
  (type, position) pair that can still complete a valid circuit, each side node's source by its edge
  logits, the other edges fixed by the grammar. ``grammar: false`` decodes as the paper
  does (argmax type and position, edge if p > 0.5, Out forced at the 8th node, loose ends wired to Out),
  which the evaluation reports as the unconstrained validity. Values are snapped to the grid and masked
  by type by ``circuits.encoding.decode``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from circuits.circuit import MAX_NODES, N_POSITIONS, POS_IN, POS_OUT, SIDE_POSITIONS, Circuit
from circuits.encoding import PAD_POS, PAD_TYPE, decode
from circuits.errors import CircuitError, CktLoopError
from circuits.grid import value_grid
from circuits.specs import spec_classes
from circuits.subgraphs import IN, N_TYPES, OUT
from generator.data import circuit_tensors, denormalise_values, device_mask_table, same_class_filter
from generator.grammar import GrammarState


class ConfigError(CktLoopError, ValueError):
    """A bad config value; a ValueError too, so ``circuits.config`` prefixes the YAML file's name."""


LOSS_TERMS = ("recon_ckt", "recon_spec", "kl", "align", "nce", "gde")


@dataclass
class CktGenConfig:
    """Every knob of the model and its loss. Defaults are the paper's (reference §4.2)."""

    spec_preset: str = "ocb"
    grid: str = "ocb"
    # circuit encoder
    d_model: int = 512
    d_embed: int = 128  # per-part node embedding (type, position, connectivity)
    gin_hidden: int = 256
    gin_dropout: float = 0.2
    enc_layers: int = 4
    enc_heads: int = 8
    enc_ff: int = 512
    enc_dropout: float = 0.1
    pe_dropout: float = 0.2
    value_hidden: int = 128
    value_code: int = 8
    latent_dim: int = 64
    # "global": the paper's latent, read off two distribution tokens and fed as the decoder's first
    # token. "nodes": one slot of latent_dim / 8 dimensions per node index, read off that node's
    # encoder token (and its values) and added to the decoder token that predicts the node, so
    # position i sees slots 0..i only and node i's values come from its own slot: a compositional
    # code, where an unseen topology is a new combination of slots rather than a point to memorise.
    latent_layout: str = "global"
    # beyond the paper: the decoder also sees the requested class (added to its first token; replaced by a
    # learned "no class" token with probability spec_dropout in training, and when reconstructing), and
    # decodes latents with Gaussian noise of latent_noise × the batch's per-dimension std of the means,
    # so it learns to pull a perturbed latent back into the requested class
    decoder_spec: bool = False
    spec_dropout: float = 0.1
    latent_noise: float = 0.0
    # the value head reads the latent without latent_noise, as bank sampling's clean values do
    # (``Generator.generate(bank_values="clean")``); false: the noisy one, as the structure heads
    clean_value_latent: bool = False
    # spec encoder
    spec_embed: int = 128
    spec_hidden: int = 128
    # decoder
    dec_layers: int = 4
    dec_heads: int = 8
    dec_dropout: float = 0.3
    dec_mlp_ratio: int = 4
    dec_streams: int = 3  # 3: the paper's type/position/topology streams; 1: one summed stream (3x cheaper)
    head_hidden: int = 128
    topo_dim: int = 128
    edge_hidden: int = 128
    value_head_hidden: int = 128
    gde_hidden: int = 32
    # loss switches
    recon_ckt: bool = True
    recon_spec: bool = True
    kl: bool = True
    align: bool = True
    nce: bool = True
    gde: bool = True
    kl_mode: str = "paired"  # "paired": CktGen's four KL terms; "prior": KL(circuit ‖ N(0, I)) only (the recon VAE)
    # loss weights and rates
    w_recon: float = 1.0
    w_kl: float = 1e-5
    w_align: float = 1.0
    w_nce: float = 1.0
    w_gde: float = 1.0
    # "linear": device values regressed as grid indices (the paper); "log": as ln of the grid index, so
    # an error costs by its ratio (a circuit's gain and bandwidth move with value ratios, not steps)
    value_space: str = "linear"
    type_rate: float = 0.5
    pos_rate: float = 0.05
    value_rate: float = 0.01
    value_divisor: float = 300.0
    nce_temperature: float = 0.1
    # sampling
    grammar: bool = True  # constrained decoding (generator/grammar.py); False decodes as the paper does
    edge_threshold: float = 0.5
    sample_batch: int = 256

    def __post_init__(self) -> None:
        check_field_types(self)
        try:
            spec_classes(self.spec_preset)
            value_grid(self.grid)
        except (CktLoopError, ValueError) as exc:
            raise ConfigError(str(exc)) from None
        for name in ("d_model", "enc_layers", "dec_layers", "latent_dim"):
            if getattr(self, name) < 1:
                raise ConfigError(f"CktGenConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name, heads in (("enc_heads", self.enc_heads), ("dec_heads", self.dec_heads)):
            if heads < 1 or self.d_model % heads:
                raise ConfigError(f"CktGenConfig.{name}={heads} must divide d_model={self.d_model}")
        if self.kl_mode not in ("paired", "prior"):
            raise ConfigError(f"CktGenConfig.kl_mode must be 'paired' or 'prior', got {self.kl_mode!r}")
        if self.latent_layout not in ("global", "nodes"):
            raise ConfigError(f"CktGenConfig.latent_layout must be 'global' or 'nodes', got {self.latent_layout!r}")
        if self.latent_layout == "nodes" and self.latent_dim % MAX_NODES:
            raise ConfigError(
                f"CktGenConfig.latent_dim={self.latent_dim} must be a multiple of {MAX_NODES} (latent_layout 'nodes')"
            )
        if self.value_space not in ("linear", "log"):
            raise ConfigError(f"CktGenConfig.value_space must be 'linear' or 'log', got {self.value_space!r}")
        if self.dec_streams not in (1, 3):
            raise ConfigError(f"CktGenConfig.dec_streams must be 1 or 3, got {self.dec_streams}")
        if self.decoder_spec and self.kl_mode != "paired":
            raise ConfigError("CktGenConfig.decoder_spec needs a spec-conditioned model (kl_mode 'paired')")
        if not 0.0 <= self.spec_dropout <= 1.0 or self.latent_noise < 0.0:
            raise ConfigError(
                f"CktGenConfig: spec_dropout must lie in [0, 1] and latent_noise be >= 0, "
                f"got {self.spec_dropout} and {self.latent_noise}"
            )
        if self.nce_temperature <= 0:
            raise ConfigError(f"CktGenConfig.nce_temperature must be > 0, got {self.nce_temperature}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def spec_sizes(self) -> tuple[int, ...]:
        return spec_classes(self.spec_preset).sizes

    @property
    def conditional(self) -> bool:
        """Whether the spec latent is trained (the paired KL terms); the recon-only VAE's is not."""
        return self.kl_mode == "paired"


def check_field_types(obj: Any) -> None:
    """Reject values of the wrong type (e.g. YAML 1.1 reads ``1e-4`` as a string), naming the field."""
    kinds = {"float": (int, float), "int": (int,), "bool": (bool,), "str": (str,)}
    for f in fields(obj):
        value = getattr(obj, f.name)
        hint = str(f.type).replace(" | None", "")
        if hint not in kinds or (value is None and "None" in str(f.type)):
            continue
        ok = isinstance(value, kinds[hint]) and (hint == "bool" or not isinstance(value, bool))
        if not ok:
            raise ConfigError(f"{type(obj).__name__}.{f.name} must be a {hint}, got {value!r}")


# --- building blocks ------------------------------------------------------------------------


class Gin(nn.Module):
    """One GIN-style layer on (rank one-hot ⊕ Aᵀ·one-hot): a node's slot and its predecessors' slots."""

    def __init__(self, hidden: int, out: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(2 * MAX_NODES, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, out),
            nn.Dropout(dropout),
        )

    def forward(self, topo: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([topo, adj.transpose(1, 2) @ topo], dim=-1))


def sinusoidal(n: int, d: int) -> torch.Tensor:
    position = torch.arange(n, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))
    pe = torch.zeros(n, d)
    pe[:, 0::2] = torch.sin(position * div)
    pe[:, 1::2] = torch.cos(position * div)[:, : d // 2]
    return pe


class Attention(nn.Module):
    """Multi-head self-attention on ``scaled_dot_product_attention`` with a boolean block mask.

    With ``cache`` (a list, empty at first), keys and values of earlier calls are kept in it and
    the new tokens attend to them too: greedy decoding then feeds one step's tokens at a time.
    """

    def __init__(self, d: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)

    def forward(self, x: torch.Tensor, blocked: torch.Tensor, cache: list[torch.Tensor] | None = None) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        if cache is not None:
            if cache:
                k, v = torch.cat([cache[0], k], 2), torch.cat([cache[1], v], 2)
            cache[:] = [k, v]
        h = F.scaled_dot_product_attention(
            q, k, v, attn_mask=~blocked, dropout_p=self.dropout if self.training else 0.0
        )
        return self.proj(h.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    """Pre-LayerNorm transformer block (GPT style)."""

    def __init__(self, d: int, heads: int, ratio: int, dropout: float) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(d)
        self.attn = Attention(d, heads, dropout)
        self.ln2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, ratio * d), nn.GELU(), nn.Linear(ratio * d, d), nn.Dropout(dropout))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, blocked: torch.Tensor, cache: list[torch.Tensor] | None = None) -> torch.Tensor:
        x = x + self.drop(self.attn(self.ln1(x), blocked, cache))
        return x + self.mlp(self.ln2(x))


def mlp(d_in: int, hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, d_out))


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


def kl_diag(mu1: torch.Tensor, lv1: torch.Tensor, mu2: torch.Tensor, lv2: torch.Tensor) -> torch.Tensor:
    """Σ KL(N(mu1, e^lv1) ‖ N(mu2, e^lv2)) over the batch and dimensions."""
    return 0.5 * (lv2 - lv1 + (lv1.exp() + (mu1 - mu2) ** 2) / lv2.exp() - 1.0).sum()


def kl_std(mu: torch.Tensor, lv: torch.Tensor) -> torch.Tensor:
    return 0.5 * (lv.exp() + mu**2 - 1.0 - lv).sum()


# --- the model --------------------------------------------------------------------------------


class CktGen(nn.Module):
    def __init__(self, config: CktGenConfig) -> None:
        super().__init__()
        self.config = c = config
        self.spec_sizes = c.spec_sizes
        d, L = c.d_model, MAX_NODES + 1
        # circuit encoder
        self.enc_type = nn.Embedding(N_TYPES + 1, c.d_embed, padding_idx=PAD_TYPE)
        self.enc_pos = nn.Embedding(N_POSITIONS + 1, c.d_embed, padding_idx=PAD_POS)
        self.enc_gin = Gin(c.gin_hidden, c.d_embed, c.gin_dropout)
        self.enc_in = nn.Linear(3 * c.d_embed, d)
        self.dist_tokens = nn.Parameter(torch.randn(2, d) * 0.02)
        self.register_buffer("enc_pe", sinusoidal(MAX_NODES + 2, d), persistent=False)
        self.enc_drop = nn.Dropout(c.pe_dropout)
        layer = nn.TransformerEncoderLayer(d, c.enc_heads, c.enc_ff, c.enc_dropout, activation="gelu", batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, c.enc_layers, enable_nested_tensor=False)
        if c.latent_layout == "nodes":
            slot = c.latent_dim // MAX_NODES
            self.ckt_mu = nn.Linear(d + 3, slot)  # a node's token output ⊕ its own normalised values
            self.ckt_lv = nn.Linear(d + 3, slot)
            self.dec_slot = nn.Linear(slot, d)
        else:
            self.value_code = mlp(3 * MAX_NODES, c.value_hidden, c.value_code)
            self.ckt_mu = nn.Linear(d + c.value_code, c.latent_dim)
            self.ckt_lv = nn.Linear(d + c.value_code, c.latent_dim)
        # spec encoder
        self.spec_emb = nn.ModuleList(nn.Embedding(k, c.spec_embed) for k in self.spec_sizes)
        self.spec_body = nn.Sequential(nn.Linear(len(self.spec_sizes) * c.spec_embed, c.spec_hidden), nn.ReLU())
        self.spec_mu = nn.Linear(c.spec_hidden, c.latent_dim)
        self.spec_lv = nn.Linear(c.spec_hidden, c.latent_dim)
        # decoder
        if c.latent_layout == "global":
            self.dec_latent = nn.Linear(c.latent_dim, d)
        if c.decoder_spec:
            self.dec_spec = nn.ModuleList(nn.Embedding(k, d) for k in self.spec_sizes)
            self.dec_no_spec = nn.Parameter(torch.zeros(d))
        self.dec_type = nn.Embedding(N_TYPES + 1, d, padding_idx=PAD_TYPE)
        self.dec_pos = nn.Embedding(N_POSITIONS + 1, d, padding_idx=PAD_POS)
        self.dec_gin = Gin(c.gin_hidden, d, c.dec_dropout)
        n_streams = c.dec_streams
        self.dec_pe = nn.Parameter(torch.zeros(n_streams * L, d))
        self.dec_drop = nn.Dropout(c.dec_dropout)
        self.blocks = nn.ModuleList(Block(d, c.dec_heads, c.dec_mlp_ratio, c.dec_dropout) for _ in range(c.dec_layers))
        self.dec_ln = nn.LayerNorm(d)
        step = torch.arange(n_streams * L) % L
        self.register_buffer("dec_mask", step[None, :] > step[:, None], persistent=False)  # True = blocked
        self.head_type = mlp(d, c.head_hidden, N_TYPES)
        self.head_pos = mlp(d, c.head_hidden, N_POSITIONS)
        self.head_topo = mlp(d, c.head_hidden, c.topo_dim)
        self.edge_in = nn.Linear(2 * c.topo_dim, c.edge_hidden)
        self.edge_out = nn.Linear(c.edge_hidden, 1)
        value_z = c.latent_dim if c.latent_layout == "global" else c.latent_dim // MAX_NODES
        self.head_value = mlp(d + value_z, c.value_head_hidden, 3)
        # classifier guidance
        self.gde_heads = nn.ModuleList(mlp(c.latent_dim, c.gde_hidden, k) for k in self.spec_sizes)
        self.register_buffer("device_mask", device_mask_table(), persistent=False)
        self.register_buffer("pair_mask", torch.ones(MAX_NODES, MAX_NODES).triu(1).bool(), persistent=False)
        # prior rescaling for random generation (set from training means after training)
        self.register_buffer("prior_mean", torch.zeros(c.latent_dim))
        self.register_buffer("prior_std", torch.ones(c.latent_dim))

    @property
    def device(self) -> torch.device:
        return self.dist_tokens.device

    # --- encoders ---------------------------------------------------------------------------

    def encode_circuit(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        mask = batch["mask"]
        nodes = torch.cat(
            [self.enc_type(batch["types"]), self.enc_pos(batch["pos"]), self.enc_gin(batch["topo"], batch["adj"])], -1
        )
        x = self.enc_in(nodes)
        tokens = self.dist_tokens[None].expand(x.shape[0], -1, -1)
        x = self.enc_drop(torch.cat([tokens, x], 1) + self.enc_pe)
        pad = torch.cat([torch.zeros_like(mask[:, :2]), ~mask], 1)
        h = self.encoder(x, src_key_padding_mask=pad)
        values = self.to_value_space(batch["values"]) * batch["value_mask"] * mask[..., None]
        if self.config.latent_layout == "nodes":
            # A padded slot is exactly the prior (mean 0, log-variance 0): it adds nothing to the KL.
            node = torch.cat([h[:, 2:], values], -1)
            keep = mask[..., None].float()
            return (self.ckt_mu(node) * keep).flatten(1), (self.ckt_lv(node) * keep).flatten(1)
        code = self.value_code(values.flatten(1))
        return self.ckt_mu(torch.cat([h[:, 0], code], -1)), self.ckt_lv(torch.cat([h[:, 1], code], -1))

    def encode_spec(self, spec: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.spec_body(torch.cat([emb(spec[:, k]) for k, emb in enumerate(self.spec_emb)], -1))
        return self.spec_mu(h), self.spec_lv(h)

    # --- decoder ----------------------------------------------------------------------------

    def _stream_tokens(
        self,
        z: torch.Tensor,
        types: torch.Tensor,
        pos: torch.Tensor,
        topo: torch.Tensor,
        adj: torch.Tensor,
        start: int,
        stop: int,
        cond: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Input tokens at positions ``start..stop - 1`` of every stream (position 0 is the latent, position
        p the node p − 1), stream-major, with their indices into ``dec_pe``/``dec_mask``. ``cond`` (B, d),
        the class the decoder is asked for (``decoder_spec``), joins the first token."""
        L = MAX_NODES + 1
        first = max(start - 1, 0)
        parts = (
            self.dec_type(types[:, first : stop - 1]),
            self.dec_pos(pos[:, first : stop - 1]),
            self.dec_gin(topo[:, : stop - 1, :], adj[:, : stop - 1, : stop - 1])[:, first:],
        )
        if self.config.dec_streams == 1:
            parts = (parts[0] + parts[1] + parts[2],)
        if start == 0:
            # with node slots the first token is empty: slot 0 is added below like every other slot
            nodes = self.config.latent_layout == "nodes"
            lat = torch.zeros_like(parts[0][:, :1]) if nodes else self.dec_latent(z)[:, None]
            if cond is not None:
                lat = lat + cond[:, None]
            parts = tuple(torch.cat([lat, p], 1) for p in parts)
        if self.config.latent_layout == "nodes":
            # position p predicts node p, so it gets node p's slot (the last position predicts no node)
            slots = self.dec_slot(z.view(z.shape[0], MAX_NODES, -1)[:, start:stop])  # only the positions fed now
            if stop > MAX_NODES:
                slots = torch.cat([slots, slots.new_zeros(slots.shape[0], stop - MAX_NODES, slots.shape[2])], 1)
            parts = tuple(p + slots for p in parts)
        x = torch.cat(parts, 1)
        idx = torch.cat([torch.arange(start, stop) + s * L for s in range(len(parts))]).to(z.device)
        return self.dec_drop(x + self.dec_pe[idx]), idx

    def decode_streams(
        self,
        z: torch.Tensor,
        types: torch.Tensor,
        pos: torch.Tensor,
        topo: torch.Tensor,
        adj: torch.Tensor,
        length: int = MAX_NODES + 1,
        cond: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """One causal pass over the first ``length`` tokens of each stream (latent + ``length`` − 1 nodes).

        Outputs at positions 0..7 predict nodes 0..7. Training uses this full pass; greedy decoding
        feeds one step at a time through ``_decode_step``, which gives the same outputs.
        """
        x, idx = self._stream_tokens(z, types, pos, topo, adj, 0, length, cond)
        h_type, h_pos, h_topo = self._transform(x, self.dec_mask[idx][:, idx])
        m = min(length, MAX_NODES)
        return {
            "type_logits": self.head_type(h_type[:, :m]),
            "pos_logits": self.head_pos(h_pos[:, :m]),
            "topo": self.head_topo(h_topo[:, :m]),
            "h_next": h_type[:, 1:],  # position i + 1 has seen node i: the value regressor's input
        }

    def _transform(
        self, x: torch.Tensor, mask: torch.Tensor, caches: list[list[torch.Tensor]] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The decoder blocks and final norm over stream-major tokens; the (type, position, topology)
        hidden states (one shared stream when ``dec_streams`` is 1). ``caches``: one per block."""
        for k, block in enumerate(self.blocks):
            x = block(x, mask, None if caches is None else caches[k])
        x = self.dec_ln(x)
        return x.chunk(3, dim=1) if self.config.dec_streams == 3 else (x, x, x)

    def _decode_step(
        self,
        z: torch.Tensor,
        types: torch.Tensor,
        pos: torch.Tensor,
        topo: torch.Tensor,
        adj: torch.Tensor,
        i: int,
        state: dict[str, Any],
        cond: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Outputs at position ``i`` (node i's logits, and the value input of node i − 1) from the tokens
        not yet seen, with keys and values of earlier positions cached in ``state`` (empty at first).
        Topology features of every position so far accumulate in ``state["topo"]``."""
        start = 0 if not state else i
        x, idx = self._stream_tokens(z, types, pos, topo, adj, start, i + 1, cond)
        keys = idx if not state else torch.cat([state["idx"], idx])
        caches = state.setdefault("caches", [[] for _ in self.blocks])
        h_type, h_pos, h_topo = self._transform(x, self.dec_mask[idx][:, keys], caches)
        state["idx"] = keys
        new_topo = self.head_topo(h_topo)
        state["topo"] = new_topo if start == 0 else torch.cat([state["topo"], new_topo], 1)
        return {
            "type_logits": self.head_type(h_type[:, -1]),
            "pos_logits": self.head_pos(h_pos[:, -1]),
            "topo": state["topo"],
            "h_last": h_type[:, -1],
        }

    def edge_logits(self, topo_feat: torch.Tensor) -> torch.Tensor:
        """(B, 8, 8) logits of u→v (row u, column v); only u < v is meaningful."""
        w = self.edge_in.weight
        k = self.config.topo_dim
        as_v = topo_feat @ w[:, :k].T  # feature of the target node
        as_u = topo_feat @ w[:, k:].T  # feature of the source node
        h = F.relu(as_u[:, :, None, :] + as_v[:, None, :, :] + self.edge_in.bias)
        return self.edge_out(h).squeeze(-1)

    def _log_range(self) -> tuple[float, float]:
        g = value_grid(self.config.grid)
        return math.log(g.k_min), math.log(g.k_max)

    def to_value_space(self, values: torch.Tensor) -> torch.Tensor:
        """Normalised grid indices (``generator.data.normalise_values``) → the model's value space, in [0, 1]."""
        if self.config.value_space == "linear":
            return values
        g, (lo, hi) = value_grid(self.config.grid), self._log_range()
        k = denormalise_values(values, self.config.grid).clamp_min(g.k_min)
        return (k.log() - lo) / (hi - lo)

    def from_value_space(self, u: torch.Tensor) -> torch.Tensor:
        """The inverse of ``to_value_space``."""
        if self.config.value_space == "linear":
            return u
        lo, hi = self._log_range()
        g = value_grid(self.config.grid)
        return ((u * (hi - lo) + lo).exp() - g.k_min) / float(g.k_max - g.k_min)

    def node_values(self, h_next: torch.Tensor, z: torch.Tensor, first: int = 0) -> torch.Tensor:
        """Device values, in the model's value space, of nodes ``first ..`` (one per row of ``h_next``),
        from the decoder state and the whole latent, or with node slots the node's own slot."""
        n = h_next.shape[1]
        if self.config.latent_layout == "nodes":
            zz = z.view(z.shape[0], MAX_NODES, -1)[:, first : first + n]
        else:
            zz = z[:, None, :].expand(-1, n, -1)
        return torch.sigmoid(self.head_value(torch.cat([h_next, zz], -1)))

    def decoder_condition(self, spec: torch.Tensor | None, drop: torch.Tensor | None = None) -> torch.Tensor | None:
        """The decoder's class token for ``spec`` rows (None: the "no class" token; ``drop``: rows that get it)."""
        if not self.config.decoder_spec:
            return None
        if spec is None:
            return self.dec_no_spec[None]
        emb = sum(table(spec[:, k]) for k, table in enumerate(self.dec_spec))
        return emb if drop is None else torch.where(drop[:, None], self.dec_no_spec[None], emb)

    def decode_teacher(
        self,
        z: torch.Tensor,
        batch: dict[str, torch.Tensor],
        cond: torch.Tensor | None = None,
        value_z: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Teacher-forced decoding of ``batch`` from ``z``; the value head reads ``value_z`` (default ``z``)."""
        out = self.decode_streams(z, batch["types"], batch["pos"], batch["topo"], batch["adj"], cond=cond)
        out["edge_logits"] = self.edge_logits(out.pop("topo"))
        out["values"] = self.node_values(out.pop("h_next"), z if value_z is None else value_z)
        return out

    # --- training pass ----------------------------------------------------------------------

    def forward(self, batch: dict[str, torch.Tensor], with_loss: bool = True) -> dict[str, Any]:
        """Encode, decode (teacher forcing) and, with ``with_loss``, the loss terms under ``"losses"``.

        Latents are sampled in training mode and the means are used in eval mode.
        """
        c = self.config
        mu_c, lv_c = self.encode_circuit(batch)
        z_c = self._sample(mu_c, lv_c)
        out: dict[str, Any] = {"mu_ckt": mu_c, "logvar_ckt": lv_c, "z_ckt": z_c}
        has_spec = "spec" in batch
        if has_spec:
            mu_s, lv_s = self.encode_spec(batch["spec"])
            z_s = self._sample(mu_s, lv_s)
            out.update(mu_spec=mu_s, logvar_spec=lv_s, z_spec=z_s)
        need_spec_decode = with_loss and c.recon_spec
        if need_spec_decode and not has_spec:
            raise CktLoopError("recon_spec loss needs 'spec' in the batch")
        if c.decoder_spec and not has_spec:
            raise CktLoopError("decoder_spec needs 'spec' in the batch")
        dec_c = self._noisy(z_c, mu_c)  # the latents the decoder reads (noisy with latent_noise)
        dec_s = self._noisy(z_s, mu_s) if has_spec else None
        val_c, val_s = (z_c, z_s if has_spec else None) if c.clean_value_latent else (dec_c, dec_s)
        if need_spec_decode:
            both = {k: torch.cat([v, v]) for k, v in batch.items() if k != "spec"}
            cond = self._teacher_condition(torch.cat([batch["spec"], batch["spec"]]))
            dec = self.decode_teacher(torch.cat([dec_c, dec_s]), both, cond, torch.cat([val_c, val_s]))
            b = z_c.shape[0]
            out.update({k: v[:b] for k, v in dec.items()})
            dec_spec = {k: v[b:] for k, v in dec.items()}
        else:
            cond = self._teacher_condition(batch["spec"]) if has_spec else None
            out.update(self.decode_teacher(dec_c, batch, cond, val_c))
        if not with_loss:
            return out
        losses: dict[str, torch.Tensor] = {}
        if c.recon_ckt:
            parts = self.recon_parts(out, batch)
            losses.update({f"ckt_{k}": v.detach() for k, v in parts.items()})
            losses["recon_ckt"] = self.recon_total(parts)
        if c.recon_spec:
            parts = self.recon_parts(dec_spec, batch)
            losses.update({f"spec_{k}": v.detach() for k, v in parts.items()})
            losses["recon_spec"] = self.recon_total(parts)
        if not has_spec and ((c.kl and c.kl_mode == "paired") or c.align or c.nce):
            raise CktLoopError("paired kl, align and nce losses need 'spec' in the batch")
        if c.kl and c.kl_mode == "prior":
            losses["kl"] = kl_std(mu_c, lv_c)
        elif c.kl:
            losses["kl"] = (
                kl_diag(mu_s, lv_s, mu_c, lv_c)
                + kl_diag(mu_c, lv_c, mu_s, lv_s)
                + kl_std(mu_c, lv_c)
                + kl_std(mu_s, lv_s)
            )
        if c.align:
            losses["align"] = F.smooth_l1_loss(z_s, z_c, reduction="sum")
        if c.nce:
            logits = F.normalize(z_s, dim=-1) @ F.normalize(z_c, dim=-1).T / c.nce_temperature
            logits = logits + same_class_filter(batch["spec"])
            target = torch.arange(logits.shape[0], device=logits.device)
            losses["nce"] = 0.5 * (
                F.cross_entropy(logits, target, reduction="sum") + F.cross_entropy(logits.T, target, reduction="sum")
            )
        if c.gde:
            if not has_spec:
                raise CktLoopError("gde loss needs 'spec' in the batch")
            losses["gde"] = sum(
                F.cross_entropy(head(z_c), batch["spec"][:, k], reduction="sum")
                for k, head in enumerate(self.gde_heads)
            )
        weights = {
            "recon_ckt": c.w_recon,
            "recon_spec": c.w_recon,
            "kl": c.w_kl,
            "align": c.w_align,
            "nce": c.w_nce,
            "gde": c.w_gde,
        }
        total = sum((weights[k] * losses[k] for k in LOSS_TERMS if k in losses), torch.zeros((), device=self.device))
        losses["total"] = total
        out["losses"] = losses
        return out

    def _noisy(self, z: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
        """In training, ``z`` plus ``latent_noise`` × the batch's per-dimension std of the means."""
        if not self.training or self.config.latent_noise <= 0 or len(mu) < 2:
            return z
        return z + torch.randn_like(z) * self.config.latent_noise * mu.detach().std(0)

    def _teacher_condition(self, spec: torch.Tensor) -> torch.Tensor | None:
        """The class token in training (``spec_dropout`` of the rows get none); no random draw without one."""
        if not self.config.decoder_spec:
            return None
        drop = torch.rand(len(spec), device=spec.device) < self.config.spec_dropout if self.training else None
        return self.decoder_condition(spec, drop)

    def _sample(self, mu: torch.Tensor, lv: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return mu
        return mu + torch.randn_like(mu) * (0.5 * lv).exp()

    def recon_parts(self, out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        mask = batch["mask"]
        type_ce = F.cross_entropy(out["type_logits"][mask], batch["types"][mask], reduction="sum")
        pos_ce = F.cross_entropy(out["pos_logits"][mask], batch["pos"][mask], reduction="sum")
        pairs = self.pair_mask[None] & mask[:, None, :]
        edge_bce = F.binary_cross_entropy_with_logits(out["edge_logits"][pairs], batch["adj"][pairs], reduction="sum")
        g = value_grid(self.config.grid)
        lo, hi = self._log_range()
        # squared error in grid steps ("linear") or in ln of the value ratio ("log")
        span = float(g.k_max - g.k_min) if self.config.value_space == "linear" else hi - lo
        present = batch["value_mask"] * mask[..., None]
        value_se = (((out["values"] - self.to_value_space(batch["values"])) * span) ** 2 * present).sum()
        return {"type_ce": type_ce, "pos_ce": pos_ce, "edge_bce": edge_bce, "value_se": value_se}

    def recon_total(self, parts: dict[str, torch.Tensor]) -> torch.Tensor:
        c = self.config
        return (
            c.type_rate * parts["type_ce"]
            + c.pos_rate * parts["pos_ce"]
            + parts["edge_bce"]
            + c.value_rate * parts["value_se"] / c.value_divisor
        )

    # --- decoding (greedy or drawn) ----------------------------------------------------------

    @torch.no_grad()
    def decode_latents(
        self,
        z: torch.Tensor,
        spec: torch.Tensor | None = None,
        value_z: torch.Tensor | None = None,
        draw: Draw = GREEDY,
    ) -> dict[str, torch.Tensor]:
        """Decoding of latents (B, latent_dim) into padded graph arrays (a DAG by construction).

        ``value_z``: other latents for the device-value head (default ``z``); bank sampling decodes the
        structure from a perturbed latent and the values from the unperturbed one. ``draw``: greedy as
        described below, or every choice drawn (``Draw``); device values are regressed, so they stay
        deterministic.

        Node 0 is In; each later step takes argmax type and position and adds u→i for u < i when
        p > ``edge_threshold``. A predicted Out ends the graph; at the 8th node Out is forced (at
        position 1). When Out is placed, every earlier node without an outgoing edge is wired to it.
        """
        was_training = self.training
        self.eval()
        try:
            cond = self.decoder_condition(None if spec is None else spec.to(self.device))
            value_z = z if value_z is None else value_z
            if value_z.shape != z.shape:
                raise CktLoopError(f"value_z {tuple(value_z.shape)} must match z {tuple(z.shape)}")
            return self._decode_latents(z.to(self.device), cond, value_z.to(self.device), draw)
        finally:
            self.train(was_training)

    def _decode_latents(
        self, z: torch.Tensor, cond: torch.Tensor | None, value_z: torch.Tensor, draw: Draw
    ) -> dict[str, torch.Tensor]:
        b, dev = z.shape[0], z.device
        types = torch.full((b, MAX_NODES), PAD_TYPE, dtype=torch.long, device=dev)
        pos = torch.full((b, MAX_NODES), PAD_POS, dtype=torch.long, device=dev)
        topo = torch.zeros(b, MAX_NODES, MAX_NODES, device=dev)
        adj = torch.zeros(b, MAX_NODES, MAX_NODES, device=dev)
        values = torch.zeros(b, MAX_NODES, 3, device=dev)
        n_nodes = torch.full((b,), MAX_NODES, dtype=torch.long, device=dev)
        done = torch.zeros(b, dtype=torch.bool, device=dev)
        types[:, 0], pos[:, 0], topo[:, 0, 0] = IN, POS_IN, 1.0
        grammar = GrammarState(b, dev) if self.config.grammar else None
        state: dict[str, Any] = {}
        for i in range(1, MAX_NODES):
            out = self._decode_step(z, types, pos, topo, adj, i, state, cond)
            active = ~done
            node = self.node_values(out["h_last"][:, None], value_z, i - 1)[:, 0]
            values[:, i - 1] = torch.where(active[:, None], node, 0.0)
            edge_logits = self.edge_logits(out["topo"])[:, :i, i]  # u < i → i
            type_logits, pos_logits = out["type_logits"], out["pos_logits"]
            if grammar is None:
                t, p, edges = self._choose_free(i, type_logits, pos_logits, edge_logits, draw)
            else:
                t, p, edges = self._choose_constrained(i, grammar, type_logits, pos_logits, edge_logits, draw)
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
        values = self.from_value_space(values) * self.device_mask[types]
        return {"types": types, "pos": pos, "adj": adj, "values": values, "n_nodes": n_nodes}

    def _choose_free(
        self, i: int, type_logits: torch.Tensor, pos_logits: torch.Tensor, edge_logits: torch.Tensor, draw: Draw
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The paper's decoding: argmax type and position, every edge with p > threshold, Out forced at the
        8th node; when drawing, type and position are drawn and each edge is a coin with its probability."""
        t, p = draw.pick(type_logits), draw.pick(pos_logits)
        if i == MAX_NODES - 1:
            forced = t != OUT
            t = torch.full_like(t, OUT)
            p = torch.where(forced, torch.full_like(p, POS_OUT), p)
        return t, p, draw.edges(edge_logits, self.config.edge_threshold)

    def _choose_constrained(
        self,
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

    def to_circuits(self, graphs: dict[str, torch.Tensor]) -> list[Circuit | CircuitError]:
        """Decoded arrays → Circuits (or the CircuitError naming why one is invalid)."""
        # Plain lists: ``decode`` indexes element by element, which is slow on numpy scalars.
        g = value_grid(self.config.grid)
        values = denormalise_values(graphs["values"].detach().cpu().double(), self.config.grid)
        values = values.round().clamp(g.k_min, g.k_max).tolist()
        types, pos = graphs["types"].tolist(), graphs["pos"].tolist()
        adj, counts = graphs["adj"].int().tolist(), graphs["n_nodes"].tolist()
        results: list[Circuit | CircuitError] = []
        for j in range(len(counts)):
            try:
                results.append(decode(types[j], pos[j], adj[j], values[j], counts[j], grid=self.config.grid))
            except CircuitError as exc:
                results.append(exc)
        return results

    def decode(
        self,
        z: torch.Tensor,
        spec: torch.Tensor | None = None,
        value_z: torch.Tensor | None = None,
        draw: Draw = GREEDY,
    ) -> list[Circuit | CircuitError]:
        """Circuits from latents; ``spec`` (class indices per row) for a decoder that sees the class,
        ``value_z`` for other latents to read the device values from, ``draw`` to draw the choices
        instead of decoding greedily (see ``decode_latents``)."""
        results: list[Circuit | CircuitError] = []
        step = max(1, self.config.sample_batch)
        for start in range(0, z.shape[0], step):
            chunk = slice(start, start + step)
            rows = None if spec is None else spec[chunk]
            values = None if value_z is None else value_z[chunk]
            results.extend(self.to_circuits(self.decode_latents(z[chunk], rows, values, draw)))
        return results

    # --- public sampling API ----------------------------------------------------------------

    def check_specs(self, specs: Sequence[Sequence[int]]) -> torch.Tensor:
        n_axes = len(self.spec_sizes)
        for s in specs:
            if len(s) != n_axes or any(not 0 <= int(k) < size for k, size in zip(s, self.spec_sizes)):
                raise CktLoopError(
                    f"spec class {tuple(s)!r} is not a class of preset {self.config.spec_preset!r} "
                    f"(axis sizes {self.spec_sizes})"
                )
        return torch.tensor([[int(k) for k in s] for s in specs], dtype=torch.long, device=self.device).reshape(
            len(specs), n_axes
        )

    @torch.no_grad()
    def generate(
        self, specs: Sequence[Sequence[int]], n_per_spec: int = 1, generator: torch.Generator | None = None
    ) -> list[Circuit | CircuitError]:
        """``n_per_spec`` circuits per spec class (spec-major order); diversity comes from sampling the spec latent."""
        if n_per_spec < 0:
            raise CktLoopError(f"n_per_spec must be >= 0, got {n_per_spec}")
        spec = self.check_specs(specs).repeat_interleave(n_per_spec, 0)
        if spec.shape[0] == 0:
            return []
        return self.decode(self.spec_latents(spec, generator), spec)

    @torch.no_grad()
    def spec_latents(self, spec: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One draw of the spec latent per row of ``spec`` (class indices, as ``check_specs`` returns)."""
        was_training = self.training
        self.eval()
        try:
            mu, lv = self.encode_spec(spec)
            noise = torch.randn(mu.shape, generator=generator, device="cpu" if generator is None else generator.device)
            return mu + noise.to(mu.device) * (0.5 * lv).exp()
        finally:
            self.train(was_training)

    @torch.no_grad()
    def encode_mean(self, circuits: Sequence[Circuit]) -> torch.Tensor:
        was_training = self.training
        self.eval()
        try:
            mus = []
            for start in range(0, len(circuits), max(1, self.config.sample_batch)):
                batch = circuit_tensors(circuits[start : start + self.config.sample_batch], self.config.grid)
                mus.append(self.encode_circuit({k: v.to(self.device) for k, v in batch.items()})[0])
            return torch.cat(mus) if mus else torch.zeros(0, self.config.latent_dim, device=self.device)
        finally:
            self.train(was_training)

    @torch.no_grad()
    def reconstruct(self, circuits: Sequence[Circuit]) -> list[Circuit | CircuitError]:
        """Encode each circuit to its mean latent and decode it greedily."""
        if not circuits:
            return []
        return self.decode(self.encode_mean(circuits))

    @torch.no_grad()
    def sample_prior(
        self, n: int, generator: torch.Generator | None = None, decodes: int = 1, temperature: float = 0.0
    ) -> list[Circuit | CircuitError]:
        """Decode ``n`` draws of N(0, I) rescaled by ``prior_mean``/``prior_std`` (the training means'
        statistics), each ``decodes`` times in a row (``n * decodes`` results; repeats differ only when
        ``temperature`` > 0 draws the choices)."""
        if decodes < 1:
            raise CktLoopError(f"decodes must be >= 1, got {decodes}")
        noise = torch.randn(
            (n, self.config.latent_dim), generator=generator, device="cpu" if generator is None else generator.device
        )
        z = self.prior_mean + noise.to(self.device) * self.prior_std
        return self.decode(z.repeat_interleave(decodes, 0), draw=Draw(temperature, generator))

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
* **Losses**: ``generator.losses`` (every term can be switched off in ``CktGenConfig``; ``kl_mode: prior``
  with only ``recon_ckt`` on is the paper's reconstruction-only VAE, its Table 5 model).
* **Sampling**: greedy, or drawn from the decoder's distributions at a ``temperature`` (the paper
  decodes each prior latent 10 times, which only a stochastic decoder makes sense of), grammar-constrained
  by default: ``generator.decoding``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from circuits.circuit import MAX_NODES, N_POSITIONS, Circuit
from circuits.encoding import PAD_POS, PAD_TYPE
from circuits.errors import CircuitError, CktLoopError
from circuits.grid import value_grid
from circuits.subgraphs import N_TYPES
from generator.config import CktGenConfig
from generator.data import circuit_tensors, denormalise_values, device_mask_table
from generator.decoding import GREEDY, Draw, decode_graphs, to_circuits
from generator.layers import Block, Gin, mlp, sinusoidal
from generator.losses import loss_terms

Graph = Mapping[str, torch.Tensor]  # padded graph arrays: types, pos, topo, adj (a batch holds more)


class CktGen(nn.Module):
    # buffers (``register_buffer`` below), declared for the type checker
    enc_pe: torch.Tensor
    dec_mask: torch.Tensor
    device_mask: torch.Tensor
    pair_mask: torch.Tensor
    prior_mean: torch.Tensor
    prior_std: torch.Tensor

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
        self, z: torch.Tensor, graph: Graph, start: int, stop: int, cond: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Input tokens at positions ``start..stop - 1`` of every stream (position 0 is the latent, position
        p the node p − 1), stream-major, with their indices into ``dec_pe``/``dec_mask``. ``cond`` (B, d),
        the class the decoder is asked for (``decoder_spec``), joins the first token."""
        L = MAX_NODES + 1
        types, pos, topo, adj = graph["types"], graph["pos"], graph["topo"], graph["adj"]
        first = max(start - 1, 0)
        parts: tuple[torch.Tensor, ...] = (
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
        self, z: torch.Tensor, graph: Graph, length: int = MAX_NODES + 1, cond: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """One causal pass over the first ``length`` tokens of each stream (latent + ``length`` − 1 nodes)
        of ``graph`` (``types``, ``pos``, ``topo``, ``adj`` as ``generator.data`` lays a batch out).

        Outputs at positions 0..7 predict nodes 0..7. Training uses this full pass; greedy decoding
        feeds one step at a time through ``decode_step``, which gives the same outputs.
        """
        x, idx = self._stream_tokens(z, graph, 0, length, cond)
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
        if self.config.dec_streams == 1:
            return x, x, x
        h_type, h_pos, h_topo = x.chunk(3, dim=1)
        return h_type, h_pos, h_topo

    def decode_step(
        self, z: torch.Tensor, graph: Graph, i: int, state: dict[str, Any], cond: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Outputs at position ``i`` (node i's logits, and the value input of node i − 1) from the tokens
        not yet seen, with keys and values of earlier positions cached in ``state`` (empty at first).
        Topology features of every position so far accumulate in ``state["topo"]``."""
        start = 0 if not state else i
        x, idx = self._stream_tokens(z, graph, start, i + 1, cond)
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

    def log_range(self) -> tuple[float, float]:
        g = value_grid(self.config.grid)
        return math.log(g.k_min), math.log(g.k_max)

    def to_value_space(self, values: torch.Tensor) -> torch.Tensor:
        """Normalised grid indices (``generator.data.normalise_values``) → the model's value space, in [0, 1]."""
        if self.config.value_space == "linear":
            return values
        g, (lo, hi) = value_grid(self.config.grid), self.log_range()
        k = denormalise_values(values, self.config.grid).clamp_min(g.k_min)
        return (k.log() - lo) / (hi - lo)

    def from_value_space(self, u: torch.Tensor) -> torch.Tensor:
        """The inverse of ``to_value_space``."""
        if self.config.value_space == "linear":
            return u
        lo, hi = self.log_range()
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
        out = self.decode_streams(z, batch, cond=cond)
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
            assert dec_s is not None and val_s is not None  # need_spec_decode implies has_spec
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
        out["losses"] = loss_terms(self, batch, out, dec_spec if need_spec_decode else None)
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

    # --- decoding (greedy or drawn) ----------------------------------------------------------

    @contextlib.contextmanager
    def _evaluating(self) -> Iterator[None]:
        """Eval mode for the block, the mode before restored; a model already in eval mode (as served)
        is left alone: switching walks every submodule, a few ms per call."""
        was_training = self.training
        if was_training:
            self.eval()
        try:
            yield
        finally:
            if was_training:
                self.train()

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
        with self._evaluating():
            cond = self.decoder_condition(None if spec is None else spec.to(self.device))
            value_z = z if value_z is None else value_z
            if value_z.shape != z.shape:
                raise CktLoopError(f"value_z {tuple(value_z.shape)} must match z {tuple(z.shape)}")
            return decode_graphs(self, z.to(self.device), cond, value_z.to(self.device), draw)

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
            results.extend(to_circuits(self.decode_latents(z[chunk], rows, values, draw), self.config.grid))
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
        with self._evaluating():
            mu, lv = self.encode_spec(spec)
            noise = torch.randn(mu.shape, generator=generator, device="cpu" if generator is None else generator.device)
            return mu + noise.to(mu.device) * (0.5 * lv).exp()

    @torch.no_grad()
    def encode_mean(self, circuits: Sequence[Circuit]) -> torch.Tensor:
        with self._evaluating():
            mus = []
            for start in range(0, len(circuits), max(1, self.config.sample_batch)):
                batch = circuit_tensors(circuits[start : start + self.config.sample_batch], self.config.grid)
                mus.append(self.encode_circuit({k: v.to(self.device) for k, v in batch.items()})[0])
            return torch.cat(mus) if mus else torch.zeros(0, self.config.latent_dim, device=self.device)

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

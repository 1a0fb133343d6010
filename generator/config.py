"""CktGen's configuration: every knob of the model, its loss and its sampling, checked when built."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from circuits.circuit import MAX_NODES
from circuits.config import ConfigModel
from circuits.errors import CktLoopError
from circuits.grid import value_grid
from circuits.specs import spec_classes


class CktGenConfig(ConfigModel):
    """Every knob of the model and its loss. Defaults are the paper's (reference §4.2)."""

    spec_preset: str = "ocb"
    grid: str = "ocb"
    # circuit encoder
    d_model: int = Field(512, ge=1)
    d_embed: int = Field(128, ge=1)  # per-part node embedding (type, position, connectivity)
    gin_hidden: int = Field(256, ge=1)
    gin_dropout: float = Field(0.2, ge=0.0, lt=1.0)
    enc_layers: int = Field(4, ge=1)
    enc_heads: int = Field(8, ge=1)
    enc_ff: int = Field(512, ge=1)
    enc_dropout: float = Field(0.1, ge=0.0, lt=1.0)
    pe_dropout: float = Field(0.2, ge=0.0, lt=1.0)
    value_hidden: int = Field(128, ge=1)
    value_code: int = Field(8, ge=1)
    latent_dim: int = Field(64, ge=1)
    # "global": the paper's latent, read off two distribution tokens and fed as the decoder's first
    # token. "nodes": one slot of latent_dim / 8 dimensions per node index, read off that node's
    # encoder token (and its values) and added to the decoder token that predicts the node, so
    # position i sees slots 0..i only and node i's values come from its own slot: a compositional
    # code, where an unseen topology is a new combination of slots rather than a point to memorise.
    latent_layout: Literal["global", "nodes"] = "global"
    # beyond the paper: the decoder also sees the requested class (added to its first token; replaced by a
    # learned "no class" token with probability spec_dropout in training, and when reconstructing), and
    # decodes latents with Gaussian noise of latent_noise × the batch's per-dimension std of the means,
    # so it learns to pull a perturbed latent back into the requested class
    decoder_spec: bool = False
    spec_dropout: float = Field(0.1, ge=0.0, le=1.0)
    latent_noise: float = Field(0.0, ge=0.0)
    # the value head reads the latent without latent_noise, as bank sampling's clean values do
    # (``Sampling("bank", bank_values="clean")``); false: the noisy one, as the structure heads
    clean_value_latent: bool = False
    # spec encoder
    spec_embed: int = Field(128, ge=1)
    spec_hidden: int = Field(128, ge=1)
    # decoder
    dec_layers: int = Field(4, ge=1)
    dec_heads: int = Field(8, ge=1)
    dec_dropout: float = Field(0.3, ge=0.0, lt=1.0)
    dec_mlp_ratio: int = Field(4, ge=1)
    dec_streams: Literal[1, 3] = 3  # 3: the paper's type/position/topology streams; 1: one summed stream (3x cheaper)
    head_hidden: int = Field(128, ge=1)
    topo_dim: int = Field(128, ge=1)
    edge_hidden: int = Field(128, ge=1)
    value_head_hidden: int = Field(128, ge=1)
    gde_hidden: int = Field(32, ge=1)
    # loss switches
    recon_ckt: bool = True
    recon_spec: bool = True
    kl: bool = True
    align: bool = True
    nce: bool = True
    gde: bool = True
    # "paired": CktGen's four KL terms; "prior": KL(circuit ‖ N(0, I)) only (the recon VAE)
    kl_mode: Literal["paired", "prior"] = "paired"
    # loss weights and rates
    w_recon: float = Field(1.0, ge=0.0)
    w_kl: float = Field(1e-5, ge=0.0)
    w_align: float = Field(1.0, ge=0.0)
    w_nce: float = Field(1.0, ge=0.0)
    w_gde: float = Field(1.0, ge=0.0)
    # "linear": device values regressed as grid indices (the paper); "log": as ln of the grid index, so
    # an error costs by its ratio (a circuit's gain and bandwidth move with value ratios, not steps)
    value_space: Literal["linear", "log"] = "linear"
    type_rate: float = Field(0.5, ge=0.0)
    pos_rate: float = Field(0.05, ge=0.0)
    value_rate: float = Field(0.01, ge=0.0)
    value_divisor: float = Field(300.0, gt=0.0)
    nce_temperature: float = Field(0.1, gt=0.0)
    # sampling
    grammar: bool = True  # constrained decoding (generator/grammar.py); False decodes as the paper does
    edge_threshold: float = Field(0.5, gt=0.0, lt=1.0)
    sample_batch: int = Field(256, ge=1)

    @model_validator(mode="after")
    def _consistent(self) -> CktGenConfig:
        try:
            spec_classes(self.spec_preset)
            value_grid(self.grid)
        except CktLoopError as exc:
            raise ValueError(str(exc)) from None
        for name, heads in (("enc_heads", self.enc_heads), ("dec_heads", self.dec_heads)):
            if self.d_model % heads:
                raise ValueError(f"{name}={heads} must divide d_model={self.d_model}")
        if self.latent_layout == "nodes" and self.latent_dim % MAX_NODES:
            raise ValueError(f"latent_dim={self.latent_dim} must be a multiple of {MAX_NODES} (latent_layout 'nodes')")
        if self.decoder_spec and self.kl_mode != "paired":
            raise ValueError("decoder_spec needs a spec-conditioned model (kl_mode 'paired')")
        return self

    @property
    def spec_sizes(self) -> tuple[int, ...]:
        return spec_classes(self.spec_preset).sizes

    @property
    def conditional(self) -> bool:
        """Whether the spec latent is trained (the paired KL terms); the recon-only VAE's is not."""
        return self.kl_mode == "paired"

"""CktGen's configuration: every knob of the model, its loss and its sampling, checked when built."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from circuits.circuit import MAX_NODES
from circuits.errors import CktLoopError
from circuits.grid import value_grid
from circuits.specs import spec_classes


class ConfigError(CktLoopError, ValueError):
    """A bad config value; a ValueError too, so ``circuits.config`` prefixes the YAML file's name."""


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

"""The DIGIN surrogate's configuration: every architectural knob and loss weight (``surrogate.model``
says what each does beyond the paper), checked when built."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from circuits.config import ConfigModel

VALUE_FEATURES = {"linear": 3, "log": 3, "both": 6}  # feature width per node for each choice


class SurrogateConfig(ConfigModel):
    """Every architectural knob and loss weight; defaults are the paper's (reference §4.3)."""

    type_dim: int = Field(256, ge=1)  # node-type embedding width
    pos_dim: int = Field(256, ge=1)  # position (path) embedding width
    hidden: int = Field(512, ge=1)  # node-state width (GIN)
    gin_eps: float = 0.0  # ε of the GIN update
    train_eps: bool = False  # learn ε
    dropout: float = Field(0.5, ge=0.0, lt=1.0)  # inside the GIN MLP
    readout_hidden: int = Field(2048, ge=1)  # readout MLP: (8·hidden) → readout_hidden → graph_dim
    graph_dim: int = Field(512, ge=1)
    size_hidden: int = Field(256, ge=1)  # size code MLP: 24 → size_hidden → size_dim
    size_dim: int = Field(8, ge=1)
    node_values: bool = False  # beyond the paper: each node's (r, c, gm) added to its token
    # how values enter tokens and size code: k/k_max, log(k)/log(k_max) of the value grid, or both
    value_features: Literal["linear", "log", "both"] = "linear"
    embed_dim: int = Field(256, ge=1)  # circuit (and spec) embedding width
    spec_emb_dim: int = Field(256, ge=1)  # per-axis spec embedding table width
    head_hidden: int = Field(32, ge=1)  # hidden width of the class / FoM / spec heads
    temperature: float = Field(0.1, gt=0.0)  # InfoNCE temperature
    # "sum" (paper) or "mean" for the cross-entropies and the alignment loss
    class_reduction: Literal["sum", "mean"] = "sum"
    w_align: float = 0.01
    w_nce: float = 1.0
    w_class: float = 1.0
    w_fom: float = 1.0
    w_reg: float = 1.0  # beyond the paper: Smooth-L1 on the three z-scored specs
    pm_circular: bool = False  # regress a wrapped phase margin as (cos, sin) instead of PM/90
    # "heads" (paper) or "regression": classes from the regressed specs
    class_source: Literal["heads", "regression"] = "heads"
    # "subgraphs" (paper: the subgraph DAG) or "nets" (nets joined by elements)
    encoder: Literal["subgraphs", "nets"] = "subgraphs"
    rounds: int = Field(6, ge=1)  # message-passing rounds of the nets encoder
    reg_beta: float = Field(1.0, gt=0.0)  # Smooth-L1 beta of the spec regression
    align_detached: bool = False  # contrastive, alignment and class terms train an MLP on the detached encoder

    @property
    def n_reg(self) -> int:
        """Regressor outputs: z-scored gain and log10 UGBW, then PM as one z-score or as (cos, sin)."""
        return 4 if self.pm_circular else 3

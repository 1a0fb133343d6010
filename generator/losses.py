"""CktGen's loss terms (reference §4.2), all summed over the batch as in the paper.

Reconstruction from the circuit latent and from the spec latent (type CE·type_rate + position
CE·pos_rate + edge BCE + value MSE ·value_rate/value_divisor, on present devices only), four KL terms
(or one against N(0, I) for the recon-only VAE), Smooth-L1 latent alignment, filtered InfoNCE and
per-axis classifier guidance on the circuit latent, weighted into ``total``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import torch
import torch.nn.functional as F

from circuits.errors import CktLoopError
from circuits.grid import value_grid
from generator.config import CktGenConfig
from generator.data import same_class_filter

if TYPE_CHECKING:
    from generator.model import CktGen

LOSS_TERMS = ("recon_ckt", "recon_spec", "kl", "align", "nce", "gde")


def kl_diag(mu1: torch.Tensor, lv1: torch.Tensor, mu2: torch.Tensor, lv2: torch.Tensor) -> torch.Tensor:
    """Σ KL(N(mu1, e^lv1) ‖ N(mu2, e^lv2)) over the batch and dimensions."""
    return 0.5 * (lv2 - lv1 + (lv1.exp() + (mu1 - mu2) ** 2) / lv2.exp() - 1.0).sum()


def kl_std(mu: torch.Tensor, lv: torch.Tensor) -> torch.Tensor:
    return 0.5 * (lv.exp() + mu**2 - 1.0 - lv).sum()


def recon_parts(model: CktGen, out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The reconstruction's parts (type CE, position CE, edge BCE, value squared error) of decoder outputs."""
    mask = batch["mask"]
    type_ce = F.cross_entropy(out["type_logits"][mask], batch["types"][mask], reduction="sum")
    pos_ce = F.cross_entropy(out["pos_logits"][mask], batch["pos"][mask], reduction="sum")
    pairs = model.pair_mask[None] & mask[:, None, :]
    edge_bce = F.binary_cross_entropy_with_logits(out["edge_logits"][pairs], batch["adj"][pairs], reduction="sum")
    g = value_grid(model.config.grid)
    lo, hi = model.log_range()
    # squared error in grid steps ("linear") or in ln of the value ratio ("log")
    span = float(g.k_max - g.k_min) if model.config.value_space == "linear" else hi - lo
    present = batch["value_mask"] * mask[..., None]
    value_se = (((out["values"] - model.to_value_space(batch["values"])) * span) ** 2 * present).sum()
    return {"type_ce": type_ce, "pos_ce": pos_ce, "edge_bce": edge_bce, "value_se": value_se}


def recon_total(c: CktGenConfig, parts: dict[str, torch.Tensor]) -> torch.Tensor:
    return (
        c.type_rate * parts["type_ce"]
        + c.pos_rate * parts["pos_ce"]
        + parts["edge_bce"]
        + c.value_rate * parts["value_se"] / c.value_divisor
    )


def loss_terms(
    model: CktGen,
    batch: dict[str, torch.Tensor],
    out: dict[str, Any],
    dec_spec: dict[str, torch.Tensor] | None,
) -> dict[str, torch.Tensor]:
    """Every switched-on term, their reconstruction parts (detached) and the weighted ``total``.

    ``out`` is the forward pass's (latents and the circuit-latent decode); ``dec_spec`` the decode from
    the spec latent (needed with ``recon_spec``).
    """
    c = model.config
    has_spec = "spec" in batch
    losses: dict[str, torch.Tensor] = {}
    if c.recon_ckt:
        parts = recon_parts(model, out, batch)
        losses.update({f"ckt_{k}": v.detach() for k, v in parts.items()})
        losses["recon_ckt"] = recon_total(c, parts)
    if c.recon_spec:
        assert dec_spec is not None
        parts = recon_parts(model, dec_spec, batch)
        losses.update({f"spec_{k}": v.detach() for k, v in parts.items()})
        losses["recon_spec"] = recon_total(c, parts)
    if not has_spec and ((c.kl and c.kl_mode == "paired") or c.align or c.nce):
        raise CktLoopError("paired kl, align and nce losses need 'spec' in the batch")
    mu_c, lv_c, z_c = out["mu_ckt"], out["logvar_ckt"], out["z_ckt"]
    if c.kl and c.kl_mode == "prior":
        losses["kl"] = kl_std(mu_c, lv_c)
    elif c.kl:
        mu_s, lv_s = out["mu_spec"], out["logvar_spec"]
        losses["kl"] = (
            kl_diag(mu_s, lv_s, mu_c, lv_c) + kl_diag(mu_c, lv_c, mu_s, lv_s) + kl_std(mu_c, lv_c) + kl_std(mu_s, lv_s)
        )
    if c.align:
        losses["align"] = F.smooth_l1_loss(out["z_spec"], z_c, reduction="sum")
    if c.nce:
        logits = F.normalize(out["z_spec"], dim=-1) @ F.normalize(z_c, dim=-1).T / c.nce_temperature
        logits = logits + same_class_filter(batch["spec"])
        target = torch.arange(logits.shape[0], device=logits.device)
        losses["nce"] = 0.5 * (
            F.cross_entropy(logits, target, reduction="sum") + F.cross_entropy(logits.T, target, reduction="sum")
        )
    if c.gde:
        if not has_spec:
            raise CktLoopError("gde loss needs 'spec' in the batch")
        heads = enumerate(model.gde_heads)
        gde = sum(F.cross_entropy(head(z_c), batch["spec"][:, k], reduction="sum") for k, head in heads)
        losses["gde"] = cast(torch.Tensor, gde)
    weights = {
        "recon_ckt": c.w_recon,
        "recon_spec": c.w_recon,
        "kl": c.w_kl,
        "align": c.w_align,
        "nce": c.w_nce,
        "gde": c.w_gde,
    }
    losses["total"] = sum(
        (weights[k] * losses[k] for k in LOSS_TERMS if k in losses), torch.zeros((), device=model.device)
    )
    return losses

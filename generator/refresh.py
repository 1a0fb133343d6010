"""Refreshing a generator's latent bank with verified circuits that met their targets (no retraining).

The bank (``generator.latent_bank``) holds the mean latents of the training circuits by class; bank
sampling decodes around them. A campaign's met circuits are what designers asked for and got: encoded by
the same (unchanged) encoder and added under their measured class, they make the next campaign sample
around them. Which circuits: the verified candidates (``surrogate.training.from_store``, bound in
``rows.json``) that met a target they were proposed for (``generator.store_rows.met_rows``), each once,
less those already added to the parent's bank; a stable hash of each key holds a share out
(``holdout_fraction``) to judge the result on. The new checkpoint is the parent's with the larger bank,
the added circuits (``bank_added``, so a later fine-tune re-encodes them), their classes among the
training classes (a campaign's arms come from these) and a new version; registered (kind ``generator``)
only once written, with its parent, the fingerprint of the added circuits, and ``heldout_metrics`` of
it and its parent on the held-out met circuits.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from pydantic import Field

from circuits import Circuit, CktLoopError
from circuits.config import ConfigModel
from generator.checkpoint import MODEL_FAMILY, load_checkpoint, save_checkpoint
from generator.finetune import KIND, RESULT, compare
from generator.latent_bank import LatentBank
from generator.paths import DESIGN_CHECKPOINT
from generator.predict import Generator
from generator.store_rows import ADDED, classified, dataset_splits, encode_bank, met_rows
from surrogate.paths import DESIGN_CHECKPOINT as JUDGE
from surrogate.training import from_store


class RefreshConfig(ConfigModel):
    """Which generator to refresh and how the result is judged."""

    base: str = str(DESIGN_CHECKPOINT)
    dataset: str = "ocb101-seed0"  # its training split: what "new topology" is measured against
    holdout_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    seed: int = Field(0, ge=0)
    judge: str = str(JUDGE)
    eval_rounds: int = Field(10, ge=1)


def refresh(
    store: Any,
    out_dir: str | Path,
    campaigns: Sequence[str] = (),
    since: str | None = None,
    config: RefreshConfig | None = None,
    register: bool = True,
) -> dict[str, Any]:
    """Add the met circuits of ``campaigns`` to ``config.base``'s bank (see the module doc); returns the new
    version, its checkpoint, the counts and the metrics it was registered with."""
    config = config or RefreshConfig()
    out = Path(out_dir)
    base = Path(config.base).resolve()
    parent = Generator.load(base)
    if parent.bank is None:
        raise CktLoopError(f"{base}: no latent bank to refresh")
    state = load_checkpoint(base)
    spec = from_store.rows_spec(store, out, KIND, campaigns, since, str(base))
    had = {item["key"] for item in state.get(ADDED, [])}
    met = classified(met_rows(store, from_store.verified(store, spec), spec), parent.spec_classes)
    fresh = [r for r in met if r["id"] not in had]
    if not fresh:
        raise CktLoopError(
            "no verified circuits that met a target and are not in the bank yet (run a campaign first, or check "
            "--campaign/--since)"
        )
    held = [r for r in fresh if from_store.held_out(r["id"], config.holdout_fraction)]
    add = [r for r in fresh if not from_store.held_out(r["id"], config.holdout_fraction)]
    if not add:
        raise CktLoopError(f"all {len(fresh)} met circuits fell in the held-out slice; nothing to add")
    from_store.keep_rows_spec(out, spec)
    fingerprint = from_store.fingerprint(r["id"] for r in add)
    version = from_store.version_of(f"{MODEL_FAMILY}-bank", parent.version, fingerprint, config.to_dict())
    classes = [tuple(r["spec_class"]) for r in add]
    new = encode_bank(parent, [Circuit.from_dict(r["circuit"]) for r in add], classes)
    assert parent.bank is not None
    bank = LatentBank(torch.cat([parent.bank.latents, new.latents]), parent.bank.classes + new.classes)
    known = {tuple(int(v) for v in c) for c in parent.train_classes}
    payload = {
        **{k: v for k, v in state.items() if k != "metrics"},  # the parent's evaluation is not this version's
        "version": version,
        "latent_bank": bank.to_state(),
        "train_classes": [list(c) for c in sorted(known | set(classes))],
        ADDED: state.get(ADDED, [])
        + [{"key": r["id"], "circuit": r["circuit"], "class": r["spec_class"]} for r in add],
        "parent_version": parent.version,
        "data_fingerprint": fingerprint,
    }
    result = out / RESULT
    save_checkpoint(result, payload)

    _, splits = dataset_splits(store, config.dataset, parent.spec_classes)
    metrics = compare(Generator.load(result), parent, held, splits.train_circuits, config)
    added_classes = set(classes) - {tuple(c) for c in parent.bank.classes}
    metrics["bank"] = {"size": len(bank), "added": len(add), "new_classes": len(added_classes)}
    rows = {**spec, "n_met": len(met), "n_added": len(add), "n_heldout": len(held)}
    return from_store.conclude(
        store,
        KIND,
        version,
        result,
        parent.version,
        fingerprint,
        {"refresh": config.to_dict()},
        rows,
        metrics,
        register,
    )

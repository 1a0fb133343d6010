"""The generator's view of the store's verified rows, shared by its fine-tune and the bank refresh.

* ``asked_classes``: the spec classes the campaigns' targets ask for, picked as a campaign picks its
  arms (``circuits.targets.valid_classes``: the classes wholly inside a target, else those overlapping it)
  but among every class of the preset, not only the generator's training classes, so a fine-tune can
  teach it a class it never saw;
* ``met_rows``: the verified circuits that met a target they were proposed for (measured ok inside every
  bound of that target);
* ``heldout_metrics``: the generator's own figures on a held-out slice of verified rows: for each class of
  the slice, circuits generated as campaigns generate them (bank sampling), their validity (and the
  paper's free decoder's), the share the judge surrogate puts in the class asked for (class
  conditioning), the share of new topologies (not in the dataset's training split), and the slice's
  reconstruction loss per circuit (teacher forcing, latent means);
* ``bank_circuits`` / ``encode_bank``: the circuits a bank is made of (the dataset's training split,
  plus circuits a refresh added) and their mean latents under a model.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import torch

from circuits import Circuit, CktLoopError
from circuits.specs import SpecClass, SpecClasses
from circuits.targets import Target, valid_classes
from generator.data import GeneratorData, Splits, build_splits, rows_to_data
from generator.evaluate import cond_gen
from generator.latent_bank import LatentBank
from generator.predict import Generator
from surrogate.predict import Surrogate

ADDED = "bank_added"  # checkpoint key: the circuits a refresh added to the bank ({key, circuit, class})


def _target(info: Any) -> Target:
    bounds = {f: {k: v for k, v in b.items() if v is not None} for f, b in info.bounds.items()}
    return Target.from_mapping(info.name, bounds)


def campaign_names(store: Any, campaigns: Sequence[str]) -> list[str]:
    """``campaigns``, or every campaign in the store when none is named."""
    return sorted(set(campaigns)) or [c.name for c in store.campaigns()]


def asked_classes(store: Any, campaigns: Sequence[str], spec: SpecClasses) -> set[SpecClass]:
    """The classes the campaigns' targets ask for (see the module doc)."""
    every = list(itertools.product(*(range(k) for k in spec.sizes)))
    asked: set[SpecClass] = set()
    for name in campaign_names(store, campaigns):
        for info in store.campaign_targets(name):
            asked.update(tuple(c) for c in valid_classes(_target(info), spec, every)[0])
    return asked


def met_rows(store: Any, verified: Sequence[dict[str, Any]], spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of ``verified`` (bound by ``spec``, ``surrogate.training.from_store``) whose circuit met a
    target of the campaigns it was proposed for, as a candidate in ``spec``'s id range; in ``verified``'s
    order, each with ``met_target`` (the first target it met)."""
    by_key = {r["id"]: r for r in verified}
    met: dict[str, str] = {}
    low, high = spec["after_candidate"], spec["upto_candidate"]
    for name in campaign_names(store, spec["campaigns"]):
        for info in store.campaign_targets(name):
            target = _target(info)
            for cand in store.candidates(info.id):
                row = by_key.get(cand.key)
                if row is not None and low < cand.id <= high and cand.key not in met and target.met_by(row):
                    met[cand.key] = f"{name}/{info.name}"
    return [{**r, "met_target": met[r["id"]]} for r in verified if r["id"] in met]


def classified(rows: Sequence[dict[str, Any]], spec: SpecClasses) -> list[dict[str, Any]]:
    """Rows measured ok with finite specs (a class), each with ``spec_class``."""
    out = []
    for r in rows:
        cls = spec.classify(r)
        if cls is not None:
            out.append({**r, "spec_class": list(cls)})
    return out


def dataset_splits(store: Any, dataset: str, spec: SpecClasses) -> tuple[list[dict[str, Any]], Splits]:
    """The dataset's rows and its splits as the generator trains on them (``generator.data.build_splits``)."""
    rows = [e.to_dict() for e in store.dataset_rows(dataset)]
    if not rows:
        raise CktLoopError(f"dataset {dataset!r} has no rows in the store")
    return rows, build_splits(rows, spec)


def bank_circuits(state: dict[str, Any], splits: Splits) -> tuple[list[Circuit], list[SpecClass]]:
    """The circuits a bank of this checkpoint is made of: the training split, then those a refresh added."""
    circuits, classes = list(splits.train_circuits), list(splits.train.classes)
    for item in state.get(ADDED, []):
        circuits.append(Circuit.from_dict(item["circuit"]))
        classes.append(tuple(int(v) for v in item["class"]))
    return circuits, classes


def encode_bank(generator: Generator, circuits: Sequence[Circuit], classes: Sequence[SpecClass]) -> LatentBank:
    """Mean latents of ``circuits`` under the generator's encoder, with their classes."""
    latents = generator.encode(list(circuits)).detach().cpu().float() if circuits else torch.zeros(0)
    return LatentBank(latents.reshape(len(circuits), generator.model.config.latent_dim), tuple(classes))


def heldout_metrics(
    generator: Generator,
    judge: Surrogate,
    held: Sequence[dict[str, Any]],
    train_circuits: Sequence[Circuit],
    rounds: int,
    seed: int,
) -> dict[str, Any]:
    """The generator's figures on the held-out rows ``held`` (see the module doc); ``{"n": 0}`` when empty."""
    if not held:
        return {"n": 0}
    data, circuits = rows_to_data(held, generator.spec_classes)
    splits = Splits(data, data, generator.spec_classes, {}, list(train_circuits), circuits)
    gen = cond_gen(generator, judge, splits, rounds=rounds, seed=seed, sampling="bank")
    keep = (
        "n_specs",
        "n_generated",
        "validity",
        "validity_free_decoder",
        "spec_acc",
        "spec_acc_per_axis",
        "unique_share",
        "novel_circuits",
        "novel_topologies",
    )
    return {"n": len(held), **{k: gen[k] for k in keep}, "recon_loss": recon_loss(generator, data, seed)}


def recon_loss(generator: Generator, data: GeneratorData, seed: int) -> float:
    """Teacher-forced loss per circuit on ``data`` in eval mode (latent means), the global RNG untouched."""
    model = generator.model
    was = model.training
    model.eval()
    total, n = 0.0, 0
    with torch.random.fork_rng(), torch.no_grad():
        torch.manual_seed(seed)
        for batch in data.batches(256):
            batch = {k: v.to(model.device) for k, v in batch.items()}
            total += float(model(batch)["losses"]["total"])
            n += len(batch["types"])
    model.train(was)
    return total / max(1, n)

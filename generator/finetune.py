"""Fine-tuning the generator from the store's verified circuits (closed-loop refinement, issue 19).

The training rows are the verified campaign candidates (``surrogate.training.from_store``: the campaigns
asked for, all by default, after the rows a registered generator version read with ``since``, bound in
``rows.json`` so a killed run resumes on the same rows) whose measured class is one the campaigns' targets
ask for (``generator.store_rows.asked_classes``), each labelled with that measured class: CktGen learns
which circuits reach the classes designers ask for. A stable hash of each circuit's key holds a share out
(``holdout_fraction``); replay rows from the dataset's training split (``replay_ratio`` per verified
training row) keep the rest of the family in view, and with ``since`` the earlier verified rows of the same
classes are replayed too (``earlier_ratio``).

The parent (default: the shipped design generator) trains on the shared loop (``surrogate.training``)
for ``epochs`` at ``lr`` with a cosine decay, resumable from ``out_dir/last.pt`` with a progress bar.
Its latent bank is then re-encoded by the new encoder from the same circuits as the parent's (the
dataset's training split and any circuits a refresh added), so the new version differs from its parent
in its weights only; ``generator.refresh`` adds met circuits to a bank. The result, ``generator.pt``,
is registered (kind ``generator``) only once written, with its parent version, the fingerprint of its
training rows and ``heldout_metrics`` on the held-out slice beside the parent's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from pydantic import Field

from circuits import CktLoopError
from circuits.config import ConfigModel
from generator.checkpoint import FORMAT, MODEL_FAMILY, load_checkpoint, model_from_checkpoint, save_checkpoint
from generator.data import rows_to_data
from generator.paths import DESIGN_CHECKPOINT
from generator.predict import Generator
from generator.store_rows import (
    asked_classes,
    bank_circuits,
    classified,
    dataset_splits,
    encode_bank,
    heldout_metrics,
)
from generator.train import CHECKPOINT, PANELS, TrainConfig, _run_epoch, set_prior_statistics
from surrogate.paths import DESIGN_CHECKPOINT as JUDGE
from surrogate.predict import Surrogate
from surrogate.training import from_store
from surrogate.training.checkpoints import TRAINING_STATE
from surrogate.training.device import choose_device, set_threads
from surrogate.training.loop import Run, seed_everything
from surrogate.training.settings import renamed

KIND = "generator"
RESULT = "generator.pt"


class GeneratorFinetuneConfig(ConfigModel):
    """What to fine-tune from, on which rows, how long, and how the result is judged."""

    base: str = str(DESIGN_CHECKPOINT)  # parent checkpoint (default: the shipped design generator)
    dataset: str = "ocb101-seed0"  # replay rows (its training split) and the bank's circuits
    replay_ratio: float = Field(1.0, ge=0.0)  # dataset rows per verified training row
    earlier_ratio: float = Field(1.0, ge=0.0)  # with ``since``: earlier verified rows per new training row
    holdout_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    epochs: int = Field(3, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(3e-4, gt=0.0)
    seed: int = Field(0, ge=0)
    threads: int = Field(1, ge=0)
    judge: str = str(JUDGE)  # the surrogate that judges class conditioning in the held-out metrics
    eval_rounds: int = Field(10, ge=1)  # circuits generated per held-out class for the metrics
    progress: bool = True


def gather_rows(
    store: Any,
    spec: dict[str, Any],
    config: GeneratorFinetuneConfig,
    generator: Generator,
    pool: Callable[[], list[dict[str, Any]]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(verified training rows, held-out rows, replay rows: earlier verified rows, then rows of ``pool()``,
    the dataset's training rows, read only once there are verified rows)."""
    classes = generator.spec_classes
    asked = asked_classes(store, spec["campaigns"], classes)
    rows = [r for r in classified(from_store.verified(store, spec), classes) if tuple(r["spec_class"]) in asked]
    if not rows:
        raise CktLoopError(
            "no verified candidates of the classes the campaigns asked for (run a campaign first, or check "
            "--campaign/--since)"
        )
    fraction = config.holdout_fraction
    held = [r for r in rows if from_store.held_out(r["id"], fraction)]
    train = [r for r in rows if not from_store.held_out(r["id"], fraction)]
    if not train:
        raise CktLoopError(f"all {len(rows)} verified rows fell in the held-out slice; nothing to train on")
    keys = {r["id"] for r in rows}
    earlier: list[dict[str, Any]] = []
    if spec["after_candidate"] and config.earlier_ratio:
        before = classified(from_store.verified(store, spec, after=False), classes)
        earlier = [
            r
            for r in before
            if r["candidate_id"] <= spec["after_candidate"]
            and r["id"] not in keys
            and tuple(r["spec_class"]) in asked
            and not from_store.held_out(r["id"], fraction)
        ]
    keys |= {r["id"] for r in earlier}
    fresh = [r for r in pool() if r["id"] not in keys]
    replay = from_store.sample(fresh, config.replay_ratio * len(train), config.seed)
    return train, held, from_store.sample(earlier, config.earlier_ratio * len(train), config.seed + 1) + replay


def _train_config(state: dict[str, Any], config: GeneratorFinetuneConfig) -> TrainConfig:
    raw = {k: v for k, v in renamed(dict(state.get("train_config") or {})).items() if k in TrainConfig.model_fields}
    raw.update(
        model=state["model_config"],
        epochs=config.epochs,
        batch_size=config.batch_size,
        lr=config.lr,
        lr_schedule="cosine",
        lr_drops=(),
        seed=config.seed,
        checkpoint_every=1,
        threads=config.threads,
        device="cpu",
        progress=config.progress,
        max_train_rows=None,
        sample_eval=0,
    )
    return TrainConfig(**raw)


def finetune(
    store: Any,
    out_dir: str | Path,
    campaigns: Sequence[str] = (),
    since: str | None = None,
    config: GeneratorFinetuneConfig | None = None,
    register: bool = True,
) -> dict[str, Any]:
    """Fine-tune ``config.base`` on the store's verified rows (see the module doc); returns the new version,
    its checkpoint, the row counts and the metrics it was registered with."""
    config = config or GeneratorFinetuneConfig()
    out = Path(out_dir)
    set_threads(config.threads)
    base = Path(config.base).resolve()
    parent = Generator.load(base)
    if not parent.model.config.conditional:
        raise CktLoopError(f"{base}: a reconstruction-only model cannot be fine-tuned on spec classes")
    parent_state = load_checkpoint(base)
    spec = from_store.rows_spec(store, out, KIND, campaigns, since, str(base))
    splits: list[Any] = []

    def pool() -> list[dict[str, Any]]:
        dataset, read = dataset_splits(store, config.dataset, parent.spec_classes)
        splits.append(read)
        return [r for r in classified(dataset, parent.spec_classes) if r.get("split") == "train"]

    train, held, replay = gather_rows(store, spec, config, parent, pool)
    from_store.keep_rows_spec(out, spec)
    data, _ = rows_to_data(from_store.as_train(train + replay), parent.spec_classes)
    fingerprint = from_store.fingerprint(data.ids)
    version = from_store.version_of(
        f"{MODEL_FAMILY}-ft", parent.version, fingerprint, config.to_dict(), f"-e{config.epochs}"
    )
    classes = sorted({tuple(c) for c in parent.train_classes} | set(data.classes))
    train_config = _train_config(parent_state, config)

    def extras(epoch: int) -> dict[str, Any]:
        return {
            "version": version,
            "spec_classes": parent.spec_classes.to_dict(),
            "train_classes": [list(c) for c in classes],
        }

    device = choose_device(train_config.device)
    seed_everything(train_config.seed)
    model = model_from_checkpoint(base, parent_state, device)
    data_id = {"parent": parent.version, "fingerprint": fingerprint}
    run = Run(train_config, FORMAT, out / CHECKPOINT, model, data_id, extras)
    run.start(True, device, out)

    def train_epoch(shuffle: torch.Generator, desc: str) -> dict[str, float]:
        return _run_epoch(model, data, train_config.batch_size, device, run, shuffle, desc, config.progress)

    held_data = rows_to_data(held, parent.spec_classes)[0] if held else None

    def evaluate() -> dict[str, float]:
        if held_data is None:
            return {}
        return _run_epoch(model, held_data, 256, device, None, None, "held out", False)

    run.fit(train_epoch, evaluate, PANELS, lambda r: f"held-out {r['test'].get('total', 0):.3f}")

    state = load_checkpoint(run.checkpoint)
    child = Generator(model_from_checkpoint(run.checkpoint, state), version, parent.spec_classes)
    circuits, bank_classes = bank_circuits(parent_state, splits[0])
    bank = encode_bank(child, circuits, bank_classes)
    set_prior_statistics(child.model, bank.latents[: len(splits[0].train_circuits)].to(child.model.device))
    payload = {k: v for k, v in state.items() if k not in TRAINING_STATE}
    payload.update(
        model=child.model.state_dict(),
        latent_bank=bank.to_state(),
        parent_version=parent.version,
        data_fingerprint=fingerprint,
        finetune=config.to_dict(),
    )
    if "bank_added" in parent_state:
        payload["bank_added"] = parent_state["bank_added"]
    result = out / RESULT
    save_checkpoint(result, payload)

    metrics = compare(Generator.load(result), parent, held, splits[0].train_circuits, config)
    rows = {**spec, "n_train": len(train), "n_heldout": len(held), "n_replay": len(replay)}
    return from_store.conclude(
        store,
        KIND,
        version,
        result,
        parent.version,
        fingerprint,
        {"finetune": config.to_dict()},
        rows,
        metrics,
        register,
    )


def compare(
    child: Generator, parent: Generator, held: Sequence[dict[str, Any]], train_circuits: Sequence[Any], config: Any
) -> dict[str, Any]:
    """``heldout_metrics`` of the new version and of its parent on the same held-out rows."""
    judge = Surrogate.load(config.judge, device="cpu")
    return {
        "heldout": heldout_metrics(child, judge, held, train_circuits, config.eval_rounds, config.seed),
        "parent_heldout": heldout_metrics(parent, judge, held, train_circuits, config.eval_rounds, config.seed),
    }

"""Training CktGen (reference §4.2) on the shared loop (``surrogate.training``).

``train(config_path, data_source, dataset_name, out_dir)`` writes into ``out_dir``:

* ``last.pt``: the latest checkpoint (every ``checkpoint_every`` epochs and at the end); with
  ``resume=True`` a run continues from it (raising ``epochs`` in the config extends a finished run);
* ``metrics.jsonl``: one line per epoch, every loss term per circuit for train and test, lr, seconds;
* ``metrics.png``: the loss curves.

At the end the training circuits are encoded once: their latents set the prior statistics (for
``sample_prior``) and, for a spec-conditioned model, become the checkpoint's latent bank
(``generator.latent_bank``). Resuming a finished run trains nothing and refreshes only these.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from pydantic import Field
from tqdm import tqdm

from circuits.config import load_config
from circuits.errors import CircuitError, CktLoopError
from generator.checkpoint import FORMAT, load_checkpoint, model_from_checkpoint, model_version, save_checkpoint
from generator.config import CktGenConfig
from generator.data import GeneratorData, Splits, build_splits
from generator.latent_bank import LatentBank
from generator.model import CktGen
from storage.rows import load_rows
from surrogate.training.device import choose_device, set_threads
from surrogate.training.loop import Run, seed_everything
from surrogate.training.metrics import Panel
from surrogate.training.settings import TrainSettings

CHECKPOINT = "last.pt"
RECON_PARTS = (
    "train.ckt_type_ce",
    "train.ckt_pos_ce",
    "train.ckt_edge_bce",
    "train.spec_type_ce",
    "train.spec_edge_bce",
)
PANELS = (
    Panel("loss per circuit", ("train.*", "test.total"), exclude=("ckt_", "spec_")),
    Panel("reconstruction parts (train)", RECON_PARTS),
)


class TrainConfig(TrainSettings):
    """The shared knobs (``TrainSettings``), the model, and what only the generator's training reads."""

    resumable: ClassVar[frozenset[str]] = TrainSettings.resumable | {"sample_eval"}

    model: CktGenConfig = Field(default_factory=CktGenConfig)
    epochs: int = Field(600, ge=1)
    checkpoint_every: int = Field(100, ge=1)
    max_train_rows: int | None = Field(None, ge=1)  # first N training rows only (smoke runs)
    sample_eval: int = Field(256, ge=0)  # circuits generated at the end to report validity (0: skip)


@dataclass
class TrainResult:
    out_dir: Path
    checkpoint: Path
    epochs_done: int
    epochs_run: int  # in this call
    seconds_per_epoch: float | None
    last: dict[str, Any] | None
    validity: float | None  # fraction of ``sample_eval`` generated circuits that are valid
    version: str


def load_train_config(path: str | Path) -> TrainConfig:
    return load_config(path, TrainConfig)


def _first_rows(data: GeneratorData, n: int | None) -> GeneratorData:
    """The first ``n`` rows (``max_train_rows``), or all of them."""
    if n is None or n >= len(data):
        return data
    return GeneratorData(data.batch(slice(0, n)), data.ids[:n], data.classes[:n])


def _fingerprint(data: GeneratorData) -> dict[str, Any]:
    digest = hashlib.sha256("\n".join(data.ids).encode()).hexdigest()[:16]
    return {"n_train": len(data), "ids_sha256": digest}


def _to(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _run_epoch(
    model: CktGen,
    data: GeneratorData,
    batch_size: int,
    device: torch.device,
    run: Run | None,
    generator: torch.Generator | None,
    desc: str,
    progress: bool,
) -> dict[str, float]:
    """Loss terms per circuit over ``data``: a training epoch with ``run``'s optimiser, else an evaluation."""
    sums: dict[str, float] = defaultdict(float)
    model.train(run is not None)
    n_batches = (len(data) + batch_size - 1) // batch_size
    bar = tqdm(data.batches(batch_size, generator), total=n_batches, desc=desc, leave=False, disable=not progress)
    with torch.set_grad_enabled(run is not None):
        for batch in bar:
            batch = _to(batch, device)
            losses = model(batch)["losses"]
            if run is not None:
                run.step(losses["total"])
            for k, v in losses.items():
                sums[k] += float(v.detach())
            bar.set_postfix(loss=f"{float(losses['total'].detach()) / len(batch['types']):.3f}")
    return {k: v / max(1, len(data)) for k, v in sums.items()}  # per circuit


def latent_bank(model: CktGen, data: GeneratorData, device: torch.device, batch_size: int = 512) -> LatentBank:
    """The training circuits' mean latents with their classes (see ``generator.latent_bank``)."""
    model.eval()
    mus = []
    with torch.no_grad():
        for batch in data.batches(batch_size):
            mus.append(model.encode_circuit(_to(batch, device))[0].cpu())
    return LatentBank(torch.cat(mus), tuple(data.classes))


def bank_checkpoint(
    path: str | Path,
    data_source: str | Path | Splits,
    dataset_name: str | None = None,
    out: str | Path | None = None,
) -> LatentBank:
    """Store (or refresh) the latent bank of a generator checkpoint, training or shipped, in place or at ``out``.

    The bank must come from the rows the model was trained on: the training split of ``data_source``
    is checked against the checkpoint's data fingerprint. The prior statistics, which scale the bank's
    noise, are set from the same latents: a checkpoint written mid-training has none yet.
    """
    path = Path(path)
    state = load_checkpoint(path)
    model = model_from_checkpoint(path, state)
    if not model.config.conditional:
        raise CktLoopError(f"{path}: a reconstruction-only model has no trained spec latent to bank by")
    splits = (
        data_source
        if isinstance(data_source, Splits)
        else build_splits(load_rows(data_source, dataset_name), model.config.spec_preset)
    )
    raw = state.get("train_config")
    train_data = _first_rows(splits.train, raw.get("max_train_rows") if isinstance(raw, dict) else None)
    if state.get("data") != _fingerprint(train_data):
        raise CktLoopError(
            f"{path}: trained on different data ({state.get('data')}) than given now ({_fingerprint(train_data)})"
        )
    bank = latent_bank(model, train_data, model.device)
    set_prior_statistics(model, bank.latents.to(model.device))
    state["model"] = model.state_dict()
    state["latent_bank"] = bank.to_state()
    save_checkpoint(out or path, state)
    return bank


def set_prior_statistics(model: CktGen, latents: torch.Tensor) -> None:
    """``prior_mean``/``prior_std`` from the training circuits' mean latents (for ``sample_prior``)."""
    model.prior_mean.copy_(latents.mean(0))
    model.prior_std.copy_(latents.std(0).clamp_min(1e-6) if len(latents) > 1 else torch.ones_like(latents[0]))


def validity(results: list[Any]) -> float:
    return sum(not isinstance(r, CircuitError) for r in results) / max(1, len(results))


def train(
    config_path: str | Path,
    data_source: str | Path | Splits,
    dataset_name: str | None = None,
    out_dir: str | Path = "runs/generator",
    resume: bool = True,
) -> TrainResult:
    """Train (or continue training) a CktGen model; see the module docstring for what lands in ``out_dir``.

    ``data_source`` is a JSONL export path, a store URL (with ``dataset_name``), or prepared ``Splits``.
    """
    cfg = load_train_config(config_path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    set_threads(cfg.threads)
    device = choose_device(cfg.device)
    splits = (
        data_source
        if isinstance(data_source, Splits)
        else build_splits(load_rows(data_source, dataset_name), cfg.model.spec_preset)
    )
    if splits.spec.name != cfg.model.spec_preset:
        raise CktLoopError(f"data classes {splits.spec.name!r} differ from the config's {cfg.model.spec_preset!r}")
    train_data = _first_rows(splits.train, cfg.max_train_rows)
    train_classes = [list(c) for c in sorted(set(train_data.classes))]  # a campaign's arms come from these

    def extras(epoch: int) -> dict[str, Any]:
        return {
            "version": model_version(cfg.model.to_dict(), cfg.seed, epoch),
            "spec_classes": splits.spec.to_dict(),
            "train_classes": train_classes,
        }

    seed_everything(cfg.seed)
    model = CktGen(cfg.model).to(device)
    run = Run(cfg, FORMAT, out / CHECKPOINT, model, _fingerprint(train_data), extras)
    run.start(resume, device, config_path)
    test_batch = max(cfg.batch_size, 256)

    def train_epoch(shuffle: torch.Generator, desc: str) -> dict[str, float]:
        return _run_epoch(model, train_data, cfg.batch_size, device, run, shuffle, desc, cfg.progress)

    def evaluate() -> dict[str, float]:
        if not len(splits.test):
            return {}
        return _run_epoch(model, splits.test, test_batch, device, None, None, "test", False)

    def summary(record: dict[str, Any]) -> str:
        test = f"test {record['test']['total']:.3f} " if record["test"] else ""
        return f"{test}lr {record['lr']:.2e}"

    run.fit(train_epoch, evaluate, PANELS, summary)
    # Everything below leaves the global RNG alone, so a later resume continues the same stream.
    encoded = latent_bank(model, train_data, device)
    set_prior_statistics(model, encoded.latents)
    bank = encoded.to_state() if cfg.model.conditional else None  # the recon-only VAE has no spec to bank by
    run.save(**({"latent_bank": bank} if bank is not None else {}))
    valid = None
    if cfg.sample_eval > 0:
        classes = sorted(set(train_data.classes))
        gen = torch.Generator().manual_seed(cfg.seed)
        picks = torch.randint(len(classes), (cfg.sample_eval,), generator=gen).tolist()
        valid = validity(model.generate([classes[k] for k in picks], 1, generator=gen))
    return TrainResult(
        out_dir=out,
        checkpoint=run.checkpoint,
        epochs_done=run.epoch,
        epochs_run=len(run.seconds),
        seconds_per_epoch=sum(run.seconds) / len(run.seconds) if run.seconds else None,
        last=run.records[-1] if run.records else None,
        validity=valid,
        version=model_version(cfg.model.to_dict(), cfg.seed, run.epoch),
    )

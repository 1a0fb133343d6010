"""Training loop for CktGen: AdamW + ReduceLROnPlateau (reference §4.2), checkpoints and resume.

``train(config_path, data_source, dataset_name, out_dir)`` writes into ``out_dir``:

* ``last.pt``: the latest checkpoint (every ``checkpoint_every`` epochs and at the end); with
  ``resume=True`` a run continues from it (raising ``epochs`` in the config extends a finished run);
* ``metrics.jsonl``: one line per epoch, every loss term per circuit for train and test, lr, seconds;
* ``metrics.png``: the loss curves.

At the end the training circuits are encoded once: their latents set the prior statistics (for
``sample_prior``) and, for a spec-conditioned model, become the checkpoint's latent bank
(``generator.latent_bank``). Resuming a finished run trains nothing and refreshes only these.

Resuming reproduces an uninterrupted run exactly: shuffling uses a per-epoch seeded generator and the
global RNG states (dropout, latent sampling) travel in the checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from circuits.config import load_config
from circuits.errors import CircuitError, CktLoopError
from generator.checkpoint import (
    load_checkpoint,
    model_from_checkpoint,
    model_version,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from generator.config import CktGenConfig, ConfigError, check_field_types
from generator.data import GeneratorData, Splits, build_splits
from generator.latent_bank import LatentBank
from generator.model import CktGen
from storage.rows import load_rows

CHECKPOINT = "last.pt"
METRICS = "metrics.jsonl"
PLOT = "metrics.png"
# Keys that may change between an interrupted run and its resumption without changing the result
# (lr_drops only at epochs not yet trained: checked on resume).
RESUMABLE_KEYS = {"epochs", "checkpoint_every", "num_threads", "sample_eval", "progress", "lr_drops"}


@dataclass
class TrainConfig:
    model: CktGenConfig = field(default_factory=CktGenConfig)
    seed: int = 1
    epochs: int = 600
    batch_size: int = 32
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 0.0
    plateau_factor: float = 0.1
    plateau_patience: int = 10
    # epochs after which the learning rate is multiplied by plateau_factor (the plateau scheduler
    # watches the training loss, which keeps falling, so it may never act)
    lr_drops: tuple[int, ...] = ()
    grad_clip: float | None = None
    checkpoint_every: int = 100
    max_train_rows: int | None = None  # first N training rows only (smoke runs)
    num_threads: int = 2
    device: str = "cpu"  # "cpu", "cuda", or "auto"
    sample_eval: int = 256  # circuits generated at the end to report validity (0: skip)
    progress: bool = True

    def __post_init__(self) -> None:
        check_field_types(self)
        for name in ("epochs", "batch_size", "checkpoint_every", "num_threads"):
            if getattr(self, name) < 1:
                raise ConfigError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ConfigError(f"TrainConfig.lr must be > 0, got {self.lr}")
        if any(e < 1 for e in self.lr_drops):
            raise ConfigError(f"TrainConfig.lr_drops must be epochs >= 1, got {list(self.lr_drops)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(name)
    except RuntimeError as exc:
        raise CktLoopError(f"unknown device {name!r}: {exc}") from None


def _first_rows(data: GeneratorData, n: int | None) -> GeneratorData:
    """The first ``n`` rows (``max_train_rows``), or all of them."""
    if n is None or n >= len(data):
        return data
    return GeneratorData(data.batch(slice(0, n)), data.ids[:n], data.classes[:n])


def _fingerprint(data: GeneratorData) -> dict[str, Any]:
    digest = hashlib.sha256("\n".join(data.ids).encode()).hexdigest()[:16]
    return {"n_train": len(data), "ids_sha256": digest}


def _config_diff(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    diffs = []
    for key in sorted(set(old) | set(new)):
        if not prefix and key in RESUMABLE_KEYS:
            continue
        a, b = old.get(key, "<missing>"), new.get(key, "<missing>")
        if isinstance(a, dict) and isinstance(b, dict):
            diffs.extend(_config_diff(a, b, f"{prefix}{key}."))
        elif (list(a) if isinstance(a, tuple | list) else a) != (list(b) if isinstance(b, tuple | list) else b):
            diffs.append(f"{prefix}{key} ({a!r} in the checkpoint, {b!r} in the config)")
    return diffs


def _to(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _run_epoch(
    model: CktGen,
    data: GeneratorData,
    batch_size: int,
    device: torch.device,
    optimiser: torch.optim.Optimizer | None,
    generator: torch.Generator | None,
    grad_clip: float | None,
    desc: str,
    progress: bool,
) -> dict[str, float]:
    sums: dict[str, float] = defaultdict(float)
    model.train(optimiser is not None)
    n_batches = (len(data) + batch_size - 1) // batch_size
    bar = tqdm(data.batches(batch_size, generator), total=n_batches, desc=desc, leave=False, disable=not progress)
    with torch.set_grad_enabled(optimiser is not None):
        for batch in bar:
            batch = _to(batch, device)
            losses = model(batch)["losses"]
            if optimiser is not None:
                optimiser.zero_grad(set_to_none=True)
                losses["total"].backward()
                if grad_clip:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
                optimiser.step()
            for k, v in losses.items():
                sums[k] += float(v.detach())
            bar.set_postfix(loss=f"{float(losses['total'].detach()) / len(batch['types']):.3f}")
    return {k: v / max(1, len(data)) for k, v in sums.items()}  # per circuit


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _read_metrics(path: Path, upto: int) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        if line.strip():
            rec = json.loads(line)
            if rec["epoch"] <= upto:
                records.append(rec)
    return records


def plot_metrics(records: list[dict[str, Any]], path: Path) -> None:
    """Loss curves (per circuit, log scale): train total, test total and every train term."""
    if not records:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in records]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    for key in records[0]["train"]:
        if key.startswith(("ckt_", "spec_")):
            continue
        ys = [max(r["train"].get(key, float("nan")), 1e-6) for r in records]
        ax1.plot(epochs, ys, label=f"train {key}")
    if records[0].get("test"):
        ax1.plot(epochs, [max(r["test"]["total"], 1e-6) for r in records], "k--", label="test total")
    ax1.set_yscale("log")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss per circuit")
    ax1.legend(fontsize=7)
    for key in ("ckt_type_ce", "ckt_pos_ce", "ckt_edge_bce", "spec_type_ce", "spec_edge_bce"):
        if key in records[0]["train"]:
            ax2.plot(epochs, [max(r["train"][key], 1e-6) for r in records], label=key)
    ax2.set_yscale("log")
    ax2.set_xlabel("epoch")
    ax2.set_title("reconstruction parts (train)")
    ax2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


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
    save_checkpoint(out or path, {k: v for k, v in state.items() if k not in ("format", "format_version")})
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
    config_path = Path(config_path)
    cfg = load_train_config(config_path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(cfg.num_threads)
    device = _device(cfg.device)
    splits = (
        data_source
        if isinstance(data_source, Splits)
        else build_splits(load_rows(data_source, dataset_name), cfg.model.spec_preset)
    )
    if splits.spec.name != cfg.model.spec_preset:
        raise CktLoopError(f"data classes {splits.spec.name!r} differ from the config's {cfg.model.spec_preset!r}")
    train_data = _first_rows(splits.train, cfg.max_train_rows)
    fingerprint = _fingerprint(train_data)
    train_classes = [list(c) for c in sorted(set(train_data.classes))]  # a campaign's arms come from these
    ckpt_path = out / CHECKPOINT
    metrics_path = out / METRICS

    start_epoch = 0
    if resume and ckpt_path.exists():
        state = load_checkpoint(ckpt_path, map_location=device)
        diffs = _config_diff(state.get("train_config", {}), cfg.to_dict())
        if diffs:
            raise CktLoopError(f"{ckpt_path}: cannot resume with {config_path}: it differs in " + "; ".join(diffs[:5]))
        if state.get("data") != fingerprint:
            raise CktLoopError(
                f"{ckpt_path}: trained on different data ({state.get('data')}) than given now ({fingerprint})"
            )
        done = int(state["epoch"])
        moved = sorted(set(state.get("train_config", {}).get("lr_drops", ())) ^ set(cfg.lr_drops))
        if any(e < done for e in moved):
            raise CktLoopError(
                f"{ckpt_path}: cannot resume with {config_path}: lr_drops change at epochs {moved}, "
                f"but {done} epochs are already trained"
            )
        model = model_from_checkpoint(ckpt_path, state, device)
        optimiser, scheduler = _optimiser(model, cfg)
        try:
            optimiser.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            set_rng_state(state["rng"])
        except (KeyError, ValueError, TypeError, RuntimeError) as exc:
            raise CktLoopError(f"{ckpt_path}: optimiser/scheduler/RNG state unusable ({exc})") from None
        start_epoch = done
    else:
        _seed_everything(cfg.seed)
        model = CktGen(cfg.model).to(device)
        optimiser, scheduler = _optimiser(model, cfg)
    records = _read_metrics(metrics_path, start_epoch)
    metrics_path.write_text("".join(json.dumps(r) + "\n" for r in records))

    def checkpoint(epoch: int, bank: dict[str, Any] | None = None) -> None:
        save_checkpoint(
            ckpt_path,
            {
                "version": model_version(cfg.model.to_dict(), cfg.seed, epoch),
                "epoch": epoch,
                "train_config": cfg.to_dict(),
                "model_config": cfg.model.to_dict(),
                "spec_classes": splits.spec.to_dict(),
                "train_classes": train_classes,
                "model": model.state_dict(),
                "optimizer": optimiser.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": rng_state(),
                "data": fingerprint,
                **({"latent_bank": bank} if bank is not None else {}),
            },
        )

    times = []
    epoch = start_epoch
    for epoch in range(start_epoch + 1, cfg.epochs + 1):
        t0 = time.perf_counter()
        shuffle = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
        if epoch - 1 in cfg.lr_drops:
            for group in optimiser.param_groups:
                group["lr"] *= cfg.plateau_factor
        train_losses = _run_epoch(
            model,
            train_data,
            cfg.batch_size,
            device,
            optimiser,
            shuffle,
            cfg.grad_clip,
            f"epoch {epoch}/{cfg.epochs}",
            cfg.progress,
        )
        scheduler.step(train_losses["total"])
        test_losses = (
            _run_epoch(model, splits.test, max(cfg.batch_size, 256), device, None, None, None, "test", False)
            if len(splits.test)
            else {}
        )
        seconds = time.perf_counter() - t0
        times.append(seconds)
        record = {
            "epoch": epoch,
            "lr": optimiser.param_groups[0]["lr"],
            "seconds": round(seconds, 3),
            "train": train_losses,
            "test": test_losses,
        }
        records.append(record)
        with metrics_path.open("a") as fh:
            fh.write(json.dumps(record) + "\n")
        if cfg.progress:
            tqdm.write(
                f"epoch {epoch}: train {train_losses['total']:.3f}"
                + (f" test {test_losses['total']:.3f}" if test_losses else "")
                + f" lr {record['lr']:.2e} ({seconds:.1f}s)"
            )
        if epoch % cfg.checkpoint_every == 0 or epoch == cfg.epochs:
            checkpoint(epoch)
    epoch = max(epoch, start_epoch)

    # Everything below leaves the global RNG alone, so a later resume continues the same stream.
    encoded = latent_bank(model, train_data, device)
    set_prior_statistics(model, encoded.latents)
    bank = encoded.to_state() if cfg.model.conditional else None  # the recon-only VAE has no spec to bank by
    if epoch > start_epoch or not ckpt_path.exists():
        checkpoint(epoch, bank)
    else:  # nothing trained: refresh the derived statistics (prior, train classes, latent bank) only
        state = load_checkpoint(ckpt_path, map_location=device)
        state["model"] = model.state_dict()
        state["train_classes"] = train_classes
        state.pop("latent_bank", None)
        if bank is not None:
            state["latent_bank"] = bank
        save_checkpoint(ckpt_path, {k: v for k, v in state.items() if k not in ("format", "format_version")})
    plot_metrics(records, out / PLOT)
    valid = None
    if cfg.sample_eval > 0:
        classes = sorted(set(train_data.classes))
        gen = torch.Generator().manual_seed(cfg.seed)
        picks = torch.randint(len(classes), (cfg.sample_eval,), generator=gen).tolist()
        valid = validity(model.generate([classes[k] for k in picks], 1, generator=gen))
    return TrainResult(
        out_dir=out,
        checkpoint=ckpt_path,
        epochs_done=epoch,
        epochs_run=len(times),
        seconds_per_epoch=sum(times) / len(times) if times else None,
        last=records[-1] if records else None,
        validity=valid,
        version=model_version(cfg.model.to_dict(), cfg.seed, epoch),
    )


def _optimiser(model: CktGen, cfg: TrainConfig) -> tuple[torch.optim.Optimizer, Any]:
    optimiser = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimiser, mode="min", factor=cfg.plateau_factor, patience=cfg.plateau_patience
    )
    return optimiser, scheduler


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Train the CktGen generator")
    parser.add_argument("config")
    parser.add_argument("data", help="JSONL export path or database URL")
    parser.add_argument("--dataset", default=None)
    parser.add_argument("--out", default="runs/generator")
    parser.add_argument("--no-resume", action="store_true")
    args = parser.parse_args(argv)
    try:
        result = train(args.config, args.data, args.dataset, args.out, resume=not args.no_resume)
    except CktLoopError as exc:
        print(f"error: {exc}")
        return 2
    print(json.dumps({k: str(v) if isinstance(v, Path) else v for k, v in asdict(result).items()}, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

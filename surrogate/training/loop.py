"""The training loop both models run: AdamW, a plateau or cosine schedule with ``lr_drops``, per-epoch
records in the metrics log, checkpoints every ``checkpoint_every`` epochs, and resume.

A run in ``out`` continues from its checkpoint when one is there: the stored train config must equal
the current one up to the resumable knobs (``TrainSettings.resumable``; raising ``epochs`` extends a
finished run), and the training data's fingerprint must match. Resuming reproduces an uninterrupted
run exactly: each epoch shuffles with its own seeded generator, and the global RNG states (dropout,
latent sampling) travel in the checkpoint.

A model brings the code that is its own: one training epoch (``train_epoch``, returning per-term losses
with a ``total``), the held-out metrics (``evaluate``) and its checkpoint keys (``extras``).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from circuits.config import config_diff, from_mapping
from circuits.errors import CktLoopError
from surrogate.training.checkpoints import CheckpointFormat, rng_state, set_rng_state
from surrogate.training.metrics import MetricsLog, Panel, plot_metrics
from surrogate.training.settings import TrainSettings, renamed

METRICS = "metrics.jsonl"
PLOT = "metrics.png"
SHUFFLE_STRIDE = 1_000_003  # epoch e shuffles with seed · stride + e


def seed_everything(seed: int) -> None:
    """Python's, numpy's and torch's global generators (model initialisation, dropout)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def make_optimiser(model: nn.Module, settings: TrainSettings) -> tuple[torch.optim.Optimizer, Any]:
    """AdamW and its schedule: ReduceLROnPlateau on the training loss (the paper), or a cosine decay
    to zero at ``epochs``."""
    optimiser = torch.optim.AdamW(
        model.parameters(), lr=settings.lr, betas=settings.betas, weight_decay=settings.weight_decay
    )
    if settings.lr_schedule == "cosine":
        epochs = settings.epochs
        scheduler: Any = torch.optim.lr_scheduler.LambdaLR(
            optimiser, lambda epoch: 0.5 * (1.0 + math.cos(math.pi * min(epoch / epochs, 1.0)))
        )
    else:
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimiser, mode="min", factor=settings.plateau_factor, patience=settings.plateau_patience
        )
    return optimiser, scheduler


@dataclass
class Run:
    """One training run: its model, optimiser and schedule, the epochs done and their records.

    ``settings`` is a model's train config (a ``TrainSettings`` with a ``model`` config); ``data`` the
    training rows' fingerprint; ``extras(epoch)`` the model's own checkpoint keys (version, classes...).
    """

    settings: Any
    fmt: CheckpointFormat
    checkpoint: Path
    model: nn.Module
    data: dict[str, Any]
    extras: Callable[[int], dict[str, Any]]
    optimiser: torch.optim.Optimizer = field(init=False)
    scheduler: Any = field(init=False)
    log: MetricsLog = field(init=False)
    epoch: int = 0
    records: list[dict[str, Any]] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)  # per epoch trained in this call

    def __post_init__(self) -> None:
        self.optimiser, self.scheduler = make_optimiser(self.model, self.settings)
        self.log = MetricsLog(self.checkpoint.parent / METRICS)

    def save(self, **more: Any) -> None:
        """Write the checkpoint (atomically) at the current epoch, with ``more`` keys."""
        self.fmt.save(
            self.checkpoint,
            {
                **self.extras(self.epoch),
                "epoch": self.epoch,
                "train_config": self.settings.to_dict(),
                "model_config": self.settings.model.to_dict(),
                "model": self.model.state_dict(),
                "optimizer": self.optimiser.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "rng": rng_state(),
                "data": self.data,
                **more,
            },
        )

    def step(self, loss: torch.Tensor) -> None:
        """One optimiser step on ``loss`` (its gradient norm clipped at ``grad_clip`` when set)."""
        self.optimiser.zero_grad(set_to_none=True)
        loss.backward()
        if self.settings.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.settings.grad_clip)
        self.optimiser.step()

    def start(self, resume: bool, device: torch.device, config_path: str | Path) -> None:
        """Continue from the checkpoint (``resume`` and one is there) or start afresh; trims the metrics log."""
        self.checkpoint.parent.mkdir(parents=True, exist_ok=True)
        if resume and self.checkpoint.exists():
            self.epoch = self._restore(device, config_path)
        self.records = self.log.restart(self.epoch)

    def _restore(self, device: torch.device, config_path: str | Path) -> int:
        path = self.checkpoint
        state = self.fmt.load(path, device)
        # "config": the surrogate's key for its train config before both models shared this loop
        stored = state.get("train_config", state.get("config"))
        missing = [k for k in ("optimizer", "scheduler", "rng", "data") if k not in state]
        if stored is None or missing:
            lacks = ", ".join(missing + ([] if stored is not None else ["train_config"]))
            raise CktLoopError(f"{path}: checkpoint lacks {lacks} and cannot be resumed")
        old = from_mapping(renamed(stored), type(self.settings), where=f"{path}: train_config").to_dict()
        diffs = [
            f"{k} ({a!r} → {b!r})" for k, a, b in config_diff(old, self.settings.to_dict(), self.settings.resumable)
        ]
        if diffs:
            raise CktLoopError(f"{path}: cannot resume with {config_path}: it differs in " + "; ".join(diffs[:5]))
        if state["data"] != self.data:
            raise CktLoopError(f"{path}: trained on different data ({state['data']}) than given now ({self.data})")
        done = int(state["epoch"])
        moved = sorted(set(old["lr_drops"]) ^ set(self.settings.lr_drops))
        if any(e < done for e in moved):
            raise CktLoopError(
                f"{path}: cannot resume with {config_path}: lr_drops change at epochs {moved}, "
                f"but {done} epochs are already trained"
            )
        try:
            self.model.load_state_dict(state["model"])
            self.optimiser.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            set_rng_state(state["rng"])
        except (RuntimeError, KeyError, ValueError, TypeError, AttributeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CktLoopError(f"{path}: cannot restore the training state ({first[:300]})") from None
        return done

    def fit(
        self,
        train_epoch: Callable[[torch.Generator, str], dict[str, float]],
        evaluate: Callable[[], dict[str, Any]],
        panels: Sequence[Panel],
        summary: Callable[[dict[str, Any]], str] = lambda record: "",
        stop_after: int | None = None,
    ) -> None:
        """Train epochs ``epoch + 1 .. epochs`` (at most ``stop_after`` of them in this call).

        ``train_epoch(shuffle, description)`` trains one epoch and returns its loss terms (with ``total``,
        which the plateau schedule watches); ``evaluate()`` gives the held-out metrics. Each epoch's record
        goes to the metrics log; the checkpoint and the plot are written every ``checkpoint_every``
        epochs, at the last epoch and where ``stop_after`` ends the call.
        """
        s = self.settings
        end = s.epochs if stop_after is None else min(s.epochs, self.epoch + stop_after)
        for epoch in range(self.epoch + 1, end + 1):
            t0 = time.perf_counter()
            if epoch - 1 in s.lr_drops:
                for group in self.optimiser.param_groups:
                    group["lr"] *= s.plateau_factor
            shuffle = torch.Generator().manual_seed(s.seed * SHUFFLE_STRIDE + epoch)
            train = train_epoch(shuffle, f"epoch {epoch}/{s.epochs}")
            if s.lr_schedule == "plateau":
                self.scheduler.step(train["total"])
            else:
                self.scheduler.step()
            seconds = time.perf_counter() - t0
            self.seconds.append(seconds)
            record = {
                "epoch": epoch,
                "lr": self.optimiser.param_groups[0]["lr"],
                "seconds": round(seconds, 3),
                "train": train,
                "test": evaluate(),
            }
            self.epoch = epoch
            self.records.append(record)
            self.log.append(record)
            if s.progress:
                tqdm.write(f"epoch {epoch}: train {train['total']:.3f} {summary(record)} ({seconds:.1f}s)")
            if epoch % s.checkpoint_every == 0 or epoch == end:
                self.save()
                plot_metrics(self.records, self.checkpoint.parent / PLOT, panels)

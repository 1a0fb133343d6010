"""Training the DIGIN surrogate (reference §4.2-4.3) on the shared loop (``surrogate.training``).

``out_dir`` receives ``checkpoint.pt`` (the latest state, rewritten every ``checkpoint_every`` epochs
and at the end), ``metrics.jsonl`` (one line per epoch: loss terms per batch, held-out metrics, learning
rate, seconds) and ``metrics.png``. A run that is killed and started again with the same arguments
continues from the last checkpoint and ends with the same weights as an uninterrupted run (CPU; fixed
seed). ``epochs`` may be raised to extend a finished run; any other config change is refused.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from pydantic import Field, field_validator
from tqdm import tqdm

from circuits import CktLoopError
from circuits.config import load_config
from circuits.specs import spec_classes
from storage.rows import load_rows
from surrogate import checkpoint as ckpt
from surrogate.config import SurrogateConfig
from surrogate.data import build, pm_field
from surrogate.evaluate import split_metrics
from surrogate.model import DIGIN, MODEL_NAME
from surrogate.training.device import choose_device, set_threads
from surrogate.training.loop import Run, seed_everything
from surrogate.training.metrics import Panel
from surrogate.training.settings import TrainSettings

CHECKPOINT = "checkpoint.pt"
PANELS = (
    Panel("training loss terms (per batch)", ("train.*",), "symlog"),
    Panel("test class accuracy", ("test.joint_acc", "test.axis_acc"), "linear"),
    Panel(
        "test regression errors", ("test.fom_rmse_over_std", "test.gain_mae_db", "test.ugbw_mae_dec", "test.pm_mae_deg")
    ),
)


class TrainConfig(TrainSettings):
    """The shared knobs (``TrainSettings``), the surrogate's architecture and its spec-class preset."""

    model: SurrogateConfig = Field(default_factory=SurrogateConfig)
    spec_classes: str = "ocb"  # preset name (circuits.specs)
    epochs: int = Field(100, ge=1)
    checkpoint_every: int = Field(10, ge=1)

    @field_validator("spec_classes")
    @classmethod
    def _known_preset(cls, name: str) -> str:
        try:
            spec_classes(name)
        except CktLoopError as exc:
            raise ValueError(str(exc)) from None
        return name


def load_train_config(path: str | Path) -> TrainConfig:
    return load_config(path, TrainConfig)


def model_version(config: TrainConfig, fingerprint: str, epoch: int) -> str:
    blob = json.dumps({k: v for k, v in config.to_dict().items() if k not in config.resumable}, sort_keys=True)
    digest = hashlib.sha256((blob + fingerprint).encode()).hexdigest()[:10]
    return f"{MODEL_NAME}-{config.spec_classes}-{digest}-e{epoch}"


def train(
    config_path: str | Path,
    data_source: str | Path,
    dataset_name: str | None,
    out_dir: str | Path,
    resume: bool = True,
    stop_after: int | None = None,
) -> dict[str, Any]:
    """Train (or continue training) a surrogate; returns the last epoch's metrics and the checkpoint path.

    ``stop_after`` ends this call after that many epochs (as if the process were killed right after a
    checkpoint), for tests and time-sliced runs.
    """
    config = load_train_config(config_path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = choose_device(config.device)
    set_threads(config.threads)
    classes = spec_classes(config.spec_classes)
    data = build(load_rows(data_source, dataset_name), classes, encoder=config.model.encoder)
    if config.model.pm_circular and float(data.train.pm.abs().max()) > 180.0:
        raise CktLoopError(
            f"pm_circular needs a phase margin wrapped into [-180, 180] degrees; {classes.name}'s "
            f"{pm_field(classes)} reaches {float(data.train.pm.abs().max()):.0f}"
        )

    def extras(epoch: int) -> dict[str, Any]:
        return {
            "version": model_version(config, data.fingerprint, epoch),
            "spec_classes": data.classes.to_dict(),
            "norm": data.norm.to_dict(),
            "train_classes": [list(c) for c in data.train_classes],
        }

    seed_everything(config.seed)
    model = DIGIN(config.model, classes.sizes).to(device)
    run = Run(
        config, ckpt.FORMAT, out / CHECKPOINT, model, {"dataset": dataset_name, "fingerprint": data.fingerprint}, extras
    )
    run.start(resume, device, config_path)
    inputs = {k: v.to(device) for k, v in data.train.inputs.items()}
    targets = {k: getattr(data.train, k).to(device) for k in ("cls", "fom", "reg", "pm")}

    def train_epoch(shuffle: torch.Generator, desc: str) -> dict[str, float]:
        model.train()
        n = len(data.train)
        perm = torch.randperm(n, generator=shuffle).to(device)
        sums: dict[str, float] = {}
        batches = range(0, n, config.batch_size)
        bar = tqdm(batches, desc=desc, leave=False, disable=not config.progress)
        for step, b in enumerate(bar):
            index = perm[b : b + config.batch_size]
            _, loss = model({k: v[index] for k, v in inputs.items()}, {k: v[index] for k, v in targets.items()})
            assert loss is not None
            run.step(loss["total"])
            for k, v in loss.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
            if config.progress and step % 20 == 0:
                bar.set_postfix(loss=f"{float(loss['total'].detach()):.3f}", refresh=False)
        return {k: v / len(batches) for k, v in sums.items()}

    def summary(record: dict[str, Any]) -> str:
        test = record["test"]
        return (
            f"test joint acc {test.get('joint_acc', float('nan')):.3f}  FoM MAE {test.get('fom_mae', float('nan')):.2f}"
        )

    run.fit(train_epoch, lambda: split_metrics(model, data.test, data.norm, data.classes), PANELS, summary, stop_after)
    return {
        "checkpoint": str(run.checkpoint),
        "version": model_version(config, data.fingerprint, run.epoch),
        **(run.records[-1] if run.records else {}),
    }

"""Training the DIGIN surrogate: AdamW + ReduceLROnPlateau (reference §4.2-4.3), checkpoints, resume, curves.

``out_dir`` receives ``checkpoint.pt`` (the latest state, rewritten every ``checkpoint_every`` epochs
and at the end), ``metrics.jsonl`` (one line per epoch: loss terms, held-out metrics, learning rate,
seconds) and ``metrics.png``. A run that is killed and started again with the same arguments continues
from the last checkpoint and ends with the same weights as an uninterrupted run (CPU; fixed seed).
``epochs`` may be raised to extend a finished run; any other config change is refused.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from circuits import CktLoopError
from circuits.config import load_config
from circuits.specs import spec_classes
from storage.rows import load_rows
from surrogate import checkpoint as ckpt
from surrogate.data import build, pm_field
from surrogate.evaluate import split_metrics
from surrogate.model import DIGIN, MODEL_NAME, SurrogateConfig, default_device

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"
PLOT = "metrics.png"
# config keys that may differ between a run and its resume
RESUMABLE_CHANGES = ("epochs", "checkpoint_every", "device", "progress", "threads")


@dataclass(frozen=True)
class TrainConfig:
    model: SurrogateConfig = field(default_factory=SurrogateConfig)
    spec_classes: str = "ocb"  # preset name (circuits.specs)
    epochs: int = 100
    batch_size: int = 32
    lr: float = 1e-4
    betas: tuple[float, ...] = (0.9, 0.99)
    weight_decay: float = 0.0
    lr_schedule: str = "plateau"  # "plateau" (paper) or "cosine": lr·½(1 + cos(π·epoch/epochs)), per epoch
    plateau_factor: float = 0.1  # ReduceLROnPlateau on the summed training loss, stepped once per epoch
    plateau_patience: int = 10
    seed: int = 1
    checkpoint_every: int = 10
    device: str = "auto"  # auto (cuda if available), cpu, cuda
    progress: bool = True  # tqdm bar
    threads: int = 0  # torch intra-op CPU threads; 0 keeps torch's default (use 1 on a shared, busy machine)

    def __post_init__(self) -> None:
        if self.threads < 0:
            raise ValueError(f"threads must be >= 0, got {self.threads}")
        for name in ("epochs", "batch_size", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if len(self.betas) != 2:
            raise ValueError(f"betas must be two numbers, got {self.betas}")
        if self.lr_schedule not in ("plateau", "cosine"):
            raise ValueError(f"lr_schedule must be plateau or cosine, got {self.lr_schedule!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be auto, cpu or cuda, got {self.device!r}")
        try:
            spec_classes(self.spec_classes)
        except CktLoopError as exc:
            raise ValueError(str(exc)) from None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["betas"] = list(self.betas)
        return d


def load_train_config(path: str | Path) -> TrainConfig:
    return load_config(path, TrainConfig)


def model_version(config: TrainConfig, fingerprint: str, epoch: int) -> str:
    blob = json.dumps({k: v for k, v in config.to_dict().items() if k not in RESUMABLE_CHANGES}, sort_keys=True)
    digest = hashlib.sha256((blob + fingerprint).encode()).hexdigest()[:10]
    return f"{MODEL_NAME}-{config.spec_classes}-{digest}-e{epoch}"


def _device(config: TrainConfig) -> torch.device:
    if config.device == "auto":
        return default_device()
    if config.device == "cuda" and not torch.cuda.is_available():
        raise CktLoopError("device 'cuda' requested but CUDA is not available")
    return torch.device(config.device)


def _config_changes(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    changes = []
    for key in sorted(set(old) | set(new)):
        if not prefix and key in RESUMABLE_CHANGES:
            continue
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            changes += _config_changes(a, b, f"{prefix}{key}.")
        elif a != b:
            changes.append(f"{prefix}{key}: {a!r} → {b!r}")
    return changes


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
    device = _device(config)
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    classes = spec_classes(config.spec_classes)
    data = build(load_rows(data_source, dataset_name), classes, encoder=config.model.encoder)
    if config.model.pm_circular and float(data.train.pm.abs().max()) > 180.0:
        raise CktLoopError(
            f"pm_circular needs a phase margin wrapped into [-180, 180] degrees; {classes.name}'s "
            f"{pm_field(classes)} reaches {float(data.train.pm.abs().max()):.0f}"
        )

    torch.manual_seed(config.seed)
    model = DIGIN(config.model, classes.sizes).to(device)
    opt = torch.optim.AdamW(
        model.parameters(),
        lr=config.lr,
        betas=tuple(config.betas),  # type: ignore[arg-type]
        weight_decay=config.weight_decay,
    )
    sched = _scheduler(config, opt)
    shuffle = torch.Generator().manual_seed(config.seed)
    start = 0
    ckpt_path = out / CHECKPOINT
    metrics_path = out / METRICS
    if resume and ckpt_path.exists():
        start = _restore(ckpt_path, config, data.fingerprint, model, opt, sched, shuffle, device)
        _truncate_metrics(metrics_path, start)
    else:
        metrics_path.unlink(missing_ok=True)

    train_split = data.train
    n = len(train_split)
    train_inputs = {k: v.to(device) for k, v in train_split.inputs.items()}
    train_targets = {
        "cls": train_split.cls.to(device),
        "fom": train_split.fom.to(device),
        "reg": train_split.reg.to(device),
        "pm": train_split.pm.to(device),
    }
    last: dict[str, Any] = {}
    end = config.epochs if stop_after is None else min(config.epochs, start + stop_after)
    for epoch in range(start, end):
        t0 = time.perf_counter()
        model.train()
        perm = torch.randperm(n, generator=shuffle).to(device)
        sums: dict[str, float] = {}
        batches = range(0, n, config.batch_size)
        bar = tqdm(batches, desc=f"epoch {epoch + 1}/{config.epochs}", leave=False, disable=not config.progress)
        for step, b in enumerate(bar):
            index = perm[b : b + config.batch_size]
            _, loss = model(
                {k: v[index] for k, v in train_inputs.items()}, {k: v[index] for k, v in train_targets.items()}
            )
            assert loss is not None
            opt.zero_grad(set_to_none=True)
            loss["total"].backward()
            opt.step()
            for k, v in loss.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
            if config.progress and step % 20 == 0:
                bar.set_postfix(loss=f"{float(loss['total'].detach()):.3f}", refresh=False)
        if config.lr_schedule == "plateau":
            sched.step(sums["total"])
        else:
            sched.step()
        seconds = time.perf_counter() - t0
        test = split_metrics(model, data.test, data.norm, data.classes)
        last = {
            "epoch": epoch + 1,
            "lr": opt.param_groups[0]["lr"],
            "seconds": round(seconds, 3),
            "train": {k: v / len(batches) for k, v in sums.items()},
            "test": test,
        }
        with metrics_path.open("a") as fh:
            fh.write(json.dumps(last) + "\n")
        if config.progress:
            tqdm.write(
                f"epoch {epoch + 1}: loss {last['train']['total']:.3f}  test joint acc "
                f"{test.get('joint_acc', float('nan')):.3f}  FoM MAE {test.get('fom_mae', float('nan')):.2f}  "
                f"{seconds:.1f}s"
            )
        if (epoch + 1) % config.checkpoint_every == 0 or epoch + 1 == config.epochs:
            _save(ckpt_path, config, data, model, opt, sched, shuffle, epoch + 1, dataset_name)
            plot_metrics(metrics_path, out / PLOT)
    if end > start and end % config.checkpoint_every != 0 and end != config.epochs:
        _save(ckpt_path, config, data, model, opt, sched, shuffle, end, dataset_name)  # stop_after: keep the work
        plot_metrics(metrics_path, out / PLOT)
    if not last and metrics_path.exists():  # nothing left to train: report the stored last epoch
        lines = metrics_path.read_text().splitlines()
        last = json.loads(lines[-1]) if lines else {}
    return {
        "checkpoint": str(ckpt_path),
        "version": model_version(config, data.fingerprint, end if end > start else start),
        **last,
    }


def _scheduler(config: TrainConfig, opt: torch.optim.Optimizer) -> Any:
    """The paper's ReduceLROnPlateau, or a cosine decay to zero at ``epochs`` (which then shapes the schedule)."""
    if config.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(
            opt, lambda epoch: 0.5 * (1.0 + math.cos(math.pi * min(epoch / config.epochs, 1.0)))
        )
    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, mode="min", factor=config.plateau_factor, patience=config.plateau_patience
    )


def _save(
    path: Path,
    config: TrainConfig,
    data: Any,
    model: DIGIN,
    opt: Any,
    sched: Any,
    shuffle: torch.Generator,
    epoch: int,
    dataset_name: str | None,
) -> None:
    ckpt.save(
        path,
        {
            "version": model_version(config, data.fingerprint, epoch),
            "epoch": epoch,
            "config": config.to_dict(),
            "model_config": config.model.to_dict(),
            "spec_classes": data.classes.to_dict(),
            "norm": data.norm.to_dict(),
            "train_classes": [list(c) for c in data.train_classes],
            "data": {"dataset": dataset_name, "fingerprint": data.fingerprint},
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                "shuffle": shuffle.get_state(),
            },
        },
    )


def _restore(
    path: Path,
    config: TrainConfig,
    fingerprint: str,
    model: DIGIN,
    opt: Any,
    sched: Any,
    shuffle: torch.Generator,
    device: torch.device,
) -> int:
    data = ckpt.load(path, device)
    for key in ("config", "optimizer", "scheduler", "rng", "data"):
        if key not in data:
            raise CktLoopError(f"{path}: checkpoint lacks {key!r} and cannot be resumed")
    changes = _config_changes(data["config"], config.to_dict())
    if changes:
        raise CktLoopError(
            f"{path}: written with a different config ({'; '.join(changes)}); "
            "use another output directory or resume=False"
        )
    if data["data"].get("fingerprint") != fingerprint:
        raise CktLoopError(
            f"{path}: trained on other data (fingerprint {data['data'].get('fingerprint')!r}, now {fingerprint!r})"
        )
    try:
        model.load_state_dict(data["model"])
        opt.load_state_dict(data["optimizer"])
        sched.load_state_dict(data["scheduler"])
        torch.set_rng_state(data["rng"]["torch"].cpu())
        if data["rng"]["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in data["rng"]["cuda"]])
        shuffle.set_state(data["rng"]["shuffle"].cpu())
    except (RuntimeError, KeyError, ValueError, TypeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CktLoopError(f"{path}: cannot restore the training state ({first})") from None
    return int(data["epoch"])


def _truncate_metrics(path: Path, epoch: int) -> None:
    """Keep only the metric lines of epochs the checkpoint covers (later ones will be redone)."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["epoch"] <= epoch:
                kept.append(line)
        except (json.JSONDecodeError, KeyError, TypeError):
            continue  # a line cut by a kill
    path.write_text("".join(line + "\n" for line in kept))


def plot_metrics(metrics_path: Path, png_path: Path) -> None:
    """Training-loss terms and held-out metrics per epoch, as a PNG (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
    if not rows:
        return
    epochs = [r["epoch"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for key in rows[0]["train"]:
        axes[0].plot(epochs, [r["train"][key] for r in rows], label=key)
    axes[0].set_yscale("symlog")
    axes[0].set_title("training loss terms (per batch)")
    for key in ("joint_acc",):
        axes[1].plot(epochs, [r["test"].get(key, float("nan")) for r in rows], label=key)
    n_axes = len(rows[0]["test"].get("axis_acc", []))
    for i in range(n_axes):
        axes[1].plot(epochs, [r["test"]["axis_acc"][i] for r in rows], label=f"axis {i} acc", linestyle="--")
    axes[1].set_title("test class accuracy")
    for key in ("fom_rmse_over_std", "gain_mae_db", "ugbw_mae_dec", "pm_mae_deg"):
        axes[2].plot(epochs, [r["test"].get(key, float("nan")) for r in rows], label=key)
    axes[2].set_yscale("log")
    axes[2].set_title("test regression errors")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(png_path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m surrogate.train", description=__doc__.splitlines()[0])
    parser.add_argument("config", help="training config YAML (see surrogate/configs/)")
    parser.add_argument("data", help="a .jsonl dataset export or a store URL")
    parser.add_argument("--dataset", help="dataset name (for a store URL)")
    parser.add_argument("--out", required=True, help="output directory (checkpoint, metrics)")
    parser.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint")
    parser.add_argument("--stop-after", type=int, help="train at most this many epochs in this run")
    args = parser.parse_args(argv)
    try:
        result = train(
            args.config, args.data, args.dataset, args.out, resume=not args.fresh, stop_after=args.stop_after
        )
    except CktLoopError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({k: result.get(k) for k in ("checkpoint", "version", "epoch", "test")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

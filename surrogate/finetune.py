"""Fine-tuning the surrogate from the store's verified simulations (closed-loop refinement, issue 19).

The training rows are the campaign candidates (refinement results included) that ngspice measured ok,
each circuit once, from the campaigns asked for (all by default) and after the rows a registered version
was trained on (``since``). A stable hash of each circuit's key holds a fixed share of them out
(``holdout_fraction``): the same circuits are held out on every call, and they are the slice the new
model is judged on. Replay rows come from the training split of every dataset in the store (``replay``
"all", the default: the store's verified dataset simulations, a 100,000-circuit pool among them) or of the
one dataset named, ``replay_ratio`` per verified training row from each, never a circuit of any dataset's
held-out split: the parent's own dataset keeps what it knew, and rows it never saw teach it more of the
family.

``members`` copies of the parent checkpoint are trained on the shared loop (``surrogate.training``):
member 0 on the training rows, the others on bootstrap resamples of them, each with its own seed; the
result is one checkpoint with every member (``surrogate.ensemble``: member 0 answers, the spread is the
uncertainty, scaled per spec so that 68 % of the held-out errors lie within one deviation). ``out_dir``
keeps ``rows.json`` (which candidate rows were read), one folder per member
with its resumable checkpoint and metrics log, and the final ``surrogate.pt``; killed and re-run with the
same arguments, the call resumes where it stopped and trains on the same rows. The model is registered
in the store only once its checkpoint is written, with its parent version, the fingerprint of its
training rows and its held-out metrics (the parent's beside them, on the same rows). With ``since``, the
earlier verified rows of the same campaigns are replayed too (``earlier_ratio`` per new training row), so a
loop's later rounds do not forget what the earlier ones taught.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from pydantic import Field
from tqdm import tqdm

from circuits import Circuit, CktLoopError
from circuits.config import ConfigModel
from storage import EVERY_DATASET
from surrogate import checkpoint as ckpt
from surrogate.data import Split, build
from surrogate.ensemble import with_members
from surrogate.evaluate import split_metrics
from surrogate.fresh import error_metrics, std_scales
from surrogate.model import DIGIN, MODEL_NAME
from surrogate.paths import DESIGN_CHECKPOINT
from surrogate.predict import Surrogate
from surrogate.train import CHECKPOINT, PANELS, TrainConfig
from surrogate.training import from_store
from surrogate.training.checkpoints import TRAINING_STATE
from surrogate.training.device import choose_device, set_threads
from surrogate.training.from_store import ROWS_FILE as ROWS_FILE
from surrogate.training.from_store import as_train, held_out, json_safe, sample, version_of
from surrogate.training.loop import Run, seed_everything

RESULT = "surrogate.pt"
KIND = "surrogate"


class FinetuneConfig(ConfigModel):
    """What to fine-tune from, on which rows, and how long."""

    base: str = str(DESIGN_CHECKPOINT)  # parent checkpoint (default: the shipped design surrogate)
    dataset: str = "ocb101-seed0"  # the no-forgetting check (its test split)
    replay: str = EVERY_DATASET  # whose training split is replayed: every dataset in the store, or the one named
    replay_ratio: float = Field(4.0, ge=0.0)  # replay rows per verified training row, from each dataset
    earlier_ratio: float = Field(1.0, ge=0.0)  # with ``since``: earlier verified rows replayed per new training row
    holdout_fraction: float = Field(0.2, gt=0.0, lt=1.0)  # share of verified circuits held out (by key hash)
    members: int = Field(3, ge=1, le=16)  # ensemble members
    epochs: int = Field(6, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(3e-4, gt=0.0)
    weight_decay: float = Field(1e-4, ge=0.0)
    seed: int = Field(0, ge=0)
    threads: int = Field(1, ge=0)
    progress: bool = True


def gather_rows(
    store: Any, spec: dict[str, Any], config: FinetuneConfig
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(verified training rows, verified held-out rows, replay rows, the dataset's rows)."""
    verified = from_store.verified(store, spec)
    if not verified:
        raise CktLoopError("no verified candidates to fine-tune on (run a campaign first, or check --campaign/--since)")
    held = [r for r in verified if held_out(r["id"], config.holdout_fraction)]
    train = [r for r in verified if not held_out(r["id"], config.holdout_fraction)]
    dataset = [e.to_dict() for e in store.dataset_rows(config.dataset)]
    keys = {r["id"] for r in verified}
    earlier = _earlier_rows(store, spec, config, keys)
    keys |= {r["id"] for r in earlier}
    replay: list[dict[str, Any]] = []
    for i, rows in enumerate(replay_splits(store, config.replay).values()):  # a share from each dataset
        pool = [r for r in rows if r["status"] == "ok" and r["id"] not in keys]
        picked = sample(pool, config.replay_ratio * len(train), config.seed + 2 * i)
        keys |= {r["id"] for r in picked}
        replay += picked
    return train, held, sample(earlier, config.earlier_ratio * len(train), config.seed + 1) + replay, dataset


def replay_splits(store: Any, replay: str) -> dict[str, list[dict[str, Any]]]:
    """The training split of each dataset ``replay`` names (``Store.chosen_datasets``), without any circuit
    of any dataset's held-out split (whichever dataset holds it)."""
    held = store.held_out_keys()
    return {
        info.name: [e.to_dict() for e in store.dataset_rows(info.name) if e.split == "train" and e.id not in held]
        for info in store.chosen_datasets(replay, "replay")
    }


def replay_keys(store: Any, replay: str) -> set[str]:
    """The circuits ``replay_splits`` would read, by key only: what a loop leaves out of its fresh scores."""
    held = store.held_out_keys()
    return {
        k for info in store.chosen_datasets(replay, "replay") for k in store.dataset_keys(info.name, "train")
    } - held


def _earlier_rows(store: Any, spec: dict[str, Any], config: FinetuneConfig, new: set[str]) -> list[dict[str, Any]]:
    """With ``since``: the verified rows of the same campaigns up to the ones that version read, held-out
    circuits and the new rows' circuits left out (replayed so the earlier rounds are not forgotten)."""
    if not spec["after_candidate"] or not config.earlier_ratio:
        return []
    return [
        r
        for r in from_store.verified(store, spec, after=False)
        if r["candidate_id"] <= spec["after_candidate"]
        and r["id"] not in new
        and not held_out(r["id"], config.holdout_fraction)
    ]


def _train_member(
    member: int,
    parent: Surrogate,
    split: Split,
    held: Split | None,
    config: FinetuneConfig,
    out: Path,
    data_id: dict[str, Any],
    extras: Any,
) -> Path:
    """Fine-tune one ensemble member from the parent's weights (resuming its checkpoint when there)."""
    train_config = TrainConfig(
        spec_classes=parent.classes.name,
        model=parent.model.config,
        epochs=config.epochs,
        batch_size=config.batch_size,
        lr=config.lr,
        lr_schedule="cosine",
        weight_decay=config.weight_decay,
        seed=config.seed + member,
        checkpoint_every=1,
        threads=config.threads,
        progress=config.progress,
    )
    device = choose_device(train_config.device)
    seed_everything(train_config.seed)
    model = DIGIN(parent.model.config, parent.classes.sizes)
    model.load_state_dict(parent.model.state_dict())
    model.to(device)
    run = Run(train_config, ckpt.FORMAT, out / f"member-{member}" / CHECKPOINT, model, data_id, extras)
    run.start(True, device, out)
    n = len(split)
    rows = torch.arange(n)
    if member:  # a bootstrap resample, the same on every call
        rows = torch.randint(0, n, (n,), generator=torch.Generator().manual_seed(config.seed * 7919 + member))
    inputs = {k: v.to(device) for k, v in split.inputs.items()}
    labels = {k: getattr(split, k).to(device) for k in ("cls", "fom", "reg", "pm")}

    def train_epoch(shuffle: torch.Generator, desc: str) -> dict[str, float]:
        model.train()
        order = rows[torch.randperm(n, generator=shuffle)].to(device)
        totals: dict[str, float] = {}
        starts = range(0, n, config.batch_size)
        for b in tqdm(starts, desc=f"member {member} {desc}", leave=False, disable=not config.progress):
            chunk = order[b : b + config.batch_size]
            _, loss = model({k: v[chunk] for k, v in inputs.items()}, {k: v[chunk] for k, v in labels.items()})
            assert loss is not None
            run.step(loss["total"])
            for k, v in loss.items():
                totals[k] = totals.get(k, 0.0) + float(v.detach()) / len(starts)
        return totals

    def evaluate() -> dict[str, Any]:
        return split_metrics(model, held, parent.norm, parent.classes) if held is not None else {"n": 0}

    run.fit(train_epoch, evaluate, PANELS, lambda r: f"held-out UGBW MAE {r['test'].get('ugbw_mae_dec', 0):.3f} dec")
    return run.checkpoint


def dataset_metrics(model: Surrogate, dataset_rows: list[dict[str, Any]], seen: set[tuple[int, ...]]) -> dict[str, Any]:
    """The no-forgetting check: ``split_metrics`` on the dataset's held-out split, as ``cktloop evaluate``."""
    data = build(dataset_rows, model.classes, norm=model.norm, encoder=model.model.config.encoder)
    data.test.seen = torch.tensor([tuple(c) in seen for c in data.test.cls.tolist()], dtype=torch.bool)
    metrics = split_metrics(model.model, data.test, model.norm, model.classes)
    keep = ("n", "n_class", "joint_acc", "axis_acc", "gain_mae_db", "ugbw_mae_dec", "pm_mae_deg", "fom_mae")
    return {k: metrics[k] for k in keep if k in metrics}


def finetune(
    store: Any,
    out_dir: str | Path,
    campaigns: Sequence[str] = (),
    since: str | None = None,
    config: FinetuneConfig | None = None,
    register: bool = True,
) -> dict[str, Any]:
    """Fine-tune ``config.base`` on the store's verified rows (see the module doc); returns the new version,
    its checkpoint, the row counts and the metrics it was registered with."""
    config = config or FinetuneConfig()
    out = Path(out_dir)
    set_threads(config.threads)
    parent = Surrogate.load(config.base, device="cpu")
    spec = from_store.rows_spec(store, out, KIND, campaigns, since, str(Path(config.base).resolve()))
    train, held, replay, dataset = gather_rows(store, spec, config)
    from_store.keep_rows_spec(out, spec)
    enc = parent.model.config.encoder
    data = build(as_train(train + replay), parent.classes, norm=parent.norm, encoder=enc)
    held_split = build(as_train(held), parent.classes, norm=parent.norm, encoder=enc).train if held else None
    version = version_of(f"{MODEL_NAME}-ft", parent.version, data.fingerprint, config.to_dict(), f"-e{config.epochs}")
    classes = sorted({tuple(c) for c in parent.train_classes} | set(data.train_classes))

    def extras(epoch: int) -> dict[str, Any]:
        return {
            "version": version,
            "spec_classes": parent.classes.to_dict(),
            "norm": parent.norm.to_dict(),
            "train_classes": [list(c) for c in classes],
        }

    data_id = {"parent": parent.version, "fingerprint": data.fingerprint}
    paths = [
        _train_member(m, parent, data.train, held_split, config, out, data_id, extras) for m in range(config.members)
    ]
    states = [ckpt.load(p) for p in paths]
    payload = {k: v for k, v in states[0].items() if k not in TRAINING_STATE}
    payload.update(parent_version=parent.version, data_fingerprint=data.fingerprint, finetune=config.to_dict())
    result = out / RESULT
    members = [s["model"] for s in states[1:]]
    ckpt.save(result, with_members(payload, members))
    circuits = [Circuit.from_dict(r["circuit"]) for r in held]
    raw = Surrogate.load(result, device="cpu").predict(circuits)
    scale = std_scales(raw, held, parent.pm_field) if members else {}
    ckpt.save(result, with_members(payload, members, scale))  # the spread's scale, fitted on the held-out slice

    child = Surrogate.load(result, device="cpu")
    seen = {tuple(c) for c in parent.train_classes}
    heldout: dict[str, Any] = error_metrics(child.predict(circuits), held, child.pm_field) if held else {"n": 0}
    if members and held:
        heldout.update(std_scale=scale, calibration_unscaled=error_metrics(raw, held, child.pm_field)["calibration"])
    metrics: dict[str, Any] = json_safe(
        {
            "heldout": heldout,
            "parent_heldout": error_metrics(parent.predict(circuits), held, parent.pm_field) if held else {"n": 0},
            "dataset_test": dataset_metrics(child, dataset, seen),
            "parent_dataset_test": dataset_metrics(parent, dataset, seen),
        }
    )
    rows = {**spec, "n_train": len(train), "n_heldout": len(held), "n_replay": len(replay)}
    return from_store.conclude(
        store,
        KIND,
        version,
        result,
        parent.version,
        data.fingerprint,
        {"finetune": config.to_dict()},
        rows,
        metrics,
        register,
    )

"""Held-out evaluation of a surrogate against the simulator's labels (the dataset's test split).

Metrics: joint-class and per-axis accuracy over test rows whose joint class occurs in training (as
CktGen filters them, reference §4.1), FoM MAE / RMSE (and RMSE / train std, the paper's figure), and
the spec regressor's MAE: gain in dB, UGBW in decades, phase margin in degrees. All regression
metrics count every successfully simulated test row.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch

from circuits import CktLoopError
from storage.rows import load_rows
from surrogate.data import Normalisation, Split, build
from surrogate.model import DIGIN

REG_SCALE = (100.0, 1.0, 90.0)  # z-unscaled regression targets → dB, decades, degrees


@torch.no_grad()
def split_metrics(model: DIGIN, split: Split, norm: Normalisation, batch_size: int = 512) -> dict[str, Any]:
    """Metrics of ``model`` on ``split`` (labels z-scored with ``norm``)."""
    if len(split) == 0:
        return {"n": 0}
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    preds, foms, regs = [], [], []
    for start in range(0, len(split), batch_size):
        index = torch.arange(start, min(start + batch_size, len(split)))
        inputs, _ = split.batch(index)
        out, _ = model({k: v.to(device) for k, v in inputs.items()})
        preds.append(torch.stack([lg.argmax(-1) for lg in out["logits"]], dim=-1).cpu())
        foms.append(out["fom"].cpu())
        regs.append(out["reg"].cpu())
    model.train(was_training)
    pred = torch.cat(preds)
    fom_err = norm.fom_from_z(torch.cat(foms)) - norm.fom_from_z(split.fom)
    reg_err = (norm.reg_from_z(torch.cat(regs)) - norm.reg_from_z(split.reg)).abs() * torch.tensor(REG_SCALE)
    seen = split.seen
    correct = (pred == split.cls)[seen]
    n_seen = int(seen.sum())
    return {
        "n": len(split),
        "n_class": n_seen,
        "joint_acc": float(correct.all(-1).float().mean()) if n_seen else float("nan"),
        "axis_acc": [float(x) for x in correct.float().mean(0)] if n_seen else [],
        "fom_mae": float(fom_err.abs().mean()),
        "fom_rmse": float(fom_err.pow(2).mean().sqrt()),
        "fom_rmse_over_std": float(fom_err.pow(2).mean().sqrt()) / norm.fom_std,
        "gain_mae_db": float(reg_err[:, 0].mean()),
        "ugbw_mae_dec": float(reg_err[:, 1].mean()),
        "pm_mae_deg": float(reg_err[:, 2].mean()),
    }


def evaluate(
    checkpoint: str | Path, data_source: str | Path, dataset: str | None = None, split: str = "test"
) -> dict[str, Any]:
    """Evaluate a checkpoint on a dataset split (``test`` by default) with the checkpoint's label statistics."""
    from surrogate.predict import Surrogate

    surrogate = Surrogate.load(checkpoint)
    data = build(load_rows(data_source, dataset), surrogate.classes, norm=surrogate.norm)
    part = {"test": data.test, "train": data.train}.get(split)
    if part is None:
        raise CktLoopError(f"unknown split {split!r} (train or test)")
    if split == "test":  # judge "seen" by the checkpoint's own training classes
        seen = {tuple(c) for c in surrogate.train_classes}
        part.seen = torch.tensor([tuple(int(x) for x in c) in seen for c in part.cls.tolist()], dtype=torch.bool)
    metrics = split_metrics(surrogate.model, part, surrogate.norm)
    metrics.update(
        version=surrogate.version,
        split=split,
        spec_classes=surrogate.classes.name,
        fields=list(surrogate.classes.fields),
    )
    return metrics


def markdown_table(metrics: dict[str, Any]) -> str:
    """A two-column markdown table of evaluation metrics."""
    fields = metrics.get("fields") or [f"axis {i}" for i in range(len(metrics.get("axis_acc", [])))]
    rows = [
        ("rows (class metrics)", f"{metrics.get('n_class', 0)} of {metrics.get('n', 0)}"),
        ("joint-class accuracy", f"{metrics['joint_acc']:.3f}"),
        *((f"accuracy {f}", f"{a:.3f}") for f, a in zip(fields, metrics.get("axis_acc", []))),
        ("FoM MAE", f"{metrics['fom_mae']:.3f}"),
        ("FoM RMSE", f"{metrics['fom_rmse']:.3f}"),
        ("FoM RMSE / train std", f"{metrics['fom_rmse_over_std']:.3f}"),
        ("gain MAE (dB)", f"{metrics['gain_mae_db']:.2f}"),
        ("UGBW MAE (decades)", f"{metrics['ugbw_mae_dec']:.3f}"),
        ("PM MAE (degrees)", f"{metrics['pm_mae_deg']:.2f}"),
    ]
    head = f"| metric ({metrics.get('split', 'test')}, {metrics.get('version', '')}) | value |"
    return "\n".join([head, "|---|---|", *(f"| {k} | {v} |" for k, v in rows)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m surrogate.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("data", help="a .jsonl dataset export or a store URL")
    parser.add_argument("--dataset", help="dataset name (for a store URL)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        metrics = evaluate(args.checkpoint, args.data, args.dataset, args.split)
    except CktLoopError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(metrics, indent=2) if args.json else markdown_table(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Held-out evaluation of a surrogate against the simulator's labels (the dataset's test split).

Metrics: joint-class and per-axis accuracy over test rows whose joint class occurs in training (as
CktGen filters them, reference §4.1), FoM MAE / RMSE (and RMSE / train std, the paper's figure), and
the spec regressor's MAE: gain in dB, UGBW in decades, phase margin in degrees (around the circle for a
model that regresses it as an angle). All regression metrics count every successfully simulated test
row. ``joint_acc`` / ``axis_acc`` judge the classes the model is configured to report
(``class_source``); ``heads`` and ``regression`` give both readings side by side.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from circuits import CktLoopError
from circuits.specs import SpecClasses
from storage.rows import load_rows
from surrogate.config import SurrogateConfig
from surrogate.data import Normalisation, Split, build, classify_specs, predicted_specs, spec_values
from surrogate.model import DIGIN


def _accuracy(pred: torch.Tensor, truth: torch.Tensor) -> dict[str, Any]:
    if len(truth) == 0:
        return {"joint_acc": float("nan"), "axis_acc": []}
    correct = pred == truth
    return {"joint_acc": float(correct.all(-1).float().mean()), "axis_acc": [float(x) for x in correct.float().mean(0)]}


@dataclass
class Predictions:
    """A model's outputs on a split beside the simulator's labels, in physical units."""

    heads: torch.Tensor  # (N, n_axes) classes from the class heads
    spec: torch.Tensor  # (N, 3) predicted gain dB, UGBW Hz, PM deg
    truth: torch.Tensor  # (N, 3) ngspice's gain dB, UGBW Hz, PM deg (the preset's PM field)
    fom: torch.Tensor  # (N,) predicted FoM
    fom_truth: torch.Tensor  # (N,) ngspice's FoM


@torch.no_grad()
def split_predictions(model: DIGIN, split: Split, norm: Normalisation, batch_size: int = 512) -> Predictions:
    """Run ``model`` over ``split`` in batches (eval mode) and read its outputs back into physical units."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    heads, foms, specs = [], [], []
    for start in range(0, len(split), batch_size):
        index = torch.arange(start, min(start + batch_size, len(split)))
        inputs, _ = split.batch(index)
        out, _ = model({k: v.to(device) for k, v in inputs.items()})
        heads.append(torch.stack([lg.argmax(-1) for lg in out["logits"]], dim=-1).cpu())
        foms.append(out["fom"].cpu())
        specs.append(predicted_specs(out["reg"], norm, model.config.pm_circular).cpu())
    model.train(was_training)
    truth = spec_values(norm.reg_from_z(split.reg))
    truth = torch.cat([truth[:, :2], split.pm.unsqueeze(-1).to(truth.dtype)], dim=-1)
    return Predictions(
        heads=torch.cat(heads),
        spec=torch.cat(specs),
        truth=truth,
        fom=norm.fom_from_z(torch.cat(foms)),
        fom_truth=norm.fom_from_z(split.fom),
    )


def split_metrics(
    model: DIGIN, split: Split, norm: Normalisation, classes: SpecClasses, batch_size: int = 512
) -> dict[str, Any]:
    """Metrics of ``model`` on ``split`` (labels z-scored with ``norm``, classes binned by ``classes``)."""
    if len(split) == 0:
        return {"n": 0}
    return prediction_metrics(split_predictions(model, split, norm, batch_size), split, norm, classes, model.config)


def prediction_metrics(
    p: Predictions, split: Split, norm: Normalisation, classes: SpecClasses, config: SurrogateConfig
) -> dict[str, Any]:
    """``split_metrics`` from predictions already made on a non-empty ``split``."""
    by_source = {"heads": p.heads, "regression": classify_specs(classes, p.spec)}
    fom_err = p.fom - p.fom_truth
    gain_err = (p.spec[:, 0] - p.truth[:, 0]).abs()
    ugbw_err = (torch.log10(p.spec[:, 1]) - torch.log10(p.truth[:, 1])).abs()
    pm_err = (p.spec[:, 2] - p.truth[:, 2]).abs()
    if config.pm_circular:
        pm_err = torch.minimum(pm_err % 360.0, 360.0 - pm_err % 360.0)
    seen = split.seen
    cls = split.cls[seen]
    return {
        "n": len(split),
        "n_class": int(seen.sum()),
        **_accuracy(by_source[config.class_source][seen], cls),
        **{source: _accuracy(pred[seen], cls) for source, pred in by_source.items()},
        "fom_mae": float(fom_err.abs().mean()),
        "fom_rmse": float(fom_err.pow(2).mean().sqrt()),
        "fom_rmse_over_std": float(fom_err.pow(2).mean().sqrt()) / norm.fom_std,
        "gain_mae_db": float(gain_err.mean()),
        "ugbw_mae_dec": float(ugbw_err.mean()),
        "pm_mae_deg": float(pm_err.mean()),
    }


def evaluate(
    checkpoint: str | Path,
    data_source: str | Path,
    dataset: str | None = None,
    split: str = "test",
    plot: Path | None = None,
) -> dict[str, Any]:
    """Evaluate a checkpoint on a dataset split (``test`` by default) with the checkpoint's label statistics;
    ``plot`` also writes the parity plot there (``parity_plot``)."""
    from surrogate.predict import Surrogate

    surrogate = Surrogate.load(checkpoint)
    data = build(
        load_rows(data_source, dataset), surrogate.classes, norm=surrogate.norm, encoder=surrogate.model.config.encoder
    )
    part = {"test": data.test, "train": data.train}.get(split)
    if part is None:
        raise CktLoopError(f"unknown split {split!r} (train or test)")
    if split == "test":  # judge "seen" by the checkpoint's own training classes
        seen = {tuple(c) for c in surrogate.train_classes}
        part.seen = torch.tensor([tuple(int(x) for x in c) in seen for c in part.cls.tolist()], dtype=torch.bool)
    if len(part) == 0:
        metrics: dict[str, Any] = {"n": 0}
    else:
        p = split_predictions(surrogate.model, part, surrogate.norm)
        metrics = prediction_metrics(p, part, surrogate.norm, surrogate.classes, surrogate.model.config)
        if plot is not None:
            title = (
                f"{surrogate.version} on {split}: {len(part)} rows; joint-class accuracy {metrics['joint_acc']:.3f} "
                f"on the {metrics['n_class']} whose class occurs in training"
            )
            parity_plot(p, surrogate.classes, plot, title)
    metrics.update(
        version=surrogate.version,
        split=split,
        spec_classes=surrogate.classes.name,
        fields=list(surrogate.classes.fields),
    )
    return metrics


def parity_plot(p: Predictions, classes: SpecClasses, path: Path, title: str) -> None:
    """Predicted against simulated gain, UGBW, PM and FoM, one point per circuit, with the class edges drawn.

    A point is green where its class on that axis is right and red where not, so the plot shows how
    near the edges the misses fall (the squares along the diagonal are the classes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    right = classify_specs(classes, p.spec) == classify_specs(classes, p.truth)
    labels = {"gain_db": "gain [dB]", "ugbw_hz": "UGBW [Hz]", "FoM": "FoM"}  # else a phase margin field
    fig, axes = plt.subplots(1, 4, figsize=(19, 4.8))
    panels: list[tuple[str, Any, Any, Any, list[float]]] = [
        (f, p.truth[:, i], p.spec[:, i], right[:, i], [axis.sign * e for e in axis.edges])
        for i, (f, axis) in enumerate(zip(classes.fields, classes.axes))
    ]
    panels.append(("FoM", p.fom_truth, p.fom, None, []))
    for ax, (field, truth, pred, ok, edges) in zip(axes, panels):
        truth, pred = truth.double().numpy(), pred.double().numpy()
        colours = "tab:blue" if ok is None else ["tab:green" if o else "tab:red" for o in ok.tolist()]
        ax.scatter(truth, pred, s=5, c=colours, alpha=0.6, linewidths=0)
        lo, hi = min(truth.min(), pred.min()), max(truth.max(), pred.max())
        ax.plot([lo, hi], [lo, hi], color="black", lw=0.8)
        for edge in edges:
            if lo <= edge <= hi:
                ax.axvline(edge, color="grey", lw=0.5, ls="--")
                ax.axhline(edge, color="grey", lw=0.5, ls="--")
        if field == "ugbw_hz":
            ax.set_xscale("log")
            ax.set_yscale("log")
        share = "" if ok is None else f", class right {float(ok.double().mean()):.1%}"
        ax.set_title(f"{labels.get(field, f'{field} [deg]')}{share}", fontsize=10)
        ax.set_xlabel("ngspice")
        ax.set_ylabel("surrogate")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
    except OSError as exc:
        raise CktLoopError(f"{path}: cannot write the parity plot ({exc.strerror or exc})") from None
    finally:
        plt.close(fig)


def _joined(acc: dict[str, Any]) -> str:
    return " / ".join(f"{a:.3f}" for a in (acc["joint_acc"], *acc["axis_acc"]))


def markdown_table(metrics: dict[str, Any]) -> str:
    """A two-column markdown table of evaluation metrics."""
    fields = metrics.get("fields") or [f"axis {i}" for i in range(len(metrics.get("axis_acc", [])))]
    rows = [
        ("rows (class metrics)", f"{metrics.get('n_class', 0)} of {metrics.get('n', 0)}"),
        ("joint-class accuracy", f"{metrics['joint_acc']:.3f}"),
        *((f"accuracy {f}", f"{a:.3f}") for f, a in zip(fields, metrics.get("axis_acc", []))),
        *(
            (f"joint / per-axis accuracy, classes from the {s}", _joined(metrics[s]))
            for s in ("heads", "regression")
            if s in metrics
        ),
        ("FoM MAE", f"{metrics['fom_mae']:.3f}"),
        ("FoM RMSE", f"{metrics['fom_rmse']:.3f}"),
        ("FoM RMSE / train std", f"{metrics['fom_rmse_over_std']:.3f}"),
        ("gain MAE (dB)", f"{metrics['gain_mae_db']:.2f}"),
        ("UGBW MAE (decades)", f"{metrics['ugbw_mae_dec']:.3f}"),
        ("PM MAE (degrees)", f"{metrics['pm_mae_deg']:.2f}"),
    ]
    head = f"| metric ({metrics.get('split', 'test')}, {metrics.get('version', '')}) | value |"
    return "\n".join([head, "|---|---|", *(f"| {k} | {v} |" for k, v in rows)])

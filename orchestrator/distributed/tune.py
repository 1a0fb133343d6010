"""Hyper-parameter search with Ray Tune over a small space of training knobs.

One trial trains a model from a base config with some knobs replaced, for a few epochs, with the
project's own training loop (``generator.train.train`` or ``surrogate.train.train``), and reports its
held-out figure: the generator's test reconstruction loss per circuit (from the circuit and the spec
latent, on unseen topologies; the whole loss would not compare, as InfoNCE grows with the batch size)
or the surrogate's test joint-class accuracy. Each trial holds ``cpus_per_trial`` of the Ray
cluster, so trials run side by side on a laptop and spread over a cluster with ``--address``; each
reports the Ray node it ran on (the table's ``node``: the first 8 hex digits of its id). The best
trial's full config is written as YAML, ready for ``cktloop train``.
"""

from __future__ import annotations

import copy
import itertools
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from circuits import CktLoopError
from circuits.config import read_yaml

# knob (dotted path into the training config) → the values tried
SPACES: dict[str, dict[str, list[Any]]] = {
    "generator": {"lr": [3.0e-4, 1.0e-3, 2.0e-3], "batch_size": [32, 64, 128], "model.d_model": [64, 128]},
    "surrogate": {"lr": [3.0e-4, 1.0e-3, 3.0e-3], "batch_size": [32, 64, 128], "model.hidden": [64, 128, 256]},
}
OBJECTIVES = {"generator": ("test_recon", "min"), "surrogate": ("test_joint_acc", "max")}


@dataclass(frozen=True)
class TuneResult:
    trials: list[dict[str, Any]]  # one per trial, best first: the knobs tried, the figures reached, its Ray node
    best_config: Path
    metric: str
    mode: str


def with_knobs(base: Mapping[str, Any], knobs: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with each dotted knob (``model.d_model``) replaced; an unknown section is an error."""
    out = copy.deepcopy(dict(base))
    for path, value in knobs.items():
        *parents, leaf = path.split(".")
        node = out
        for part in parents:
            if not isinstance(node.get(part), dict):
                raise CktLoopError(f"tune knob {path!r}: the config has no section {part!r}")
            node = node[part]
        node[leaf] = value
    return out


def absolute_source(source: str | Path) -> str:
    """A data source that still names the same rows from a trial's own working directory."""
    text = str(source)
    if text.startswith("sqlite:///") and not text.startswith("sqlite:////"):
        return "sqlite:///" + str(Path(text[len("sqlite:///") :]).resolve())
    return text if "://" in text else str(Path(text).resolve())


def run_trial(model: str, config: dict[str, Any], source: str, dataset: str | None, out: Path) -> dict[str, float]:
    """Train one config in ``out`` with the project's training loop and return its held-out figures."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    if model == "generator":
        from generator.train import train as train_generator

        result = train_generator(path, source, dataset, out_dir=out)
        test = (result.last or {}).get("test", {})
        recon = sum(test.get(k, 0.0) for k in ("recon_ckt", "recon_spec")) if test else math.nan
        return {"test_recon": float(recon), "seconds_per_epoch": result.seconds_per_epoch or 0.0}
    from surrogate.train import train as train_surrogate

    last = train_surrogate(path, source, dataset, out)
    test = last.get("test", {})
    return {"test_joint_acc": float(test.get("joint_acc", math.nan)), "seconds_per_epoch": float(last["seconds"])}


def _trainable(params: dict[str, Any], model: str, base: dict[str, Any], source: str, dataset: str | None, root: str):
    from ray import tune

    from orchestrator.distributed.placement import node_id

    knobs = params["knobs"]
    trial_dir = Path(root) / "trials" / tune.get_context().get_trial_id()
    figures = run_trial(model, with_knobs(base, knobs), source, dataset, trial_dir)
    tune.report({**figures, **knobs, "node": node_id() or ""})


def check_request(
    model: str, base_config: str | Path, trials: int, epochs: int, space: Mapping[str, Sequence[Any]] | None = None
) -> dict[str, Any]:
    """The base config as a mapping, once the request is known to be sound (before Ray starts)."""
    if model not in SPACES:
        raise CktLoopError(f"unknown model {model!r} (known: {', '.join(SPACES)})")
    if trials < 1 or epochs < 1:
        raise CktLoopError(f"tune needs at least one trial and one epoch, got {trials} and {epochs}")
    path = Path(base_config)
    base = read_yaml(path, "base config")  # the configs' reader: 1e-4 is a float, as the trials will read it
    if not isinstance(base, dict):
        raise CktLoopError(f"{path}: a training config is a mapping")
    for knob, values in (space or SPACES[model]).items():
        if not values:
            raise CktLoopError(f"tune knob {knob!r}: no values to try")
        with_knobs(base, {knob: values[0]})  # a knob the config cannot take fails here
    return base


def draw(space: Mapping[str, Sequence[Any]], n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` distinct points of the grid ``space`` spans, in a seeded random order."""
    grid = [dict(zip(space, values)) for values in itertools.product(*space.values())]
    random.Random(seed).shuffle(grid)
    return grid[:n]


def tune_model(
    model: str,
    base_config: str | Path,
    source: str | Path,
    dataset: str | None,
    out: str | Path,
    trials: int = 4,
    epochs: int = 5,
    cpus_per_trial: float = 1.0,
    seed: int = 0,
    space: Mapping[str, Sequence[Any]] | None = None,
) -> TuneResult:
    """Train ``trials`` distinct configs of ``space`` (default ``SPACES[model]``; a seeded draw from its
    grid, all of it when ``trials`` covers it) for ``epochs`` each.

    Needs a connected Ray (``orchestrator.distributed.runtime.ensure_ray``). The best config, with the
    base config's epochs restored, lands in ``out/best.yaml``.
    """
    from ray import tune

    space = dict(space or SPACES.get(model, {}))
    base = check_request(model, base_config, trials, epochs, space)
    short = {**base, "epochs": epochs, "progress": False}
    metric, mode = OBJECTIVES[model]
    root = Path(out).resolve()
    trainable = tune.with_resources(
        tune.with_parameters(
            _trainable, model=model, base=short, source=absolute_source(source), dataset=dataset, root=str(root)
        ),
        {"cpu": cpus_per_trial},
    )
    tuner = tune.Tuner(
        trainable,
        param_space={"knobs": tune.grid_search(draw(space, trials, seed))},
        tune_config=tune.TuneConfig(metric=metric, mode=mode),
        run_config=tune.RunConfig(name="tune", storage_path=str(root / "ray"), verbose=0),
    )
    grid = tuner.fit()
    rows = []
    for result in (grid[i] for i in range(len(grid))):
        if result.error is not None:
            raise CktLoopError(f"a tune trial failed: {str(result.error).splitlines()[0]}")
        metrics = result.metrics or {}
        rows.append({k: metrics[k] for k in (*space, metric, "seconds_per_epoch", "node")})
    rows.sort(key=lambda r: r[metric] if mode == "min" else -r[metric])
    best = with_knobs(base, {k: rows[0][k] for k in space})
    root.mkdir(parents=True, exist_ok=True)
    best_path = root / "best.yaml"
    best_path.write_text(yaml.safe_dump(best, sort_keys=False))
    return TuneResult(trials=rows, best_config=best_path, metric=metric, mode=mode)


def markdown_table(result: TuneResult) -> str:
    keys = list(result.trials[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for row in result.trials:
        cells = (
            f"{row[k]:.4g}" if isinstance(row[k], float) else str(row[k])[: 8 if k == "node" else None] for k in keys
        )
        lines.append("| " + " | ".join(cells) + " |")
    arrow = "lowest" if result.mode == "min" else "highest"
    lines.append(f"\nbest ({arrow} {result.metric}) written to {result.best_config}")
    return "\n".join(lines)

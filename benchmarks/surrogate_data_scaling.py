"""How the surrogate's held-out accuracy grows with its training data: fewer topologies, more sizings.

Trains one surrogate config per run on a subset of training rows and judges each on the same held-out
rows of the 10,000-circuit dataset (as ``cktloop evaluate surrogate`` counts them). A run is
``SOURCE:SHARE:EPOCHS``: ``dataset:0.25:100`` keeps a seeded quarter of the dataset's training topologies
(each with the dataset's own sizings), ``pool:5:40`` the first 5 sizings of every training topology
from the pool dataset (same topologies and split, about 22 sizings each, a few small topologies many more).
Epochs are given per run so that runs can share an optimiser-step budget (the defaults: 12,400 to
13,500 steps of 64). Runs resume: killed, run it again.

    .venv/bin/python benchmarks/surrogate_data_scaling.py            # the six default runs, about an hour
    .venv/bin/python benchmarks/surrogate_data_scaling.py --runs dataset:0.25:100
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

import yaml

from circuits.config import read_yaml
from storage.rows import load_rows
from surrogate.evaluate import evaluate
from surrogate.train import train

DEFAULT_RUNS = ("dataset:0.25:400", "dataset:0.5:200", "dataset:1:100", "pool:5:40", "pool:10:20", "pool:100:10")


def subset(run: str, dataset_rows: list[dict], pool_rows: list[dict] | None) -> list[dict]:
    """The training rows of ``run`` followed by every test row of the dataset."""
    source, share, _ = run.split(":")
    test = [r for r in dataset_rows if r["split"] == "test"]
    if source == "dataset":
        topologies = sorted({r["topology"] for r in dataset_rows if r["split"] == "train"})
        random.Random(0).shuffle(topologies)
        keep = set(topologies[: int(len(topologies) * float(share))])
        return [r for r in dataset_rows if r["split"] == "train" and r["topology"] in keep] + test
    if source != "pool" or pool_rows is None:
        raise SystemExit(f"run {run!r}: the source is 'dataset' or 'pool' (with --pool)")
    by_topology: dict[Any, list[dict]] = {}
    for r in pool_rows:
        if r["split"] == "train":
            by_topology.setdefault(r["topology"], []).append(r)
    per = int(share)
    train_rows = [r for t in sorted(by_topology) for r in sorted(by_topology[t], key=lambda r: r["position"])[:per]]
    return train_rows + test


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="sqlite:///cktloop.db")
    parser.add_argument("--dataset", default="ocb101-seed0", help="the dataset whose held-out rows judge every run")
    parser.add_argument("--pool", default="ocb101-seed0-pool", help="more sizings of the dataset's topologies")
    parser.add_argument("--config", default="surrogate/configs/cpu.yaml", help="the surrogate config each run trains")
    parser.add_argument("--runs", nargs="+", default=DEFAULT_RUNS, help="SOURCE:SHARE:EPOCHS (see above)")
    parser.add_argument("--out", type=Path, default=Path("runs/surrogate-data-scaling"))
    args = parser.parse_args()
    dataset_rows = load_rows(args.db, args.dataset)
    pool_rows = load_rows(args.db, args.pool) if any(r.startswith("pool:") for r in args.runs) else None
    base = read_yaml(args.config)
    table = []
    for run in args.runs:
        out = args.out / run.replace(":", "-")
        out.mkdir(parents=True, exist_ok=True)
        rows = subset(run, dataset_rows, pool_rows)
        data = out / "rows.jsonl"
        if not data.exists():
            data.write_text("".join(json.dumps(r) + "\n" for r in rows))
        config = out / "config.yaml"
        config.write_text(yaml.safe_dump({**base, "epochs": int(run.split(":")[2])}, sort_keys=False))
        result = train(config, data, None, out)
        m = evaluate(result["checkpoint"], args.db, args.dataset)
        n_train = sum(r["split"] == "train" and r["status"] == "ok" for r in rows)
        topologies = len({r["topology"] for r in rows if r["split"] == "train"})
        table.append((run, n_train, topologies, m))
        print(f"{run}: joint-class accuracy {m['joint_acc']:.3f}", flush=True)
    print("\n| run | ok training rows | topologies | joint | gain / UGBW / PM axis | UGBW MAE (decades) | PM MAE (°) |")
    print("|---|---|---|---|---|---|---|")
    for run, n_train, topologies, m in table:
        axes = " / ".join(f"{a:.3f}" for a in m["axis_acc"])
        print(
            f"| {run} | {n_train:,} | {topologies:,} | {m['joint_acc']:.3f} | {axes} | {m['ugbw_mae_dec']:.3f} "
            f"| {m['pm_mae_deg']:.1f} |"
        )


if __name__ == "__main__":
    main()

"""How precise must a surrogate be to reach a given joint-class accuracy? A bound from the labels alone.

Takes the held-out rows of a dataset (ok rows whose canonical topology is not in training and whose
class occurs in training, as ``cktloop evaluate surrogate`` counts them), perturbs their ngspice
labels with Gaussian errors (UGBW in decades, gain in dB, PM in degrees), classifies them with a spec
preset and reports the joint-class accuracy an unbiased predictor with those errors would reach.

    .venv/bin/python benchmarks/surrogate_precision.py --dataset ocb101-seed0 --preset ocb
"""

from __future__ import annotations

import argparse

import numpy as np

from circuits.circuit import Circuit
from circuits.specs import spec_classes
from storage.rows import load_rows
from surrogate.data import pm_field

UGBW_DECADES = (0.0, 0.003, 0.01, 0.02, 0.05, 0.1, 0.2)
GAIN_PM = ((0.0, 0.0), (2.0, 2.0), (5.0, 5.0))


def held_out(rows: list[dict], preset: str) -> list[dict]:
    classes = spec_classes(preset)
    train = [r for r in rows if r["split"] == "train" and classes.classify(r) is not None]
    seen_topologies = {Circuit.from_dict(r["circuit"]).topology_key for r in train}
    seen_classes = {classes.classify(r) for r in train}
    return [
        r
        for r in rows
        if r["split"] == "test"
        and classes.classify(r) in seen_classes
        and Circuit.from_dict(r["circuit"]).topology_key not in seen_topologies
    ]


def accuracy(rows: list[dict], preset: str, ugbw_dec: float, gain_db: float, pm_deg: float, seed: int) -> float:
    classes, pm_name = spec_classes(preset), pm_field(spec_classes(preset))
    rng = np.random.default_rng(seed)
    hits = 0
    for r in rows:
        noisy = dict(r)
        noisy["gain_db"] = r["gain_db"] + rng.normal() * gain_db
        noisy["ugbw_hz"] = r["ugbw_hz"] * 10 ** (rng.normal() * ugbw_dec)
        noisy[pm_name] = r[pm_name] + rng.normal() * pm_deg
        hits += classes.classify(noisy) == classes.classify(r)
    return hits / len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ocb101-seed0")
    parser.add_argument("--db", default="sqlite:///cktloop.db")
    parser.add_argument("--preset", default="ocb", help="spec classes (default ocb)")
    parser.add_argument("--repeats", type=int, default=5, help="noise draws averaged per cell (default 5)")
    args = parser.parse_args()
    rows = held_out(list(load_rows(args.db, args.dataset)), args.preset)
    print(f"{len(rows)} held-out rows of {args.dataset}, {args.preset} classes; joint-class accuracy:\n")
    print("| UGBW error (decades) | " + " | ".join(f"gain ±{g:g} dB, PM ±{p:g}°" for g, p in GAIN_PM) + " |")
    print("|---" * (len(GAIN_PM) + 1) + "|")
    for u in UGBW_DECADES:
        cells = [np.mean([accuracy(rows, args.preset, u, g, p, s) for s in range(args.repeats)]) for g, p in GAIN_PM]
        print(f"| {u:g} | " + " | ".join(f"{c:.3f}" for c in cells) + " |")


if __name__ == "__main__":
    main()

"""Novelty of the family itself: fresh family draws checked against a dataset's training graphs.

The paper's novelty (reference §4.4) is the share of generated graphs that are not a training graph
by CktGen's same-graph test. A generator that samples exactly the family's distribution scores what
fresh family draws score here; more than that needs graphs rarer than the family makes them.

    .venv/bin/python benchmarks/novelty_ceiling.py --dataset ocb101-seed0 --seeds 11 12
"""

from __future__ import annotations

import argparse

from circuits import FamilyConfig, generate
from circuits.encoding import encode
from generator import metrics as m
from generator.data import build_splits
from storage.rows import load_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ocb101-seed0")
    parser.add_argument("--db", default="sqlite:///cktloop.db")
    parser.add_argument("--n", type=int, default=10_000, help="fresh draws per seed (default 10000)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[11, 12], help="family seeds (default 11 12)")
    args = parser.parse_args()
    splits = build_splits(load_rows(args.db, args.dataset), "ocb")
    train = {m.graph_signature(encode(c)) for c in splits.train_circuits}
    for seed in args.seeds:
        # one sizing per topology: every draw is a new topology draw, as a prior sample is
        fresh = [s.circuit for s in generate(args.n, seed, FamilyConfig(sizings_per_topology=1))]
        keys = [m.graph_signature(encode(c)) for c in fresh]
        print(f"seed {seed}: novelty {m.novelty(keys, train):.1%}, unique {len(set(keys)) / len(keys):.1%} of {args.n}")


if __name__ == "__main__":
    main()

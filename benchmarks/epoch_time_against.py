"""Seconds per training epoch of this checkout against another one, side by side in one run.

Each round trains one epoch of every config in each checkout, alternating checkouts, so both see the
same machine load; each run is a fresh process importing that checkout's own code and calling its
``benchmarks/train_epoch_time.py`` (the project's training loop, the test pass and checkpoint excluded).
An older checkout may not open a store migrated since, so give both the same JSONL export as
``--source`` (``cktloop dataset export``).

    git worktree add /tmp/old c141696
    .venv/bin/python benchmarks/epoch_time_against.py /tmp/old --source ocb101.jsonl \\
        --config surrogate/configs/cpu.yaml --config surrogate/configs/cpu-subgraphs.yaml
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

RUN = """
import runpy, sys, tempfile
from pathlib import Path
bench = runpy.run_path("benchmarks/train_epoch_time.py")
model, config, source, dataset = sys.argv[1:5]
with tempfile.TemporaryDirectory() as tmp:
    print(bench["one_epoch"](model, Path(config), source, dataset, Path(tmp))[0])
"""


def epoch_seconds(tree: Path, config: str, source: str, dataset: str) -> float:
    """One epoch of ``config`` with the code of checkout ``tree``, in a fresh process."""
    model = config.split("/")[0]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(
        [sys.executable, "-c", RUN, model, config, source, dataset],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("other", type=Path, help="the checkout to compare with (e.g. a worktree of an older commit)")
    parser.add_argument("--source", required=True, help="dataset rows both checkouts read (a JSONL export)")
    parser.add_argument("--dataset", default="ocb101-seed0")
    parser.add_argument("--config", action="append", required=True, help="a config path (repeatable)")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    source = str(Path(args.source).resolve())
    trees = {"this": Path(__file__).resolve().parent.parent, "other": args.other.resolve()}
    seconds: dict[tuple[str, str], list[float]] = {}
    for r in range(args.rounds):
        for config in args.config:
            for name, tree in trees.items():
                s = epoch_seconds(tree, config, source, args.dataset)
                seconds.setdefault((config, name), []).append(s)
                print(f"round {r + 1}: {config} {name} {s:.2f} s", flush=True)
    print(f"\n| config | s/epoch, this checkout | s/epoch, {args.other} |\n|---|---|---|")
    for config in args.config:
        this, other = (statistics.median(seconds[config, n]) for n in trees)
        print(f"| `{config}` | {this:.2f} | {other:.2f} |")


if __name__ == "__main__":
    main()

"""Training time per epoch of every preset, and what its whole budget would take on this machine.

Runs the project's own training loop (``cktloop train``) for one epoch per preset on a dataset in the
store, in a scratch directory, on the threads each config asks for, and prints seconds per epoch and
the time the config's full epoch count implies.

    .venv/bin/python benchmarks/train_epoch_time.py --dataset ocb101-seed0
    .venv/bin/python benchmarks/train_epoch_time.py --only generator/configs/cpu.yaml
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import yaml

from circuits.config import read_yaml

PRESETS = (
    ("generator", "generator/configs/cpu.yaml"),
    ("generator", "generator/configs/cpu-vae.yaml"),
    ("generator", "generator/configs/cpu-design.yaml"),
    ("generator", "generator/configs/paper.yaml"),
    ("generator", "generator/configs/paper-vae.yaml"),
    ("surrogate", "surrogate/configs/cpu.yaml"),
    ("surrogate", "surrogate/configs/cpu-design.yaml"),
    ("surrogate", "surrogate/configs/paper.yaml"),
)


def one_epoch(model: str, config: Path, source: str, dataset: str, scratch: Path) -> tuple[float, int]:
    """Seconds of one training epoch (the test pass and checkpoint excluded) and the config's epochs."""
    base = read_yaml(config)
    short = scratch / config.name
    no_sampling = {"sample_eval": 0} if model == "generator" else {}  # skip the end-of-run generation
    short.write_text(yaml.safe_dump({**base, "epochs": 1, "progress": False, **no_sampling}))
    if model == "generator":
        from generator.train import train

        result = train(short, source, dataset, out_dir=scratch / config.stem)
        return float(result.seconds_per_epoch or 0.0), int(base["epochs"])
    from surrogate.train import train as train_surrogate

    return float(train_surrogate(short, source, dataset, scratch / config.stem)["seconds"]), int(base["epochs"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ocb101-seed0")
    parser.add_argument("--db", default="sqlite:///cktloop.db")
    parser.add_argument("--only", help="one config path of the list")
    args = parser.parse_args()
    presets = [p for p in PRESETS if args.only in (None, p[1])]
    print("| config | s/epoch | epochs | full budget |\n|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for model, path in presets:
            seconds, epochs = one_epoch(model, Path(path), args.db, args.dataset, Path(tmp))
            print(f"| `{path}` | {seconds:.1f} | {epochs} | {seconds * epochs / 60:.0f} min |", flush=True)


if __name__ == "__main__":
    main()

"""Device-value precision of a generator: training circuits encoded, decoded with their class, compared.

Bank sampling with clean values reads each circuit's sizing from a training circuit's latent, so how
exactly the decoder gives those values back bounds how often bank samples stay in their class. For the
decoded circuits that come back with their topology (types, order and edges), every present device's
grid index is compared with the original's.

    .venv/bin/python benchmarks/value_precision.py --checkpoint generator/checkpoints/cktgen-cpu.pt
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from circuits import Circuit
from circuits.encoding import encode
from generator.data import build_splits
from generator.predict import SHIPPED_CHECKPOINT, Generator
from storage.rows import load_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=SHIPPED_CHECKPOINT)
    parser.add_argument("--dataset", default="ocb101-seed0")
    parser.add_argument("--db", default="sqlite:///cktloop.db")
    parser.add_argument("--n", type=int, default=3_000, help="training circuits to decode (default 3000)")
    args = parser.parse_args()
    generator = Generator.load(args.checkpoint)
    splits = build_splits(load_rows(args.db, args.dataset), generator.spec_classes)
    circuits, spec = splits.train_circuits[: args.n], splits.train.tensors["spec"][: args.n]
    model = generator.model
    decoded = model.decode(model.encode_mean(circuits), spec if model.config.decoder_spec else None)
    original, back = [], []
    for a, b in zip(circuits, decoded):
        if not isinstance(b, Circuit):
            continue
        ea, eb = encode(a), encode(b)
        if ea.n_nodes != eb.n_nodes or (ea.types != eb.types).any() or (ea.adj != eb.adj).any():
            continue
        present = ea.values > 0
        original.append(ea.values[present])
        back.append(eb.values[present])
    k, k_back = np.concatenate(original).astype(float), np.concatenate(back).astype(float)
    error = np.abs(np.log(k_back / k))
    print(
        f"{generator.version}: topology back for {len(original) / len(circuits):.1%} of {len(circuits)}; "
        f"{len(k)} devices: exact {np.mean(k == k_back):.1%}, "
        f"within one grid step {np.mean(np.abs(k - k_back) <= 1):.1%}, "
        f"median |ln ratio| {np.median(error):.3f}, 90th percentile {np.quantile(error, 0.9):.3f}"
    )


if __name__ == "__main__":
    main()

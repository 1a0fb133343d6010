"""Generation time per circuit at batch 1 and batch 256 (the paper reports 4.59 ms on an RTX 4090).

Times ``Generator.generate`` end to end (spec encoding, grammar-constrained greedy decoding, conversion
to validated ``Circuit`` objects) on the given number of torch threads, after a warm-up call.

    .venv/bin/python benchmarks/generation_time.py --threads 2
"""

from __future__ import annotations

import argparse
import time

import torch

from generator.predict import SHIPPED_CHECKPOINT, Generator


def per_circuit_ms(gen: Generator, batch: int, repeats: int, sampling: str) -> float:
    specs = gen.train_classes[:batch] if batch <= len(gen.train_classes) else gen.train_classes
    n_per_spec = max(1, batch // len(specs))
    gen.generate(specs, n_per_spec, seed=0, sampling=sampling)  # warm-up
    start = time.perf_counter()
    for r in range(repeats):
        gen.generate(specs, n_per_spec, seed=r, sampling=sampling)
    return 1000 * (time.perf_counter() - start) / (repeats * len(specs) * n_per_spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=str(SHIPPED_CHECKPOINT))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sampling", choices=("spec", "bank"), default="spec", help="latent sampling (default spec)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    gen = Generator.load(args.checkpoint)
    for batch, repeats in ((1, 200), (256, 60)):
        ms = per_circuit_ms(gen, batch, repeats, args.sampling)
        print(f"batch {batch:>3}: {ms:.3f} ms per circuit ({args.threads} threads, {args.sampling} sampling)")


if __name__ == "__main__":
    main()

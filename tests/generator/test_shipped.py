"""The checkpoints shipped with the package work right after install: load, generate, predict."""

from __future__ import annotations

from pathlib import Path

import pytest

from circuits import Circuit
from generator.predict import DESIGN_CHECKPOINT, SHIPPED_CHECKPOINT, Generator
from surrogate.predict import DESIGN_CHECKPOINT as SURROGATE_DESIGN
from surrogate.predict import SHIPPED_CHECKPOINT as SURROGATE
from surrogate.predict import Surrogate

VAE = SHIPPED_CHECKPOINT.parent / "cktgen-vae-cpu.pt"
SHIPPED = [SHIPPED_CHECKPOINT, DESIGN_CHECKPOINT, VAE, SURROGATE, SURROGATE_DESIGN]


def test_shipped_checkpoints_are_small_and_carry_their_metrics():
    import torch

    assert sum(p.stat().st_size for p in SHIPPED) <= 20e6
    for path in SHIPPED:
        state = torch.load(path, map_location="cpu", weights_only=True)
        assert "optimizer" not in state and state.get("metrics"), path.name


@pytest.mark.parametrize("path", [SHIPPED_CHECKPOINT, DESIGN_CHECKPOINT, VAE], ids=lambda p: Path(p).name)
def test_shipped_generators_generate_valid_circuits(path):
    gen = Generator.load(path)
    specs = gen.train_classes[:: max(1, len(gen.train_classes) // 5)]
    out = gen.generate(specs, 4, seed=0)
    assert len(out) == 4 * len(specs) and all(isinstance(c, Circuit) for c in out)


@pytest.mark.parametrize("path", [SURROGATE, SURROGATE_DESIGN], ids=lambda p: Path(p).name)
def test_shipped_surrogates_predict(path):
    from circuits import generate

    sur = Surrogate.load(path, device="cpu")
    rows = sur.predict([s.circuit for s in generate(8, 1)])
    assert len(rows) == 8 and all({"spec_class", "fom", "gain_db", "ugbw_hz"} <= set(r) for r in rows)


def test_shipped_vae_reconstructs_circuits_it_never_saw():
    """Fresh family draws (a seed no dataset uses; most topologies are not in training) come back whole."""
    from circuits import generate
    from circuits.encoding import encode
    from generator.metrics import recon_accuracy

    circuits = [s.circuit for s in generate(120, 2026)]
    decoded = Generator.load(VAE).reconstruct(circuits)
    got = [encode(d) if isinstance(d, Circuit) else None for d in decoded]
    assert recon_accuracy([encode(c) for c in circuits], got) >= 0.95

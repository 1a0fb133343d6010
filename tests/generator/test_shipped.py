"""The checkpoints shipped with the package work right after install: load, generate, predict."""

from __future__ import annotations

from pathlib import Path

import pytest

from circuits import Circuit
from generator.predict import DESIGN_CHECKPOINT, SHIPPED_CHECKPOINT, VAE_CHECKPOINT, Generator
from surrogate.predict import DESIGN_CHECKPOINT as SURROGATE_DESIGN
from surrogate.predict import SHIPPED_CHECKPOINT as SURROGATE
from surrogate.predict import Surrogate

VAE = VAE_CHECKPOINT
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


def test_shipped_surrogate_reads_circuits_it_never_saw():
    """Fresh family draws (a seed no dataset uses), labelled by the MNA backend: the ocb surrogate puts at least
    a quarter of them in their joint class and their UGBW within a median 0.1 decades (0.41 and 0.044 when
    shipped on 2026-12-02; the subgraph DIGIN it replaced: 0.14 and 0.145)."""

    import numpy as np

    from circuits import generate
    from simulator.mna import MnaBackend

    sur = Surrogate.load(SURROGATE, device="cpu")
    circuits = [s.circuit for s in generate(300, 2026)]
    measured = MnaBackend().simulate(circuits)
    pairs = [(p, m) for p, m in zip(sur.predict(circuits), measured) if sur.classes.classify(m.to_dict())]
    joint = np.mean([p["spec_class"] == sur.classes.classify(m.to_dict()) for p, m in pairs])
    ugbw = np.median([abs(np.log10(p["ugbw_hz"] / m.ugbw_hz)) for p, m in pairs])
    assert len(pairs) > 250 and joint >= 0.25 and ugbw <= 0.1, (len(pairs), joint, ugbw)


@pytest.mark.parametrize(("model", "shipped"), [("recon", VAE), ("prior", VAE), ("cond-gen", SHIPPED_CHECKPOINT)])
def test_evaluate_defaults_to_the_model_the_paper_measures(capsys, rows, tmp_path, model, shipped):
    """Recon-Acc and prior sampling are the recon-only VAE's figures (paper Table 5), so `cktloop evaluate recon`
    and `evaluate prior` load it without --checkpoint; conditional generation loads the conditional model."""
    import json

    from orchestrator.cli.app import main

    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    extra = {"recon": [], "prior": ["--samples", "4", "--decodes", "1"], "cond-gen": ["--no-sim", "--rounds", "1"]}
    assert main(["evaluate", model, "--data", str(data), "--json", *extra[model]]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["generator"] == Generator.load(shipped).version
    if model == "recon":  # the shipped VAE reconstructs all 847 held-out circuits of ocb101-seed0
        assert result["recon_acc"] >= 0.9

"""Tiny in-process data for the generator tests: random OCB circuits simulated with the MNA backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from circuits import FamilyConfig, generate
from simulator.mna import MnaBackend

TINY_MODEL = {
    "d_model": 32,
    "d_embed": 16,
    "gin_hidden": 32,
    "enc_layers": 1,
    "enc_heads": 2,
    "enc_ff": 64,
    "value_hidden": 16,
    "latent_dim": 16,
    "spec_embed": 16,
    "spec_hidden": 32,
    "dec_layers": 1,
    "dec_heads": 2,
    "dec_mlp_ratio": 2,
    "head_hidden": 32,
    "topo_dim": 16,
    "edge_hidden": 16,
    "value_head_hidden": 16,
    "gde_hidden": 8,
}


def make_rows(n: int, seed: int, n_test: int) -> list[dict]:
    circuits = [s.circuit for s in generate(n, seed, FamilyConfig(sizings_per_topology=2))]
    results = MnaBackend().simulate(circuits)
    rows = []
    for i, (c, perf) in enumerate(zip(circuits, results)):
        row = {"id": f"c{i}", "split": "test" if i >= n - n_test else "train", "circuit": c.to_dict()}
        row.update(perf.to_dict())
        rows.append(row)
    return rows


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """One intra-op thread: on a shared 2-core box a second thread mostly waits for a busy core."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def rows() -> list[dict]:
    return make_rows(80, seed=3, n_test=16)


def write_config(path: Path, model: dict | None = None, **train) -> Path:
    """A tiny TrainConfig YAML."""
    import yaml

    data = {
        "seed": 0,
        "epochs": 2,
        "batch_size": 16,
        "lr": 1.0e-3,
        "checkpoint_every": 1,
        "sample_eval": 8,
        "progress": False,
        "threads": 1,
    }
    data.update(train)
    data["model"] = {**TINY_MODEL, **(model or {})}
    path.write_text(yaml.safe_dump(data))
    return path

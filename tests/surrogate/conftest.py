"""Tiny in-process data for the surrogate tests: generated circuits labelled by the MNA backend."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from circuits import generate
from simulator.mna import MnaBackend

TINY_MODEL = """
model:
  type_dim: 8
  pos_dim: 8
  hidden: 16
  dropout: 0.1
  readout_hidden: 32
  graph_dim: 16
  size_hidden: 16
  size_dim: 4
  node_values: true
  embed_dim: 16
  spec_emb_dim: 8
  head_hidden: 16
  class_reduction: mean
  w_align: 1.0
"""


@pytest.fixture(autouse=True)
def _one_thread():  # type: ignore[no-untyped-def]
    """Tiny models gain nothing from intra-op threads, and lose a lot on a busy shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_rows(n: int, seed: int = 7, n_test: int = 0) -> list[dict]:
    samples = list(generate(n, seed))
    perfs = MnaBackend().simulate([s.circuit for s in samples])
    rows = []
    for s, p in zip(samples, perfs):
        rows.append({
            "id": s.circuit.key, "position": s.index, "topology": s.circuit.topology_key,
            "topology_number": s.topology, "sizing": s.sizing,
            "split": "test" if s.index >= n - n_test else "train",
            "circuit": s.circuit.to_dict(), **p.to_dict(),
        })
    return rows


@pytest.fixture(scope="session")
def rows() -> list[dict]:
    return make_rows(120, n_test=24)


@pytest.fixture(scope="session")
def jsonl(rows: list[dict], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("surrogate-data") / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def tiny_config(tmp_path: Path):  # type: ignore[no-untyped-def]
    def write(epochs: int = 2, **extra: object) -> Path:
        path = tmp_path / f"tiny-{epochs}.yaml"
        lines = [f"epochs: {epochs}", "batch_size: 16", "lr: 3.0e-3", "seed: 3", "checkpoint_every: 1",
                 "device: cpu", "progress: false", *(f"{k}: {v}" for k, v in extra.items())]
        path.write_text("\n".join(lines) + "\n" + TINY_MODEL)
        return path

    return write

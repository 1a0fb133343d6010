"""The decoding grammar admits every valid family circuit and nothing that fails validation."""

from __future__ import annotations

import pytest
import torch

from circuits import Circuit, FamilyConfig, generate
from circuits.circuit import SIDE_POSITIONS
from circuits.encoding import encode
from generator.config import CktGenConfig
from generator.decoding import to_circuits
from generator.grammar import GrammarState
from generator.model import CktGen

from .conftest import TINY_MODEL


def _walk(circuit: Circuit) -> None:
    """Teacher-force one circuit through the grammar, asserting every true step is allowed."""
    e = encode(circuit)
    g = GrammarState(1, torch.device("cpu"))
    for i in range(1, e.n_nodes):
        t, p = int(e.types[i]), int(e.pos[i])
        assert g.allowed_pairs(i)[0, t, p], f"step {i}: ({t}, {p}) refused for {circuit.to_dict()}"
        into = torch.tensor(e.adj[:i, i], dtype=torch.float32)
        if p in SIDE_POSITIONS:
            assert into.sum() == 1 and g.allowed_sources(i)[0, int(into.argmax())]
        else:
            assert torch.equal(g.spine_edges(i)[0], into), f"step {i}: spine edges differ"
        g.advance(i, torch.tensor([t]), torch.tensor([p]), torch.tensor([True]))


def test_every_family_circuit_follows_the_grammar():
    for sample in generate(600, seed=11, config=FamilyConfig(sizings_per_topology=1)):
        _walk(sample.circuit)


def test_after_a_side_before_stage_two_only_stage_three_may_follow_stage_two():
    g = GrammarState(1, torch.device("cpu"))
    for step, (t, p) in enumerate([(6, 2), (2, 5), (7, 3)], start=1):  # stage 1, a B side (R), stage 2
        assert g.allowed_pairs(step)[0, t, p]
        g.advance(step, torch.tensor([t]), torch.tensor([p]), torch.tensor([True]))
    allowed = g.allowed_pairs(4)[0]
    assert allowed[:, 4].any() and not allowed[:, 5:].any() and not allowed[1, 1]  # s3 only: no side, no Out


@pytest.mark.parametrize("bias", ["none", "sides", "out", "edges_off"])
def test_constrained_decoding_of_an_untrained_model_is_always_valid(bias):
    torch.manual_seed(0)
    model = CktGen(CktGenConfig(**TINY_MODEL))
    with torch.no_grad():
        head = model.head_pos[-1].bias
        if bias == "sides":
            head[5:8] += 20.0  # the model wants side nodes forever
        elif bias == "out":
            model.head_type[-1].bias[1] += 20.0  # the model wants to stop at once
            head[1] += 20.0
        elif bias == "edges_off":
            model.edge_out.bias.fill_(-20.0)  # the model wants no edges at all
    z = torch.randn(400, TINY_MODEL["latent_dim"], generator=torch.Generator().manual_seed(1)) * 3
    results = to_circuits(model.decode_latents(z), model.config.grid)
    invalid = [str(r) for r in results if not isinstance(r, Circuit)]
    assert not invalid, invalid[:3]
    stages = {c.n_stages for c in results}
    if bias == "out":
        assert stages == {2}  # stops as early as the grammar lets it
    if bias == "sides":
        assert all(len(c.nodes) == 8 for c in results)  # fills every slot, still valid


def test_free_decoding_is_still_available():
    torch.manual_seed(0)
    model = CktGen(CktGenConfig(**{**TINY_MODEL, "grammar": False}))
    z = torch.randn(200, TINY_MODEL["latent_dim"], generator=torch.Generator().manual_seed(1))
    results = to_circuits(model.decode_latents(z), model.config.grid)
    assert any(not isinstance(r, Circuit) for r in results)  # an untrained free decoder makes invalid graphs

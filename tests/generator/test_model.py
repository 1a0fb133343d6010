from __future__ import annotations

import pytest
import torch

from circuits import Circuit, CircuitError, CktLoopError
from circuits.circuit import MAX_NODES
from circuits.encoding import PAD_POS, PAD_TYPE
from circuits.subgraphs import N_TYPES
from generator.config import CktGenConfig
from generator.data import build_splits, denormalise_values, normalise_values
from generator.decoding import Draw
from generator.losses import LOSS_TERMS, recon_parts
from generator.model import CktGen

from .conftest import TINY_MODEL


def tiny(**kw) -> CktGen:
    torch.manual_seed(0)
    return CktGen(CktGenConfig(**{**TINY_MODEL, **kw}))


@pytest.fixture(scope="module")
def splits(rows):
    return build_splits(rows, "ocb")


@pytest.mark.parametrize(("streams", "layout"), [(1, "global"), (3, "global"), (1, "nodes"), (3, "nodes")])
def test_forward_shapes_and_losses(splits, streams, layout):
    model = tiny(dec_streams=streams, latent_layout=layout)
    batch = splits.train.batch(slice(0, 8))
    out = model(batch)
    assert out["type_logits"].shape == (8, MAX_NODES, N_TYPES)
    assert out["pos_logits"].shape == (8, MAX_NODES, 8)
    assert out["edge_logits"].shape == (8, MAX_NODES, MAX_NODES)
    assert out["values"].shape == (8, MAX_NODES, 3)
    assert out["mu_ckt"].shape == out["mu_spec"].shape == (8, 16)
    losses = out["losses"]
    assert set(LOSS_TERMS) <= set(losses) and torch.isfinite(losses["total"])
    losses["total"].backward()
    assert model.enc_in.weight.grad is not None and model.spec_mu.weight.grad is not None


def test_losses_switch_off(splits):
    model = tiny(nce=False, gde=False, align=False)
    losses = model(splits.train.batch(slice(0, 8)))["losses"]
    assert not {"nce", "gde", "align"} & set(losses)
    assert {"recon_ckt", "recon_spec", "kl", "total"} <= set(losses)
    expected = losses["recon_ckt"] + losses["recon_spec"] + 1e-5 * losses["kl"]
    assert torch.allclose(losses["total"], expected)


def test_the_recon_vae_needs_no_spec_and_regularises_towards_the_prior(splits):
    model = tiny(recon_spec=False, align=False, nce=False, gde=False, kl_mode="prior", w_kl=5e-3)
    model.eval()  # latents are the means, so the KL term can be recomputed by hand
    batch = {k: v for k, v in splits.train.batch(slice(0, 8)).items() if k != "spec"}
    out = model(batch)
    mu, lv = out["mu_ckt"], out["logvar_ckt"]
    kl = 0.5 * (lv.exp() + mu**2 - 1.0 - lv).sum()
    assert torch.allclose(out["losses"]["kl"], kl)
    assert torch.allclose(out["losses"]["total"], out["losses"]["recon_ckt"] + 5e-3 * kl)
    with pytest.raises(ValueError, match="kl_mode"):
        tiny(kl_mode="both")


def test_padding_content_does_not_change_the_encoding(splits):
    model = tiny().eval()
    batch = splits.train.batch(slice(0, 8))
    assert (~batch["mask"]).any()
    mu, lv = model.encode_circuit(batch)
    noisy = {k: v.clone() for k, v in batch.items()}
    pad = ~batch["mask"]
    g = torch.Generator().manual_seed(1)
    noisy["types"][pad] = torch.randint(0, N_TYPES, (int(pad.sum()),), generator=g)
    noisy["pos"][pad] = torch.randint(0, 8, (int(pad.sum()),), generator=g)
    noisy["values"][pad] = torch.rand(int(pad.sum()), 3, generator=g)
    mu2, lv2 = model.encode_circuit(noisy)
    assert torch.allclose(mu, mu2, atol=1e-5) and torch.allclose(lv, lv2, atol=1e-5)
    noisy["types"][pad], noisy["pos"][pad] = PAD_TYPE, PAD_POS  # and PAD tokens are not In/position 0
    assert not torch.equal(model.enc_type.weight[PAD_TYPE], model.enc_type.weight[0])


def test_node_slots_padded_slots_are_the_prior_and_a_slot_reaches_only_its_node_and_later(splits):
    model = tiny(latent_layout="nodes", kl_mode="prior", recon_spec=False, align=False, nce=False, gde=False).eval()
    batch = splits.train.batch(slice(0, 8))
    mu, lv = model.encode_circuit(batch)
    slot = model.config.latent_dim // MAX_NODES
    pad = ~batch["mask"]
    assert pad.any()
    assert (mu.view(8, MAX_NODES, slot)[pad] == 0).all() and (lv.view(8, MAX_NODES, slot)[pad] == 0).all()
    z = torch.randn(8, model.config.latent_dim, generator=torch.Generator().manual_seed(3))
    moved = z.clone()
    k = 4
    moved.view(8, MAX_NODES, slot)[:, k] += 3.0
    with torch.no_grad():
        a = model.decode_streams(z, batch)["type_logits"]
        b = model.decode_streams(moved, batch)["type_logits"]
    torch.testing.assert_close(a[:, :k], b[:, :k])  # position i sees slots 0..i only
    assert not torch.allclose(a[:, k], b[:, k])
    with pytest.raises(ValueError, match="multiple of 8"):
        tiny(latent_layout="nodes", latent_dim=20)
    with pytest.raises(ValueError, match="latent_layout"):
        tiny(latent_layout="per-node")


def test_free_decoder_builds_a_dag_by_construction():
    model = tiny(grammar=False)
    with torch.no_grad():
        for p in (model.edge_out.bias,):
            p.fill_(10.0)  # push every edge probability towards 1
    z = torch.randn(64, 16, generator=torch.Generator().manual_seed(2)) * 3
    g = model.decode_latents(z)
    adj = g["adj"]
    assert torch.equal(adj, adj.triu(1))  # no edge to the same or an earlier node
    n = g["n_nodes"]
    assert ((n >= 2) & (n <= MAX_NODES)).all()
    rows = torch.arange(64)
    assert (g["types"][rows, n - 1] == 1).all()  # Out last, forced at the 8th node at the latest
    for j in range(64):  # nothing after Out, and every non-Out node has an outgoing edge
        k = int(n[j])
        assert (g["types"][j, k:] == PAD_TYPE).all() and (adj[j, k:].sum() == 0)
        assert (adj[j, : k - 1, :k].sum(-1) > 0).all()


@pytest.mark.parametrize(("streams", "layout"), [(1, "global"), (3, "global"), (1, "nodes")])
def test_cached_decoding_steps_match_the_full_causal_pass(splits, streams, layout):
    """Greedy decoding feeds one step at a time with cached keys and values; it must see what the full pass sees."""
    model = tiny(dec_streams=streams, dec_dropout=0.0, latent_layout=layout).eval()
    batch = splits.train.batch(slice(0, 6))
    z = torch.randn(6, model.config.latent_dim)
    with torch.no_grad():
        full = model.decode_streams(z, batch)
        state: dict = {}
        for i in range(1, MAX_NODES):
            step = model.decode_step(z, batch, i, state)
            torch.testing.assert_close(step["type_logits"], full["type_logits"][:, i], atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(step["pos_logits"], full["pos_logits"][:, i], atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(step["topo"], full["topo"][:, : i + 1], atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(step["h_last"], full["h_next"][:, i - 1], atol=1e-5, rtol=1e-4)


def test_generate_count_types_and_determinism(splits):
    model = tiny()
    specs = sorted(set(splits.train.classes))[:3]
    out = model.generate(specs, 4, generator=torch.Generator().manual_seed(0))
    assert len(out) == 12 and all(isinstance(r, Circuit | CircuitError) for r in out)
    again = model.generate(specs, 4, generator=torch.Generator().manual_seed(0))
    assert [str(a) for a in out] == [str(b) for b in again]
    with pytest.raises(CktLoopError, match="not a class"):
        model.generate([(99, 0, 0)], 1)
    assert len(model.sample_prior(5)) == 5
    circuits = splits.train_circuits[:6]
    assert len(model.reconstruct(circuits)) == 6


def _same_graph(a: Circuit, b: Circuit | CircuitError) -> bool:
    return isinstance(b, Circuit) and [n.type for n in a.nodes] == [n.type for n in b.nodes] and a.edges == b.edges


@pytest.mark.slow
@pytest.mark.parametrize(("layout", "latent_dim"), [("global", 16), ("nodes", 32)])  # nodes: 4 dimensions a slot
def test_tiny_model_overfits_32_circuits(splits, layout, latent_dim):
    model = tiny(
        latent_layout=layout,
        latent_dim=latent_dim,
        gin_dropout=0.0,
        enc_dropout=0.0,
        pe_dropout=0.0,
        dec_dropout=0.0,
        recon_spec=False,
        nce=False,
        gde=False,
        align=False,
        kl=False,
        d_model=64,
        enc_heads=4,
        dec_heads=4,
        enc_ff=128,
    )
    data = splits.train
    batch = data.batch(slice(0, 32))
    circuits = splits.train_circuits[:32]
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3)
    model.train()
    for _ in range(160):
        loss = model(batch)["losses"]["total"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    recon = model.reconstruct(circuits)
    ordered = [Circuit(tuple(c.nodes[i] for i in c.topological_order()), _reindex(c)) for c in circuits]
    acc = sum(_same_graph(a, b) for a, b in zip(ordered, recon)) / len(circuits)
    assert acc >= 0.9


def _reindex(c: Circuit) -> tuple[tuple[int, int], ...]:
    index = {old: new for new, old in enumerate(c.topological_order())}
    return tuple((index[u], index[v]) for u, v in c.edges)


def test_log_value_space_round_trips_and_costs_errors_by_their_ratio(splits):
    model = tiny(value_space="log")
    k = torch.tensor([1.0, 2.0, 10.0, 50.0, 101.0])
    linear = normalise_values(k, "ocb")
    u = model.to_value_space(linear)
    assert u.min() == 0.0 and u.max() == 1.0 and (u.diff() > 0).all()
    torch.testing.assert_close(denormalise_values(model.from_value_space(u), "ocb"), k)
    # the value loss is the squared ln ratio: 10 → 20 costs what 50 → 100 costs, not five times less
    batch = splits.train.batch(slice(0, 4))
    present = (batch["value_mask"] * batch["mask"][..., None]).bool()
    out = model(batch)
    for factor in (2.0, 0.5):
        out["values"] = model.to_value_space(
            normalise_values((denormalise_values(batch["values"], "ocb") * factor).clamp(1.0, 101.0), "ocb")
        )
        se = recon_parts(model, out, batch)["value_se"]
        k_true = denormalise_values(batch["values"], "ocb")[present]
        k_moved = (k_true * factor).clamp(1.0, 101.0)
        torch.testing.assert_close(se, (k_moved / k_true).log().pow(2).sum(), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="value_space"):
        tiny(value_space="db")


def test_a_decoder_that_sees_the_class_decodes_by_it_and_without_it(splits):
    model = tiny(latent_layout="nodes", latent_dim=32, decoder_spec=True, latent_noise=0.3, dec_dropout=0.0).eval()
    batch = splits.train.batch(slice(0, 6))
    losses = model.train()(batch)["losses"]
    assert torch.isfinite(losses["total"])
    losses["total"].backward()
    assert model.dec_spec[1].weight.grad is not None and model.dec_no_spec.grad is not None
    model.eval()
    z = torch.randn(6, 32, generator=torch.Generator().manual_seed(4))
    spec = batch["spec"]
    with torch.no_grad():
        cond = model.decoder_condition(spec)
        full = model.decode_streams(z, batch, cond=cond)
        state: dict = {}
        for i in range(1, MAX_NODES):  # the cached steps see the class as the full pass does
            step = model.decode_step(z, batch, i, state, cond)
            torch.testing.assert_close(step["type_logits"], full["type_logits"][:, i], atol=1e-5, rtol=1e-4)
        other = model.decode_streams(z, batch)
    assert not torch.allclose(full["type_logits"], other["type_logits"])  # no class: the learned "no class" token
    assert len(model.reconstruct(splits.train_circuits[:3])) == 3  # reconstruction needs no class
    with pytest.raises(ValueError, match="decoder_spec needs a spec-conditioned model"):
        tiny(decoder_spec=True, kl_mode="prior")
    with pytest.raises(ValueError, match="spec_dropout"):
        tiny(spec_dropout=1.5)


def test_draw_is_greedy_at_zero_and_follows_the_softmax_above():
    scores = torch.log(torch.tensor([[0.2, 0.8, 0.0]])).expand(20_000, -1)  # the last choice is masked (-inf)
    assert (Draw().pick(scores) == 1).all()
    rng = torch.Generator().manual_seed(0)
    drawn = Draw(1.0, rng).pick(scores)
    assert (drawn != 2).all() and abs((drawn == 0).float().mean().item() - 0.2) < 0.01
    sharp = Draw(0.5, rng).pick(scores)  # softmax(2 log p): 0.04 / (0.04 + 0.64)
    assert abs((sharp == 0).float().mean().item() - 0.04 / 0.68) < 0.01
    logits = torch.full((20_000, 1), 1.0)
    assert (Draw().edges(logits, 0.5) == 1).all() and (Draw().edges(-logits, 0.5) == 0).all()
    coins = Draw(1.0, rng).edges(logits, 0.5)
    assert abs(coins.mean().item() - torch.sigmoid(torch.tensor(1.0)).item()) < 0.01


@pytest.mark.parametrize("grammar", [True, False])
def test_prior_samples_decoded_repeatedly_differ_only_when_drawn(grammar):
    model = tiny(grammar=grammar).eval()
    greedy = model.sample_prior(6, torch.Generator().manual_seed(1), decodes=3)
    assert len(greedy) == 18
    assert all(str(greedy[i]) == str(greedy[i + 1]) == str(greedy[i + 2]) for i in range(0, 18, 3))
    drawn = model.sample_prior(6, torch.Generator().manual_seed(1), decodes=3, temperature=2.0)
    assert len({str(c) for c in drawn}) > len({str(c) for c in greedy})
    again = model.sample_prior(6, torch.Generator().manual_seed(1), decodes=3, temperature=2.0)
    assert [str(c) for c in drawn] == [str(c) for c in again]
    if grammar:  # constrained drawing only ever picks choices that complete a circuit
        assert all(isinstance(c, Circuit) for c in drawn)
    with pytest.raises(CktLoopError, match="decodes"):
        model.sample_prior(2, decodes=0)
    with pytest.raises(CktLoopError, match="temperature"):
        model.sample_prior(2, temperature=-1.0)


@pytest.mark.parametrize("clean", [True, False])
def test_the_value_head_reads_the_latent_bank_sampling_gives_it(splits, clean):
    model = tiny(latent_layout="nodes", latent_dim=32, decoder_spec=True, latent_noise=1.0, clean_value_latent=clean)
    seen: list[torch.Tensor] = []
    read = model.node_values
    model.node_values = lambda h, z, first=0: seen.append(z) or read(h, z, first)
    out = model.train()(splits.train.batch(slice(0, 6)))
    (z,) = seen  # one teacher-forced pass decodes from both latents: circuit rows, then spec rows
    both = torch.cat([out["z_ckt"], out["z_spec"]])
    assert torch.equal(z, both) is clean  # the noisy latents differ from the samples everywhere

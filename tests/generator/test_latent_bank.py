from __future__ import annotations

import pytest
import torch

from circuits import CktLoopError
from generator.checkpoint import load_checkpoint, save_checkpoint
from generator.data import build_splits
from generator.latent_bank import LatentBank
from generator.predict import Generator
from generator.sampling import Sampling
from generator.train import bank_checkpoint, train

from .conftest import write_config


@pytest.fixture(scope="module")
def splits(rows):
    return build_splits(rows, "ocb")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, splits):
    out = tmp_path_factory.mktemp("bank")
    return train(write_config(out / "cfg.yaml", epochs=1, sample_eval=0), splits, out_dir=out / "run")


def _bank() -> LatentBank:
    latents = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 5.0]])
    return LatentBank(latents, ((0, 1, 2), (0, 1, 2), (3, 3, 3)))


def test_sample_draws_latents_of_the_requested_class_only():
    bank = _bank()
    z, found = bank.sample([(0, 1, 2), (9, 9, 9), (3, 3, 3)], 50, torch.Generator().manual_seed(0))
    assert z.shape == (150, 2) and found.tolist() == [True] * 50 + [False] * 50 + [True] * 50
    assert {tuple(r) for r in z[:50].tolist()} == {(1.0, 0.0), (2.0, 0.0)}  # both circuits of the class drawn
    assert torch.equal(z[50:100], torch.zeros(50, 2))
    assert torch.equal(z[100:], torch.tensor([[0.0, 5.0]]).expand(50, 2))


def test_bank_noise_is_in_prior_standard_deviations_and_values_read_the_clean_latent(trained, splits):
    gen = Generator.load(trained.checkpoint)
    cls = splits.train.classes[0]
    members = gen.bank.latents[[i for i, c in enumerate(gen.bank.classes) if c == cls]]
    seen = {}
    gen.model.decode = lambda z, spec, value_z: seen.update(z=z, value_z=value_z) or []
    gen.generate([cls], 3000, seed=2, sampling=Sampling("bank", bank_noise=0.5))
    clean = seen["value_z"]
    assert all((members == row).all(1).any() for row in clean)  # every clean latent is a bank latent
    torch.testing.assert_close((seen["z"] - clean).std(0), 0.5 * gen.model.prior_std, rtol=0.1, atol=0.0)
    torch.testing.assert_close((seen["z"] - clean).mean(0), torch.zeros_like(clean[0]), rtol=0, atol=0.05)


def test_state_round_trip_and_mismatches_are_named():
    bank = _bank()
    back = LatentBank.from_state(bank.to_state(), latent_dim=2, n_axes=3)
    assert back.classes == bank.classes and torch.equal(back.latents, bank.latents)  # exact in half precision
    with pytest.raises(CktLoopError, match="latent is 4"):
        LatentBank.from_state(bank.to_state(), latent_dim=4, n_axes=3)
    with pytest.raises(CktLoopError, match=r"expected \(3, 2\)"):
        LatentBank.from_state(bank.to_state(), latent_dim=2, n_axes=2)
    with pytest.raises(CktLoopError, match="'latents' and 'classes'"):
        LatentBank.from_state({"latents": bank.latents}, latent_dim=2, n_axes=3)
    with pytest.raises(CktLoopError, match="2 classes"):
        LatentBank(torch.zeros(3, 2), ((0,), (1,)))


def test_training_stores_the_training_latents(trained, splits):
    gen = Generator.load(trained.checkpoint)
    assert gen.bank is not None and gen.bank.classes == tuple(splits.train.classes)
    assert torch.allclose(gen.bank.latents, gen.model.encode_mean(splits.train_circuits), atol=1e-2)  # half precision


def test_bank_sampling_decodes_the_latents_of_the_class(trained, splits):
    gen = Generator.load(trained.checkpoint)
    cls = splits.train.classes[0]
    members = [i for i, c in enumerate(gen.bank.classes) if c == cls]
    decoded = {str(r) for r in gen.model.decode(gen.bank.latents[members])}
    exact = Sampling("bank", bank_noise=0.0)
    out = gen.generate([cls], 20, seed=3, sampling=exact)
    assert len(out) == 20 and {str(r) for r in out} <= decoded
    assert [str(r) for r in out] == [str(r) for r in gen.generate([cls], 20, seed=3, sampling=exact)]
    noisy = [str(r) for r in gen.generate([cls], 20, seed=3, sampling=Sampling("bank", bank_values="noisy"))]
    assert not set(noisy) <= decoded  # with noisy values the default noise moves off the training circuits
    with pytest.raises(CktLoopError, match="bank_noise must be >= 0"):
        Sampling("bank", bank_noise=-0.1)
    with pytest.raises(CktLoopError, match="unknown bank_values 'raw'"):
        Sampling("bank", bank_values="raw")
    assert Sampling.of("bank") == Sampling("bank") and Sampling.of(same := Sampling("bank", 0.0)) is same
    # a class the bank lacks falls back to the spec latent
    gen.bank = LatentBank(gen.bank.latents[members], tuple(cls for _ in members))
    other = next(c for c in gen.train_classes if c != cls)
    spec_out = [str(r) for r in gen.generate([other], 4, seed=3, sampling="spec")]
    assert [str(r) for r in gen.generate([other], 4, seed=3, sampling="bank")] == spec_out


def test_clean_bank_values_move_the_structure_and_keep_the_banked_sizing(trained, splits):
    gen = Generator.load(trained.checkpoint)
    cls = splits.train.classes[0]
    clean = gen.generate([cls], 40, seed=5, sampling=Sampling("bank", bank_noise=1.0))
    noisy = gen.generate([cls], 40, seed=5, sampling=Sampling("bank", bank_noise=1.0, bank_values="noisy"))
    assert [c.topology_key for c in clean] == [c.topology_key for c in noisy]  # the same perturbed structure
    assert [c.key for c in clean] != [c.key for c in noisy]  # values read from another latent
    exact = gen.generate([cls], 40, seed=5, sampling=Sampling("bank", bank_noise=0.0, bank_values="noisy"))
    clean_exact = gen.generate([cls], 40, seed=5, sampling=Sampling("bank", bank_noise=0.0))
    assert [c.key for c in clean_exact] == [c.key for c in exact]
    z = torch.randn(4, gen.model.config.latent_dim, generator=torch.Generator().manual_seed(1))
    with pytest.raises(CktLoopError, match=r"value_z \(3, 16\) must match z \(4, 16\)"):
        gen.model.decode_latents(z, value_z=z[:3])


def test_bank_sampling_needs_a_bank_and_a_known_mode(trained, tmp_path):
    state = load_checkpoint(trained.checkpoint)
    del state["latent_bank"]
    state["model"]["prior_std"] = torch.ones_like(state["model"]["prior_std"])  # as a mid-training checkpoint
    bare = tmp_path / "bare.pt"
    save_checkpoint(bare, {k: v for k, v in state.items() if k not in ("format", "format_version")})
    gen = Generator.load(bare)
    cls = gen.train_classes[0]
    assert len(gen.generate([cls], 2, sampling="spec")) == 2
    with pytest.raises(CktLoopError, match=r"bare\.pt: no latent bank stored; add one with `cktloop bank"):
        gen.generate([cls], 2, sampling="bank")
    with pytest.raises(CktLoopError, match="unknown sampling 'prior'"):
        gen.generate([cls], 2, sampling="prior")


def test_bank_checkpoint_restores_the_bank_from_the_training_data(trained, splits, rows, tmp_path):
    state = load_checkpoint(trained.checkpoint)
    del state["latent_bank"]
    state["model"]["prior_std"] = torch.ones_like(state["model"]["prior_std"])  # as a mid-training checkpoint
    bare = tmp_path / "bare.pt"
    save_checkpoint(bare, {k: v for k, v in state.items() if k not in ("format", "format_version")})
    bank = bank_checkpoint(bare, splits)
    assert len(bank) == len(splits.train)
    banked, trained_gen = Generator.load(bare), Generator.load(trained.checkpoint)
    assert torch.equal(banked.bank.latents, trained_gen.bank.latents)
    torch.testing.assert_close(banked.model.prior_std, trained_gen.model.prior_std)  # the bank's noise scale
    assert not torch.allclose(banked.model.prior_std, torch.ones_like(banked.model.prior_std))
    other = build_splits(rows[: len(rows) // 2], "ocb")
    with pytest.raises(CktLoopError, match=r"bare\.pt: trained on different data"):
        bank_checkpoint(bare, other)


def test_the_recon_only_vae_has_no_bank(tmp_path, splits):
    vae = {"kl_mode": "prior", "recon_spec": False, "align": False, "nce": False, "gde": False}
    result = train(write_config(tmp_path / "vae.yaml", model=vae, epochs=1, sample_eval=0), splits, out_dir=tmp_path)
    assert "latent_bank" not in load_checkpoint(result.checkpoint)
    with pytest.raises(CktLoopError, match="no latent bank stored; a reconstruction-only model has none"):
        Generator.load(result.checkpoint).generate([splits.train.classes[0]], 2, sampling="bank")
    with pytest.raises(CktLoopError, match="no trained spec latent"):
        bank_checkpoint(result.checkpoint, splits)

"""The generator side of closed-loop refinement: fine-tuning CktGen on the store's verified circuits of the
classes campaigns asked for, and refreshing its latent bank with the circuits that met their targets. A tiny
parent trained in-process on the cktloop classes; the store is the surrogate fine-tune's (dataset 'tiny',
campaign 'camp' of 40 MNA-labelled circuits under one target, gain >= 0 dB)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from circuits import Circuit, CktLoopError
from circuits.targets import Target
from generator import finetune as ft
from generator.checkpoint import load_checkpoint
from generator.finetune import RESULT, GeneratorFinetuneConfig, finetune
from generator.predict import Generator
from generator.refresh import RefreshConfig, refresh
from generator.store_rows import ADDED, asked_classes, met_rows
from generator.train import train
from storage import CandidateRecord, Store, StoreError
from surrogate.training import from_store
from tests.generator.conftest import write_config
from tests.support import finetune_store, tiny_parent


@pytest.fixture(scope="module")
def parent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny conditional generator on the cktloop classes, one epoch on the dataset's rows, with its bank."""
    from tests.surrogate.conftest import make_rows

    folder = tmp_path_factory.mktemp("gen-parent")
    data = folder / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in make_rows(120, n_test=24)))
    config = write_config(folder / "tiny.yaml", {"spec_preset": "cktloop"}, epochs=1, sample_eval=0)
    return train(config, data, None, folder / "run").checkpoint


@pytest.fixture(scope="module")
def judge(tmp_path_factory: pytest.TempPathFactory) -> Path:

    return tiny_parent(tmp_path_factory.mktemp("judge"))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    from tests.surrogate.conftest import make_rows

    s = finetune_store(f"sqlite:///{tmp_path / 'gen.db'}", make_rows(120, n_test=24))
    yield s
    s.close()


def _config(parent: Path, judge: Path, **kw: object) -> GeneratorFinetuneConfig:
    base = {"base": str(parent), "judge": str(judge), "dataset": "tiny", "epochs": 2, "batch_size": 16}
    return GeneratorFinetuneConfig(**{**base, "eval_rounds": 2, "progress": False, **kw})


def _refresh_config(parent: Path, judge: Path, **kw: object) -> RefreshConfig:
    return RefreshConfig(**{"base": str(parent), "judge": str(judge), "dataset": "tiny", "eval_rounds": 2, **kw})


def test_asked_classes_are_the_arms_a_campaign_picks(store: Store, parent: Path) -> None:
    spec = Generator.load(parent).spec_classes
    asked = asked_classes(store, [], spec)
    gain = spec.fields.index("gain_db")
    # gain >= 0 dB: every class whose gain bin lies wholly at or above 0 dB, any UGBW and PM
    assert asked and all(spec.axes[gain].interval(c[gain])[0] >= 0.0 for c in asked)
    everything_above = [
        c for c in itertools.product(*(range(k) for k in spec.sizes)) if c[gain] in {a[gain] for a in asked}
    ]
    assert asked == set(everything_above)
    with pytest.raises(StoreError, match="no campaign named 'ghost'"):
        asked_classes(store, ["ghost"], spec)


def test_met_rows_are_the_verified_circuits_inside_their_targets_bounds(store: Store) -> None:
    spec = from_store.rows_spec(store, Path("/nonexistent"), "generator", [], None, "x")
    verified = from_store.verified(store, spec)
    met = met_rows(store, verified, spec)
    target = Target.from_mapping("t", {"gain_db": {"min": 0.0}})
    assert [r["id"] for r in met] == [r["id"] for r in verified if target.met_by(r)]
    assert 0 < len(met) < len(verified)  # some of the 40 circuits have a negative gain in dB
    assert all(r["met_target"] == "camp/t" for r in met)
    # a candidate outside the id range the spec binds does not count
    assert met_rows(store, verified, {**spec, "upto_candidate": 0}) == []


@pytest.mark.slow
def test_finetune_trains_registers_with_lineage_and_resumes(
    store: Store, parent: Path, judge: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "ft"
    real_save = ft.save_checkpoint

    def dies(path: object, payload: object) -> None:
        raise KeyboardInterrupt  # as if killed after training, before the result was written

    monkeypatch.setattr(ft, "save_checkpoint", dies)
    with pytest.raises(KeyboardInterrupt):
        finetune(store, out, config=_config(parent, judge))
    assert (out / "last.pt").is_file() and not (out / RESULT).exists()
    assert store.model_versions("generator") == []  # no version without its checkpoint
    monkeypatch.setattr(ft, "save_checkpoint", real_save)

    result = finetune(store, out, config=_config(parent, judge))
    rows = result["rows"]
    assert rows["n_train"] > 0 and rows["n_heldout"] > 0 and rows["n_replay"] == rows["n_train"]
    info = store.model_version("generator", result["version"])
    old = Generator.load(parent)
    assert info.parent_version == old.version == result["parent_version"]
    assert info.data_fingerprint == result["data_fingerprint"]
    assert info.data_fingerprint.startswith(f"{rows['n_train'] + rows['n_replay']}:")
    assert Path(info.path) == (out / RESULT).resolve()
    for part in ("heldout", "parent_heldout"):
        figures = info.metrics[part]
        assert figures["n"] == rows["n_heldout"]
        assert 0.0 <= figures["spec_acc"] <= 1.0 and figures["validity"] == 1.0  # grammar decoding
        assert {"validity_free_decoder", "novel_topologies", "recon_loss", "n_specs"} <= set(figures)
    new = Generator.load(info.path)
    assert new.version == result["version"] != old.version
    assert new.bank is not None and old.bank is not None and len(new.bank) == len(old.bank)
    assert not torch.equal(new.bank.latents, old.bank.latents)  # re-encoded by the new encoder
    weights = [k for k in old.model.state_dict() if k.startswith("enc_")]
    assert any(not torch.equal(new.model.state_dict()[k], old.model.state_dict()[k]) for k in weights)
    assert len(new.generate([new.train_classes[0]], 3, seed=1, sampling="bank")) == 3

    again = finetune(store, out, config=_config(parent, judge))  # a re-run registers nothing new
    assert again["version"] == result["version"] and len(store.model_versions("generator")) == 1


@pytest.mark.slow
def test_finetune_without_verified_rows_or_with_a_bad_since_fails(
    store: Store, parent: Path, judge: Path, tmp_path: Path
) -> None:
    config = _config(parent, judge, epochs=1)
    with pytest.raises(StoreError, match="no generator model version 'nope'"):
        finetune(store, tmp_path / "a", since="nope", config=config)
    store.register_model("surrogate", "s1", tmp_path, {"rows": {"upto_candidate": 0}}, {})
    with pytest.raises(StoreError, match="no generator model version 's1'"):
        finetune(store, tmp_path / "b", since="s1", config=config)  # a surrogate version is no generator's
    first = finetune(store, tmp_path / "c", config=config)
    with pytest.raises(CktLoopError, match="no verified candidates of the classes"):
        finetune(store, tmp_path / "d", since=first["version"], config=config)  # nothing new since
    assert not (tmp_path / "d" / "rows.json").exists()  # an empty try binds nothing
    with pytest.raises(StoreError, match="no campaign named 'ghost'"):
        finetune(store, tmp_path / "e", campaigns=["ghost"], config=config)
    with pytest.raises(CktLoopError, match="holds a fine-tune of other rows"):
        finetune(store, tmp_path / "c", campaigns=["camp"], config=config)
    assert len(store.model_versions("generator")) == 1


@pytest.mark.slow
def test_finetune_on_a_store_without_campaigns_fails(parent: Path, judge: Path, tmp_path: Path) -> None:
    with Store.open(f"sqlite:///{tmp_path / 'empty.db'}") as empty, pytest.raises(CktLoopError, match="no verified"):
        finetune(empty, tmp_path / "x", config=_config(parent, judge))


@pytest.mark.slow
def test_refresh_adds_the_met_circuits_to_the_bank(store: Store, parent: Path, judge: Path, tmp_path: Path) -> None:
    result = refresh(store, tmp_path / "bank", config=_refresh_config(parent, judge))
    old, new = Generator.load(parent), Generator.load(result["checkpoint"])
    spec = from_store.rows_spec(store, Path("/nonexistent"), "generator", [], None, "x")
    met = met_rows(store, from_store.verified(store, spec), spec)
    added = [r for r in met if not from_store.held_out(r["id"], 0.2)]
    assert result["rows"]["n_added"] == len(added) > 0
    assert old.bank is not None and new.bank is not None and len(new.bank) == len(old.bank) + len(added)
    assert torch.equal(new.bank.latents[: len(old.bank)], old.bank.latents)
    state = load_checkpoint(result["checkpoint"])
    assert [a["key"] for a in state[ADDED]] == [r["id"] for r in added] and "metrics" not in state
    assert all(torch.equal(state["model"][k], v) for k, v in old.model.state_dict().items())  # no retraining
    added_latents = new.encode([Circuit.from_dict(r["circuit"]) for r in added[:3]])  # their mean latents
    assert torch.allclose(new.bank.latents[len(old.bank) : len(old.bank) + 3], added_latents, atol=2e-3)
    info = store.model_version("generator", result["version"])
    assert info.parent_version == old.version and info.metrics["bank"]["added"] == len(added)
    assert {"heldout", "parent_heldout"} <= set(info.metrics)

    assert refresh(store, tmp_path / "bank", config=_refresh_config(parent, judge))["version"] == result["version"]
    assert len(store.model_versions("generator")) == 1  # a re-run registers nothing new
    with pytest.raises(CktLoopError, match="nothing to add"):  # the refreshed bank has all but the held-out ones
        refresh(store, tmp_path / "again", config=_refresh_config(Path(result["checkpoint"]), judge))
    tid = store.campaign_targets("camp")[0].id
    store.add_candidates(tid, [CandidateRecord(new.generate([new.train_classes[0]], 1, seed=5)[0], "generator")])
    with pytest.raises(CktLoopError, match="not in the bank yet"):  # proposed but not measured: not met
        refresh(store, tmp_path / "later", since=result["version"], config=_refresh_config(parent, judge))


@pytest.mark.slow
def test_a_finetune_of_a_refreshed_generator_keeps_the_added_circuits(
    store: Store, parent: Path, judge: Path, tmp_path: Path
) -> None:
    refreshed = refresh(store, tmp_path / "bank", config=_refresh_config(parent, judge))
    tuned = finetune(store, tmp_path / "ft", config=_config(Path(refreshed["checkpoint"]), judge, epochs=1))
    a, b = Generator.load(refreshed["checkpoint"]), Generator.load(tuned["checkpoint"])
    assert a.bank is not None and b.bank is not None and len(a.bank) == len(b.bank)
    assert load_checkpoint(tuned["checkpoint"])[ADDED] == load_checkpoint(refreshed["checkpoint"])[ADDED]
    assert store.model_version("generator", tuned["version"]).parent_version == refreshed["version"]

from __future__ import annotations

import json

import pytest
import torch

from circuits import Circuit, CircuitError, CktLoopError
from generator.checkpoint import load_checkpoint
from generator.data import build_splits
from generator.predict import Generator
from generator.train import load_train_config, train

from .conftest import write_config


@pytest.fixture(scope="module")
def splits(rows):
    return build_splits(rows, "ocb")


def _weights(path):
    return load_checkpoint(path)["model"]


def test_train_writes_metrics_plot_and_a_loadable_checkpoint(tmp_path, splits):
    cfg = write_config(tmp_path / "cfg.yaml", epochs=2)
    result = train(cfg, splits, out_dir=tmp_path / "run")
    assert result.epochs_done == 2 and result.epochs_run == 2 and 0.0 <= result.validity <= 1.0
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2]
    assert {"total", "recon_ckt", "recon_spec", "kl", "align", "nce", "gde"} <= set(lines[0]["train"])
    assert "total" in lines[0]["test"]
    assert (tmp_path / "run" / "metrics.png").stat().st_size > 0

    gen = Generator.load(result.checkpoint)
    assert gen.version == result.version and gen.version.endswith("-e2")
    assert gen.train_classes == sorted(set(splits.train.classes))  # a campaign's arms
    specs = sorted(set(splits.train.classes))[:2]
    out = gen.generate(specs, 3, seed=5)
    assert len(out) == 6 and all(isinstance(r, Circuit | CircuitError) for r in out)
    assert [str(r) for r in out] == [str(r) for r in gen.generate(specs, 3, seed=5)]
    # round trip: the loaded model computes exactly what the stored weights say
    state = load_checkpoint(result.checkpoint)
    for k, v in gen.model.state_dict().items():
        assert torch.equal(v, state["model"][k]), k
    batch = splits.test.batch(slice(0, 4))
    gen2 = Generator.load(result.checkpoint)
    assert torch.equal(gen.model.encode_circuit(batch)[0], gen2.model.encode_circuit(batch)[0])


@pytest.mark.slow
def test_resume_equals_an_uninterrupted_run(tmp_path, splits):
    straight = train(write_config(tmp_path / "a.yaml", epochs=3, sample_eval=0), splits, out_dir=tmp_path / "straight")
    train(write_config(tmp_path / "b.yaml", epochs=1, sample_eval=0), splits, out_dir=tmp_path / "resumed")
    resumed = train(write_config(tmp_path / "c.yaml", epochs=3, sample_eval=0), splits, out_dir=tmp_path / "resumed")
    assert resumed.epochs_run == 2 and resumed.epochs_done == 3
    a, b = _weights(straight.checkpoint), _weights(resumed.checkpoint)
    assert all(torch.equal(a[k], b[k]) for k in a)
    la = (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()
    lb = (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["train"]["total"] for x in la] == [json.loads(x)["train"]["total"] for x in lb]


@pytest.mark.slow
def test_lr_drops_cut_the_learning_rate_and_extend_a_finished_run_as_if_planned(tmp_path, splits):
    planned = write_config(tmp_path / "a.yaml", epochs=3, sample_eval=0, lr_drops=[2])
    straight = train(planned, splits, out_dir=tmp_path / "straight")
    lrs = [json.loads(x)["lr"] for x in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()]
    assert lrs[:2] == [1.0e-3, 1.0e-3] and lrs[2] == pytest.approx(1.0e-4)  # epoch 3 runs at lr × 0.1
    train(write_config(tmp_path / "b.yaml", epochs=2, sample_eval=0), splits, out_dir=tmp_path / "extended")
    extended = train(planned, splits, out_dir=tmp_path / "extended")  # the drop added after epoch 2 was trained
    a, b = _weights(straight.checkpoint), _weights(extended.checkpoint)
    assert extended.epochs_run == 1 and all(torch.equal(a[k], b[k]) for k in a)
    late = write_config(tmp_path / "c.yaml", epochs=4, sample_eval=0, lr_drops=[1, 2])
    with pytest.raises(CktLoopError, match=r"last\.pt: cannot resume .* lr_drops change at epochs \[1\]"):
        train(late, splits, out_dir=tmp_path / "extended")
    with pytest.raises(CktLoopError, match=r"d\.yaml: lr_drops\.0: input should be greater than or equal to 1, got 0"):
        train(write_config(tmp_path / "d.yaml", lr_drops=[0]), splits, out_dir=tmp_path / "bad")


def test_resume_with_a_different_config_names_the_checkpoint(tmp_path, splits):
    train(write_config(tmp_path / "a.yaml", epochs=1, sample_eval=0), splits, out_dir=tmp_path / "run")
    other = write_config(tmp_path / "b.yaml", epochs=2, sample_eval=0, model={"latent_dim": 8})
    with pytest.raises(CktLoopError, match=r"last\.pt.*latent_dim"):
        train(other, splits, out_dir=tmp_path / "run")


def test_bad_checkpoints_name_the_file(tmp_path, splits):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CktLoopError, match=r"garbage\.pt"):
        Generator.load(garbage)
    with pytest.raises(CktLoopError, match=r"missing\.pt: no such"):
        Generator.load(tmp_path / "missing.pt")
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(CktLoopError, match=r"foreign\.pt: not a CktLoop generator checkpoint"):
        Generator.load(foreign)
    result = train(write_config(tmp_path / "a.yaml", epochs=1, sample_eval=0), splits, out_dir=tmp_path / "run")
    state = load_checkpoint(result.checkpoint)
    state["model_config"]["d_model"] = 64
    bad = tmp_path / "mismatch.pt"
    torch.save(state, bad)
    with pytest.raises(CktLoopError, match=r"mismatch\.pt: weights do not match"):
        Generator.load(bad)
    state["model_config"]["no_such_knob"] = 1
    torch.save(state, bad)
    with pytest.raises(CktLoopError, match=r"mismatch\.pt: model_config"):
        Generator.load(bad)


def test_bad_configs_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: 2\nmodel:\n  d_modle: 64\n")
    with pytest.raises(CktLoopError, match=r"bad\.yaml.*d_modle"):
        load_train_config(bad)
    bad.write_text("lr: quick\n")
    with pytest.raises(CktLoopError, match=r"bad\.yaml.*lr"):
        load_train_config(bad)
    with pytest.raises(CktLoopError, match=r"nothere\.yaml"):
        load_train_config(tmp_path / "nothere.yaml")


def test_shipped_configs_load():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "generator" / "configs"
    paper = load_train_config(root / "paper.yaml")
    assert (paper.model.d_model, paper.model.enc_layers, paper.model.dec_heads, paper.batch_size, paper.epochs) == (
        512,
        4,
        8,
        32,
        600,
    )
    assert paper.lr == 1e-4 and paper.model.dec_streams == 3
    cpu = load_train_config(root / "cpu.yaml")
    ablation = load_train_config(root / "cpu-no-align.yaml")
    assert not (ablation.model.nce or ablation.model.gde or ablation.model.align)
    assert cpu.model.nce and cpu.model.gde and cpu.model.align
    same = {k: v for k, v in cpu.to_dict().items() if k != "model"}
    assert same == {k: v for k, v in ablation.to_dict().items() if k != "model"}


@pytest.mark.slow
def test_a_shipped_checkpoint_loads_without_resume_state(tmp_path, splits, capsys):
    from orchestrator.cli.app import main

    result = train(write_config(tmp_path / "cfg.yaml", epochs=1, sample_eval=0), splits, out_dir=tmp_path / "run")
    metrics = tmp_path / "recon.json"
    metrics.write_text(json.dumps({"recon_acc": 0.5}))
    shipped = tmp_path / "shipped.pt"
    assert main(["ship", str(result.checkpoint), "--out", str(shipped), "--metrics", str(metrics)]) == 0
    state = load_checkpoint(shipped)
    assert not {"optimizer", "scheduler", "rng"} & set(state) and state["metrics"] == {"recon": {"recon_acc": 0.5}}
    assert shipped.stat().st_size < result.checkpoint.stat().st_size
    specs = sorted(set(splits.train.classes))[:2]
    a, b = Generator.load(result.checkpoint), Generator.load(shipped)
    assert [str(r) for r in a.generate(specs, 2, seed=1)] == [str(r) for r in b.generate(specs, 2, seed=1)]
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    assert main(["ship", str(tmp_path / "junk.pt"), "--out", str(tmp_path / "o.pt")]) == 2
    assert "junk.pt" in capsys.readouterr().err


@pytest.mark.slow
def test_node_slots_with_log_values_train_bank_and_sample_as_cpu_yaml_does(tmp_path, splits):
    model = {"latent_layout": "nodes", "latent_dim": 32, "value_space": "log", "value_divisor": 0.1}
    result = train(write_config(tmp_path / "cfg.yaml", model=model, epochs=2), splits, out_dir=tmp_path / "run")
    gen = Generator.load(result.checkpoint)
    assert gen.model.config.latent_layout == "nodes" and gen.model.config.value_space == "log"
    assert gen.bank is not None and len(gen.bank.classes) == len(splits.train.classes)
    specs = sorted(set(splits.train.classes))[:3]
    out = gen.generate(specs, 4, seed=1, sampling="bank")
    assert len(out) == 12 and all(isinstance(c, Circuit) for c in out)  # grammar-constrained: always valid
    assert [str(c) for c in out] == [str(c) for c in gen.generate(specs, 4, seed=1, sampling="bank")]

"""Ray Tune searches: knobs land in the config, trials train for real, the best config is usable."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from circuits import CktLoopError, FamilyConfig, generate
from orchestrator.distributed.tune import absolute_source, draw, markdown_table, run_trial, tune_model, with_knobs
from simulator.mna import MnaBackend

SURROGATE = {
    "epochs": 3,
    "batch_size": 16,
    "lr": 3.0e-3,
    "seed": 3,
    "checkpoint_every": 1,
    "device": "cpu",
    "progress": False,
    "threads": 1,
    "model": {"type_dim": 8, "pos_dim": 8, "hidden": 16, "readout_hidden": 32, "graph_dim": 16, "embed_dim": 16},
}
GENERATOR = {
    "epochs": 3,
    "batch_size": 16,
    "checkpoint_every": 1,
    "sample_eval": 0,
    "progress": False,
    "threads": 1,
    "model": {"d_model": 32, "enc_layers": 1, "enc_heads": 2, "enc_ff": 64, "dec_layers": 1, "dec_heads": 2},
}


@pytest.fixture(scope="module")
def jsonl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    samples = list(generate(96, 5, FamilyConfig(sizings_per_topology=2)))
    perfs = MnaBackend().simulate([s.circuit for s in samples])
    path = tmp_path_factory.mktemp("tune-data") / "rows.jsonl"
    with path.open("w") as fh:
        for s, p in zip(samples, perfs):
            row = {"id": s.circuit.key, "split": "test" if s.index >= 72 else "train", "circuit": s.circuit.to_dict()}
            fh.write(json.dumps({**row, **p.to_dict()}) + "\n")
    return path


def test_knobs_replace_nested_values_and_name_a_missing_section():
    base = {"lr": 1e-3, "model": {"d_model": 128, "enc_heads": 4}}
    out = with_knobs(base, {"lr": 3e-4, "model.d_model": 64})
    assert out == {"lr": 3e-4, "model": {"d_model": 64, "enc_heads": 4}}
    assert base["model"]["d_model"] == 128  # the base is left alone
    with pytest.raises(CktLoopError, match=r"'optim\.lr'.*no section 'optim'"):
        with_knobs(base, {"optim.lr": 1e-3})


def test_sources_keep_naming_the_same_rows_from_a_trial_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert absolute_source("sqlite:///cktloop.db") == f"sqlite:///{tmp_path / 'cktloop.db'}"
    assert absolute_source("sqlite:////abs/x.db") == "sqlite:////abs/x.db"
    assert (
        absolute_source("postgresql+psycopg://postgres@127.0.0.1/test")
        == "postgresql+psycopg://postgres@127.0.0.1/test"
    )
    assert absolute_source("rows.jsonl") == str(tmp_path / "rows.jsonl")


def test_a_generator_trial_trains_and_reports_its_held_out_reconstruction(jsonl, tmp_path):
    figures = run_trial("generator", with_knobs(GENERATOR, {"epochs": 1}), str(jsonl), None, tmp_path / "trial")
    assert math.isfinite(figures["test_recon"]) and figures["test_recon"] > 0
    assert (tmp_path / "trial" / "last.pt").is_file() and (tmp_path / "trial" / "config.yaml").is_file()


@pytest.mark.ray
def test_tune_runs_trials_on_ray_and_writes_the_best_config(ray_session, jsonl, tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump(SURROGATE))
    space = {"lr": [1.0e-3, 3.0e-3], "model.hidden": [8, 16]}
    result = tune_model("surrogate", base, jsonl, None, tmp_path / "tune", trials=2, epochs=1, space=space)
    assert len(result.trials) == 2 and result.metric == "test_joint_acc"
    accs = [t["test_joint_acc"] for t in result.trials]
    assert accs == sorted(accs, reverse=True) and all(0.0 <= a <= 1.0 for a in accs)
    best = yaml.safe_load(result.best_config.read_text())
    assert best["epochs"] == 3  # the base's budget, not the trials'
    assert best["lr"] == result.trials[0]["lr"] and best["model"]["hidden"] == result.trials[0]["model.hidden"]
    assert len(list((tmp_path / "tune" / "trials").iterdir())) == 2
    import ray

    alive = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    assert {t["node"] for t in result.trials} <= alive  # each trial says where it ran
    assert markdown_table(result).splitlines()[0].endswith("| seconds_per_epoch | node |")


def test_tune_refuses_bad_requests_before_any_trial(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump(SURROGATE))
    with pytest.raises(CktLoopError, match="unknown model"):
        tune_model("decoder", base, "rows.jsonl", None, tmp_path)
    with pytest.raises(CktLoopError, match="at least one trial"):
        tune_model("surrogate", base, "rows.jsonl", None, tmp_path, trials=0)
    with pytest.raises(CktLoopError, match="no section 'optim'"):
        tune_model("surrogate", base, "rows.jsonl", None, tmp_path, space={"optim.lr": [1e-3]})
    with pytest.raises(CktLoopError, match=r"missing\.yaml: no such base config file"):
        tune_model("surrogate", tmp_path / "missing.yaml", "rows.jsonl", None, tmp_path)


def test_the_cli_refuses_a_bad_tune_request_in_one_line_before_starting_ray(tmp_path, capsys):
    from orchestrator.cli.app import main

    config, rows = tmp_path / "base.yaml", tmp_path / "rows.jsonl"
    config.write_text("optim: [")
    rows.write_text("")
    code = main(["tune", "surrogate", "--config", str(config), "--data", str(rows)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "base.yaml: malformed YAML" in err[0]
    code = main(["tune", "generator", "--config", str(config), "--trials", "0"])
    assert code == 2 and "argument --trials: expected a positive integer, got 0" in capsys.readouterr().err


def test_draws_are_distinct_seeded_points_of_the_grid():
    space = {"lr": [1, 2, 3], "batch_size": [32, 64]}
    picks = draw(space, 4, seed=0)
    assert len(picks) == 4 and len({tuple(p.items()) for p in picks}) == 4
    assert picks == draw(space, 4, seed=0) and picks != draw(space, 4, seed=1)
    assert len(draw(space, 10, seed=0)) == 6  # never more than the grid holds

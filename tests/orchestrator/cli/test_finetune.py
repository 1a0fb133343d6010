"""``cktloop finetune surrogate|generator|bank``: bad input is one line and exit status 2; on a tiny store each trains,
registers and prints one JSON object."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.cli.app import main
from storage import Store
from tests.support import finetune_store, kill_when, tiny_parent


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory, rows: list[dict]) -> str:
    """A store with dataset 'tiny' and campaign 'camp' (shared: bad input leaves it as it was)."""

    url = f"sqlite:///{tmp_path_factory.mktemp('cli') / 'ft.db'}"
    finetune_store(url, rows).close()
    return url


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    from tests.surrogate.conftest import make_rows

    return make_rows(120, n_test=24)


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["surrogate", "--holdout", "1"], ["argument --holdout", "between 0 and 1", "1"]),
        (["surrogate", "--members", "0"], ["argument --members", "positive integer"]),
        (["surrogate", "--replay-ratio", "-1"], ["argument --replay-ratio", ">= 0"]),
        (["surrogate", "--base", "/no/such.pt"], ["argument --base", "no such file"]),
        (["surrogate", "--campaign", "ghost"], ["no campaign named 'ghost'"]),
        (["surrogate", "--since", "v0"], ["no surrogate model version 'v0'"]),
        (["surrogate", "--dataset", "nope", "--campaign", "camp"], ["nope"]),
        (
            ["surrogate", "--dataset", "tiny", "--replay-dataset", "nope"],
            ["replay dataset 'nope' is not in the store", "tiny"],
        ),
        (["generator", "--holdout", "0"], ["argument --holdout", "between 0 and 1"]),
        (["generator", "--epochs", "0"], ["argument --epochs", "positive integer"]),
        (["generator", "--lr", "0"], ["argument --lr"]),
        (["generator", "--base", "/no/such.pt"], ["argument --base", "no such file"]),
        (["generator", "--campaign", "ghost"], ["no campaign named 'ghost'"]),
        (["generator", "--since", "v0"], ["no generator model version 'v0'"]),
        (["bank", "--judge", "/no/such.pt"], ["argument --judge", "no such file"]),
        (["bank", "--campaign", "ghost"], ["no campaign named 'ghost'"]),
        (["bank", "--since", "v0"], ["no generator model version 'v0'"]),
    ],
)
def test_bad_input_is_one_line(argv: list[str], words: list[str], db: str, tmp_path: Path, capsys) -> None:
    code = main(["finetune", *argv, "--db", db, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("cktloop: error:")
    assert all(w in err for w in words), err
    with Store.open(db) as store:
        assert store.model_versions() == []


@pytest.mark.slow
def test_finetune_surrogate_prints_the_registered_version(db: str, tmp_path: Path, capsys) -> None:

    parent = tiny_parent(tmp_path / "parent")
    argv = ["finetune", "surrogate", "--db", db, "--base", str(parent), "--dataset", "tiny", "--members", "2"]
    argv += ["--epochs", "1", "--no-progress", "--json", "--out", str(tmp_path / "run")]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    with Store.open(db) as store:
        info = store.model_version("surrogate", result["version"])
    assert info.parent_version == result["parent_version"] and Path(info.path).is_file()
    assert result["rows"]["campaigns"] == [] and result["metrics"]["heldout"]["n"] == result["rows"]["n_heldout"]
    assert main(argv) == 0  # a re-run of a finished fine-tune registers nothing new
    with Store.open(db) as store:
        assert len(store.model_versions("surrogate")) == 1


def _generator_store(rows: list[dict], tmp_path: Path) -> tuple[str, Path, Path]:
    """A store holding ``rows``, a tiny conditional generator trained on them for an epoch (the parent) and
    a tiny surrogate (the judge): the database URL and the two checkpoints."""
    from generator.train import train
    from tests.generator.conftest import write_config

    db = f"sqlite:///{tmp_path / 'gen.db'}"
    finetune_store(db, rows).close()
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = write_config(tmp_path / "tiny.yaml", {"spec_preset": "cktloop"}, epochs=1, sample_eval=0)
    parent = train(config, data, None, tmp_path / "gen").checkpoint
    judge = tiny_parent(tmp_path / "judge")
    return db, parent, judge


@pytest.mark.slow
def test_finetune_generator_and_bank_print_the_registered_versions(rows: list[dict], tmp_path: Path, capsys) -> None:
    db, parent, judge = _generator_store(rows, tmp_path)
    common = ["--db", db, "--base", str(parent), "--judge", str(judge), "--dataset", "tiny", "--eval-rounds", "2"]
    tune = ["finetune", "generator", *common, "--epochs", "1", "--json", "--out", str(tmp_path / "ft")]  # bars on
    bank = ["finetune", "bank", *common, "--json", "--out", str(tmp_path / "bank")]
    assert main(tune) == 0
    tuned = json.loads(capsys.readouterr().out)
    assert main(bank) == 0
    banked = json.loads(capsys.readouterr().out)
    with Store.open(db) as store:
        for result in (tuned, banked):
            info = store.model_version("generator", result["version"])
            assert info.parent_version == result["parent_version"] and Path(info.path).is_file()
            assert info.metrics["heldout"]["n"] == result["rows"]["n_heldout"]
    assert banked["metrics"]["bank"]["added"] == banked["rows"]["n_added"] > 0
    assert main(tune) == 0 and main(bank) == 0  # re-runs register nothing new
    plain = ["finetune", "generator", *common, "--epochs", "1", "--out", str(tmp_path / "ft"), "--no-progress"]
    assert main(plain) == 0
    assert "registered generator" in capsys.readouterr().out
    with Store.open(db) as store:
        assert len(store.model_versions("generator")) == 2


@pytest.mark.slow
def test_finetune_generator_killed_mid_training_resumes_and_registers_once(rows: list[dict], tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from generator.finetune import RESULT as RESULT_FILE

    db, parent, judge = _generator_store(rows, tmp_path)
    out = tmp_path / "ft"
    argv = [sys.executable, "-m", "orchestrator.cli", "finetune", "generator", "--db", db, "--base", str(parent)]
    argv += ["--judge", str(judge), "--dataset", "tiny", "--eval-rounds", "2", "--epochs", "40", "--no-progress"]
    argv += ["--out", str(out)]
    log = out / "metrics.jsonl"

    def two_epochs_done() -> bool:
        return log.is_file() and len(log.read_text().splitlines()) >= 2

    process = subprocess.Popen(argv, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    kill_when(process, two_epochs_done, timeout=600)
    assert (out / "last.pt").is_file() and not (out / RESULT_FILE).exists()
    with Store.open(db) as store:
        assert store.model_versions("generator") == []  # no version without its checkpoint
    killed_at = len(log.read_text().splitlines())
    assert killed_at < 40
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    epochs = [json.loads(line)["epoch"] for line in log.read_text().splitlines()]
    assert epochs == list(range(1, 41))  # resumed after the last checkpoint, no epoch twice
    with Store.open(db) as store:
        (info,) = store.model_versions("generator")
        assert Path(info.path) == (out / RESULT_FILE).resolve() and Path(info.path).is_file()
    assert subprocess.run(argv, capture_output=True, text=True, timeout=900).returncode == 0
    with Store.open(db) as store:
        assert len(store.model_versions("generator")) == 1

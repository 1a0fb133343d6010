"""``cktloop finetune surrogate``: bad input is one line and exit status 2; on a tiny store it trains,
registers and prints one JSON object."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.cli.app import main
from storage import Store


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory, rows: list[dict]) -> str:
    """A store with dataset 'tiny' and campaign 'camp' (shared: bad input leaves it as it was)."""
    from tests.surrogate.test_finetune import _store

    url = f"sqlite:///{tmp_path_factory.mktemp('cli') / 'ft.db'}"
    _store(url, rows).close()
    return url


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    from tests.surrogate.conftest import make_rows

    return make_rows(120, n_test=24)


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--holdout", "1"], ["argument --holdout", "between 0 and 1", "1"]),
        (["--members", "0"], ["argument --members", "positive integer"]),
        (["--replay-ratio", "-1"], ["argument --replay-ratio", ">= 0"]),
        (["--base", "/no/such.pt"], ["argument --base", "no such file"]),
        (["--campaign", "ghost"], ["no campaign named 'ghost'"]),
        (["--since", "v0"], ["no surrogate model version 'v0'"]),
        (["--dataset", "nope", "--campaign", "camp"], ["nope"]),
    ],
)
def test_bad_input_is_one_line(argv: list[str], words: list[str], db: str, tmp_path: Path, capsys) -> None:
    code = main(["finetune", "surrogate", "--db", db, "--out", str(tmp_path / "out"), *argv])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("cktloop: error:")
    assert all(w in err for w in words), err
    with Store.open(db) as store:
        assert store.model_versions() == []


@pytest.mark.slow
def test_finetune_surrogate_prints_the_registered_version(db: str, tmp_path: Path, capsys) -> None:
    from tests.surrogate.test_finetune import _tiny_parent

    parent = _tiny_parent(tmp_path / "parent")
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

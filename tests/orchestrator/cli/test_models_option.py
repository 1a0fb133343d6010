"""``--models`` on the commands that load the design models: ``campaign run`` (through its driver, with the
campaign itself replaced by a stand-in that reports its settings, as in test_driver_imports), ``loop``'s
first round, and ``serve``'s checkpoints (resolved without starting anything)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from storage import Store
from surrogate.paths import DESIGN_CHECKPOINT as SURROGATE
from tests.support import DRIVER, REPO


def run_driver(tmp_path: Path, *options: str) -> tuple[dict, list[str]]:
    """The settings ``campaign run ONE OPTIONS`` reaches the campaign with, and what it printed after."""
    spec = tmp_path / "one.yaml"
    spec.write_text("name: one\nbudget: 10\ntargets:\n  - name: a\n    specs: {gain_db: {min: 40}}\n")
    db = f"sqlite:///{tmp_path / 'store.db'}"
    argv = [sys.executable, "-c", DRIVER, "campaign", "run", str(spec), "--db", db, "--no-progress", *options]
    out = subprocess.run(argv, cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    first, *rest = out.stdout.splitlines()
    return json.loads(first), rest


@pytest.fixture
def registered(tmp_path: Path) -> dict[str, Path]:
    """Two surrogate versions registered in the store (copies of the shipped checkpoint), s1 promoted."""
    made = {}
    with Store.open(f"sqlite:///{tmp_path / 'store.db'}") as store:
        for version in ("s1", "s2"):
            made[version] = tmp_path / f"{version}.pt"
            made[version].write_bytes(SURROGATE.read_bytes())
            store.register_model("surrogate", version, made[version], {}, {})
        store.promote("surrogate", "s1", "loop test", 1)
    return made


def test_campaign_run_uses_the_promoted_surrogate_by_default_and_says_so(tmp_path, registered):
    settings, printed = run_driver(tmp_path)
    assert settings["surrogate"] == str(registered["s1"])
    assert printed[-1] == "models: generator shipped (none promoted); surrogate promoted s1 (by loop test round 1)"


def test_campaign_run_models_shipped_or_a_version(tmp_path, registered):
    settings, printed = run_driver(tmp_path, "--models", "shipped")
    assert settings["surrogate"] == str(SURROGATE) and printed[-1] == "models: generator shipped; surrogate shipped"
    settings, printed = run_driver(tmp_path, "--models", "s2")
    assert settings["surrogate"] == str(registered["s2"]) and "surrogate registered s2" in printed[-1]


def test_a_surrogate_path_wins_over_models(tmp_path, registered):
    settings, printed = run_driver(tmp_path, "--models", "s2", "--surrogate", str(registered["s1"]))
    assert settings["surrogate"] == str(registered["s1"])
    assert f"surrogate checkpoint {registered['s1']} (wins over --models s2)" in printed[-1]


def test_serve_takes_the_promoted_models_unless_its_config_or_an_option_names_others(tmp_path, registered):
    from orchestrator.cli.serve import _models
    from orchestrator.serve.config import ServeConfig

    def args(**kw) -> argparse.Namespace:
        return argparse.Namespace(**{"generator": None, "surrogate": None, "models": None, **kw})

    db = f"sqlite:///{tmp_path / 'store.db'}"
    config, said = _models(ServeConfig(db=db), args())
    assert config.surrogate.checkpoint == str(registered["s1"]) and "surrogate promoted s1" in said
    pinned = ServeConfig.model_validate({"db": db, "surrogate": {"checkpoint": str(registered["s2"])}})
    config, said = _models(pinned, args())
    assert config.surrogate.checkpoint == str(registered["s2"]) and "the serve config's checkpoint" in said
    config, said = _models(pinned, args(models="shipped"))  # an explicit --models wins over the config
    assert config.surrogate.checkpoint == str(SURROGATE) and "surrogate shipped" in said
    config, _ = _models(pinned, args(models="shipped", surrogate=registered["s1"]))
    assert config.surrogate.checkpoint == str(registered["s1"])


def test_the_loop_starts_from_the_promoted_surrogate_and_resumes_with_the_one_it_started_with(tmp_path, registered):
    from orchestrator.cli.app import build_parser
    from orchestrator.cli.loop import _start

    db = f"sqlite:///{tmp_path / 'store.db'}"
    folder = tmp_path / "loop"
    with Store.open(db) as store:
        store.register_model("surrogate", "ft", registered["s2"], {"rows": {"upto_candidate": 9}}, {})
        args = build_parser().parse_args(["loop", "--db", db])
        base, start, said = _start(args, store, folder)
        assert start == {"version": "s1", "checkpoint": str(registered["s1"]), "finetuned": False}  # not from rows
        assert base.surrogate == str(registered["s1"]) and "surrogate promoted s1" in said
        store.promote("surrogate", "ft", "loop other", 1)
        _, start, _ = _start(args, store, folder)
        assert (start["version"], start["finetuned"]) == ("ft", True)  # a store fine-tune: --since it
        folder.mkdir()
        (folder / "state.json").write_text(json.dumps({"start": {"version": "s1", "checkpoint": "/s1.pt"}}))
        base, start, said = _start(args, store, folder)  # resuming: the surrogate the loop started with
        assert start["version"] == "s1" and base.surrogate == "/s1.pt" and said == "resuming from surrogate s1"
        explicit = build_parser().parse_args(["loop", "--db", db, "--models", "s2"])
        assert _start(explicit, store, folder)[1]["version"] == "s2"  # named: the state file must agree

"""``cktloop models promote|rollback|promoted`` on a SQLite store whose versions are registered through the
storage API, their checkpoints small files in tmp_path: a promotion by hand is what ``--models promoted``
resolves to, promoting the current one again adds no row, a rollback goes one promotion back (to the shipped
model past the first) keeping every row, and ``promoted`` lists each kind's version and history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.cli.app import main
from orchestrator.design.models import resolve_models, shipped_paths
from storage import Store


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A store with surrogates s1, s2 and generator g1 registered (checkpoints written), s1 promoted by a loop."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    with Store.open(url) as store:
        for kind, version in (("surrogate", "s1"), ("surrogate", "s2"), ("generator", "g1")):
            path = tmp_path / f"{version}.pt"
            path.write_bytes(b"checkpoint " + version.encode())
            store.register_model(kind, version, path, {}, {})
        store.promote("surrogate", "s1", "loop nightly", 1, {"fresh_mae_ratio": 0.9})
    return url


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def current(db: str) -> dict[str, str | None]:
    """What ``--models promoted`` (the default) resolves each kind to: a version, or None for shipped."""
    with Store.open(db) as store:
        chosen = resolve_models(store, None)
    for kind, c in chosen.items():
        assert c.how in ("promoted", "shipped") and (c.how == "promoted" or c.path == str(shipped_paths()[kind]))
    return {kind: c.version for kind, c in chosen.items()}


def rows(db: str) -> list[tuple[str, str, str, int]]:
    with Store.open(db) as store:
        return [(p.kind, p.version, p.promoted_by, p.round) for p in store.promotions()]


def test_promote_by_hand_is_what_campaigns_use_and_again_adds_nothing(capsys, db):
    code, out, err = run(capsys, "models", "promote", "s2", "--why", "s1 drifts on PM", "--db", db)
    assert (code, err) == (0, "")
    assert out.startswith("promoted surrogate s2 by hand at ") and out.rstrip().endswith("(was: s1)")
    assert current(db) == {"generator": None, "surrogate": "s2"}
    code, out, _ = run(capsys, "models", "promote", "s2", "--db", db)
    assert code == 0 and out == "surrogate s2 is the promoted version already: nothing recorded\n"
    code, out, _ = run(capsys, "models", "promote", "g1", "--db", db)
    assert code == 0 and "promoted generator g1 by hand" in out and "(was: the shipped model)" in out
    assert current(db) == {"generator": "g1", "surrogate": "s2"}
    assert rows(db) == [
        ("surrogate", "s1", "loop nightly", 1),
        ("surrogate", "s2", "hand", 1),
        ("generator", "g1", "hand", 1),
    ]
    with Store.open(db) as store:
        assert store.promoted("surrogate").gate == {"why": "s1 drifts on PM"}  # type: ignore[union-attr]


def test_rollback_goes_back_one_promotion_then_to_the_shipped_model(capsys, db):
    assert run(capsys, "models", "promote", "s2", "--db", db)[0] == 0
    code, out, _ = run(capsys, "models", "rollback", "surrogate", "--db", db)
    assert code == 0 and out == "rolled surrogate back from s2: s1 is the promoted version again\n"
    assert current(db)["surrogate"] == "s1"
    code, out, _ = run(capsys, "models", "rollback", "surrogate", "--db", db)
    assert code == 0 and out == "rolled surrogate back from s1: none promoted before it, the shipped model is in use\n"
    assert current(db)["surrogate"] is None
    code, out, err = run(capsys, "models", "rollback", "surrogate", "--db", db)
    assert (code, out) == (2, "") and "nothing to roll back" in err
    assert [r[2] for r in rows(db)] == ["loop nightly", "hand", "rollback", "rollback to shipped"]  # history kept


def test_promote_refuses_a_version_whose_checkpoint_is_gone(capsys, db, tmp_path):
    (tmp_path / "s2.pt").unlink()
    code, out, err = run(capsys, "models", "promote", "s2", "--db", db)
    assert (code, out) == (2, "") and f"checkpoint {tmp_path / 's2.pt'}, which is missing" in err
    assert current(db)["surrogate"] == "s1" and len(rows(db)) == 1


def test_promoted_lists_each_kind_and_its_history(capsys, db):
    run(capsys, "models", "promote", "s2", "--why", "better PM", "--db", db)
    run(capsys, "models", "rollback", "surrogate", "--db", db)
    code, out, _ = run(capsys, "models", "promoted", "--db", db)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "generator: shipped (none promoted)"
    assert lines[1].startswith("surrogate: promoted s1 (") and lines[1].endswith("s1.pt)")
    assert [line.split("  ")[-1] for line in lines[2:]] == [
        's1 (by loop nightly round 1; gate {"fresh_mae_ratio": 0.9})',
        "s2 (by hand: better PM)",
        "s1 (rolled back from s2)",
    ]
    code, out, _ = run(capsys, "models", "promoted", "--json", "--db", db)
    report = json.loads(out)
    assert report["generator"] == {"current": None, "path": None, "history": []}
    assert report["surrogate"]["current"] == "s1"
    assert [(h["version"], h["promoted_by"], h["gate"]) for h in report["surrogate"]["history"]] == [
        ("s1", "loop nightly", {"fresh_mae_ratio": 0.9}),
        ("s2", "hand", {"why": "better PM"}),
        ("s1", "rollback", {"rolled_back": "s2"}),
    ]


def test_help_explains_the_commands(capsys):
    for argv, words in (
        (["models"], ["promote", "rollback", "promoted", "Nothing is deleted"]),
        (["models", "promote"], ["VERSION", "--why", "checkpoint file must exist", "adds nothing"]),
        (["models", "rollback"], ["{generator,surrogate}", "shipped model"]),
        (["models", "promoted"], ["--json", "every promotion and rollback"]),
    ):
        with pytest.raises(SystemExit):
            main([*argv, "--help"])
        out = " ".join(capsys.readouterr().out.split())
        for word in words:
            assert word in out, (argv, word)

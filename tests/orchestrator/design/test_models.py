"""``--models shipped|promoted|VERSION``: which checkpoint each kind of model is loaded from, read from the
store's promotions and model registry (no model is loaded here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from circuits import CktLoopError
from orchestrator.design.models import check_choice, describe, resolve_models, shipped_paths
from storage import Store
from tests.storage.conftest import drop_pg_schema, new_pg_schema, pg_admin  # noqa: F401 (pg_admin: a fixture)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path):
    """A store on each backend with surrogate versions s1, s2 and generator version g1 registered."""
    schema = None
    if request.param == "postgresql":
        pg = request.getfixturevalue("pg_admin")
        schema, url = new_pg_schema(pg)
    else:
        url = f"sqlite:///{tmp_path / 'm.db'}"
    try:
        with Store.open(url) as s:
            for kind, version in (("surrogate", "s1"), ("surrogate", "s2"), ("generator", "g1")):
                path = tmp_path / f"{version}.pt"
                path.write_bytes(b"checkpoint")
                s.register_model(kind, version, path, {}, {})
            yield s
    finally:
        if schema is not None:
            drop_pg_schema(pg, schema)


def paths(models: dict) -> dict:
    return {k: (m.how, m.version, Path(m.path).name) for k, m in models.items()}


def test_promoted_is_the_default_and_falls_back_to_the_shipped_models(store: Store):
    shipped = {k: ("shipped", None, p.name) for k, p in shipped_paths().items()}
    assert paths(resolve_models(store, None)) == shipped
    assert "generator shipped (none promoted)" in describe(resolve_models(store, "promoted"))
    store.promote("surrogate", "s1", "loop a", 1)
    store.promote("surrogate", "s2", "loop a", 2)
    got = resolve_models(store, None)
    assert paths(got) == {"generator": shipped["generator"], "surrogate": ("promoted", "s2", "s2.pt")}
    assert describe(got) == "models: generator shipped (none promoted); surrogate promoted s2 (by loop a round 2)"
    assert paths(resolve_models(store, "shipped")) == shipped  # shipped ignores promotions
    store.promote("generator", "g1", "loop a", 2)
    assert resolve_models(store, None)["generator"].version == "g1"


def test_a_registered_version_is_used_for_its_kind_and_the_other_kind_is_promoted(store: Store):
    store.promote("surrogate", "s2", "loop a", 1)
    got = resolve_models(store, "g1")
    assert paths(got) == {"generator": ("registered", "g1", "g1.pt"), "surrogate": ("promoted", "s2", "s2.pt")}
    assert paths(resolve_models(store, "g1,s1")) == {
        "generator": ("registered", "g1", "g1.pt"),
        "surrogate": ("registered", "s1", "s1.pt"),
    }


def test_a_checkpoint_path_wins_over_models_for_its_kind(store: Store, tmp_path: Path):
    store.promote("surrogate", "s2", "loop a", 1)
    mine = tmp_path / "mine.pt"
    got = resolve_models(store, "s1", {"surrogate": mine, "generator": None})
    assert paths(got)["surrogate"] == ("path", None, "mine.pt")
    assert "wins over --models s1" in got["surrogate"].describe()
    assert resolve_models(store, None, {"surrogate": mine})["surrogate"].how == "path"


@pytest.mark.parametrize(
    ("choice", "message"),
    [
        ("s9", "no generator or surrogate version 's9' is registered in the store"),
        ("s1,s2", "--models names two surrogate versions: 's1' and 's2'"),
    ],
)
def test_unknown_or_conflicting_versions_are_named(store: Store, choice: str, message: str):
    with pytest.raises(CktLoopError, match=message):
        resolve_models(store, choice)


def test_a_registered_version_whose_checkpoint_is_gone_is_one_line(store: Store, tmp_path: Path):
    (tmp_path / "s1.pt").unlink()
    with pytest.raises(CktLoopError, match=r"surrogate version 's1' is registered with checkpoint .*s1.pt, which is"):
        resolve_models(store, "s1")
    store.promote("surrogate", "s1", "loop a", 1)
    with pytest.raises(CktLoopError, match="which is missing"):
        resolve_models(store, None)


@pytest.mark.parametrize("text", ["", ",", "a,,b", "shipped,s1", "promoted,x"])
def test_malformed_choices_are_refused_when_parsed(text: str):
    with pytest.raises(ValueError):
        check_choice(text)
    assert check_choice(" s1 , g1") == "s1,g1"

"""Which models a campaign, ``design``, ``serve`` or a loop's first round uses: ``--models shipped|promoted|VERSION``.

* ``promoted`` (the default): per kind (generator, surrogate), the version promoted last in the store's
  ``promotions`` table; a kind with no promotion falls back to the shipped model, and the choice says so;
* ``shipped``: the design models shipped with CktLoop;
* ``VERSION`` (or ``V1,V2``): registered version(s) from the store's model registry, each applied to the kind
  it is registered as; a kind no version names takes its promoted version (or the shipped one).

A checkpoint path given for a kind (``--generator PATH``, ``--surrogate PATH``) wins over ``--models`` for that
kind. A registered version's checkpoint is the path the registry holds for it, which must exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from circuits import CktLoopError

KINDS = ("generator", "surrogate")
DEFAULT = "promoted"
CHOICES = ("shipped", "promoted")


@dataclass(frozen=True)
class ModelChoice:
    """The checkpoint one kind of model is loaded from, and why: ``how`` is shipped, promoted, registered
    (a version named by ``--models``), path (a checkpoint named by ``--generator``/``--surrogate``) or config
    (the serve config's checkpoint); ``version`` is the registered version (None: not from the registry)."""

    kind: str
    path: str
    how: str
    version: str | None = None
    note: str = ""

    def describe(self) -> str:
        what = {
            "shipped": "shipped",
            "promoted": f"promoted {self.version}",
            "registered": f"registered {self.version}",
            "path": f"checkpoint {self.path}",
            "config": f"the serve config's checkpoint {self.path}",
        }[self.how]
        return f"{self.kind} {what}" + (f" ({self.note})" if self.note else "")


def shipped_paths() -> dict[str, Path]:
    """The shipped design checkpoints by kind (paths only: nothing is loaded)."""
    from generator.paths import DESIGN_CHECKPOINT as generator
    from surrogate.paths import DESIGN_CHECKPOINT as surrogate

    return {"generator": generator, "surrogate": surrogate}


def check_choice(text: str) -> str:
    """The ``--models`` value, checked for form only (a version is looked up in the store when it is opened)."""
    names = [v.strip() for v in text.split(",")]
    if not text.strip() or any(not v for v in names):
        raise ValueError(f"expected shipped, promoted or registered VERSION[,VERSION], got {text!r}")
    if len(names) > 1 and any(v in CHOICES for v in names):
        raise ValueError(f"shipped and promoted stand alone, got {text!r}")
    return ",".join(names)


def _registered(store: Any, version: str, kind: str, how: str, note: str = "") -> ModelChoice:
    info = store.model_version(kind, version)
    if not Path(info.path).is_file():
        raise CktLoopError(f"{kind} version {version!r} is registered with checkpoint {info.path}, which is missing")
    return ModelChoice(kind, info.path, how, version, note)


def _promoted(store: Any, kind: str) -> ModelChoice:
    if store is None:
        return ModelChoice(kind, str(shipped_paths()[kind]), "shipped", note="no store")
    promotion = store.promoted(kind)
    if promotion is None:
        return ModelChoice(kind, str(shipped_paths()[kind]), "shipped", note="none promoted")
    note = f"by {promotion.promoted_by}" + (f" round {promotion.round}" if promotion.round else "")
    return _registered(store, promotion.version, kind, "promoted", note)


def resolve_models(
    store: Any, choice: str | None, paths: dict[str, str | Path | None] | None = None
) -> dict[str, ModelChoice]:
    """Each kind's checkpoint for ``choice`` (``--models``; None: promoted) and the explicit ``paths`` by kind,
    which win (see the module doc). A version the registry does not hold is a one-line ``CktLoopError``."""
    choice = DEFAULT if choice is None else choice
    explicit = {k: v for k, v in (paths or {}).items() if v is not None}
    named: dict[str, str] = {}
    if choice not in CHOICES:
        registered = [] if store is None else store.model_versions()
        for version in choice.split(","):
            kinds = [m.kind for m in registered if m.version == version and m.kind in KINDS]
            if not kinds:
                known = sorted({m.version for m in registered if m.kind in KINDS})
                listing = ", ".join(known[-5:]) if known else "none registered"
                raise CktLoopError(
                    f"--models: no generator or surrogate version {version!r} is registered in the store "
                    f"(use shipped, promoted or a registered version; latest: {listing})"
                )
            for kind in kinds:
                if kind in named and named[kind] != version:
                    raise CktLoopError(f"--models names two {kind} versions: {named[kind]!r} and {version!r}")
                named[kind] = version
    out = {}
    for kind in KINDS:
        if kind in explicit:
            note = f"wins over --models {choice}" if choice != DEFAULT or kind in named else ""
            out[kind] = ModelChoice(kind, str(explicit[kind]), "path", note=note)
        elif kind in named:
            out[kind] = _registered(store, named[kind], kind, "registered")
        elif choice == "shipped":
            out[kind] = ModelChoice(kind, str(shipped_paths()[kind]), "shipped")
        else:
            out[kind] = _promoted(store, kind)
    return out


def describe(models: dict[str, ModelChoice]) -> str:
    """One line: which model of each kind is used, and why."""
    return "models: " + "; ".join(models[k].describe() for k in KINDS if k in models)

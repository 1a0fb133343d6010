"""Typed configuration on pydantic v2: YAML files and stored mappings into ``ConfigModel`` subclasses.

Models forbid unknown keys and take values strictly (no ``"5"`` for an int, no ``1.5`` for an int, no
``"yes"`` for a bool; an int is accepted for a float). YAML is read with a resolver that takes ``1e-4``
(no dot) as a float, as YAML 1.2 does. Every problem is one line of ``CktLoopError`` naming the file
(or ``where``), the field path and the bad value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Self, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from circuits.errors import CktLoopError

M = TypeVar("M", bound=BaseModel)
SHOWN_ERRORS = 3  # errors named in one message; the rest are counted


class ConfigModel(BaseModel):
    """Base of every config: unknown keys rejected, strict types, immutable once validated."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, protected_namespaces=())

    def to_dict(self) -> dict[str, Any]:
        """Plain types (tuples kept), as checkpoints store configs."""
        return self.model_dump()

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes``, validated like the original."""
        return self.model_validate({**self.model_dump(), **changes})


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads exponent floats without a dot (``1e-4``) as floats."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def read_yaml(path: str | Path, what: str = "config") -> Any:
    """Parse a YAML file; a missing file or bad YAML is a one-line ``CktLoopError`` naming the file."""
    path = Path(path)
    try:
        return yaml.load(path.read_text(), Loader=_Loader)
    except (FileNotFoundError, IsADirectoryError):
        raise CktLoopError(f"{path}: no such {what} file") from None
    except UnicodeDecodeError:
        raise CktLoopError(f"{path}: not a text file") from None
    except yaml.YAMLError as exc:
        raise CktLoopError(f"{path}: malformed YAML ({' '.join(str(exc).split())})") from None


def load_config(path: str | Path, model: type[M], section: str | None = None) -> M:
    """Read ``path`` (YAML) into ``model``; ``section`` picks a top-level key."""
    data = read_yaml(path)
    if section is not None:
        if not isinstance(data, dict) or section not in data:
            raise CktLoopError(f"{path}: missing section {section!r}")
        data = data[section]
    return from_mapping(data, model, where=str(path) if section is None else f"{path}: {section}")


def from_mapping(data: Any, model: type[M], where: str = "config") -> M:
    """Validate a mapping (a parsed file, a checkpoint's stored dict) into ``model``."""
    if not isinstance(data, dict):
        raise CktLoopError(f"{where}: expected a mapping for {model.__name__}, got {_show(data)}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise CktLoopError(f"{where}: {describe(exc)}") from None


def describe(exc: ValidationError) -> str:
    """pydantic's errors as one line: ``field.path: problem, got value`` for each, joined by ``; ``."""
    return describe_errors(exc.errors(include_url=False))


def describe_errors(errors: Iterable[Mapping[str, Any]]) -> str:
    """``describe`` for a list of pydantic error dicts (as FastAPI's request validation holds them)."""
    parts = []
    for err in errors:
        path = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            parts.append(f"{path}: unknown key")
            continue
        msg = err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
        msg = msg[:1].lower() + msg[1:]
        got = "" if err["type"] == "missing" else f", got {_show(err['input'])}"
        parts.append(f"{path}: {msg}{got}" if path else f"{msg}")
    more = len(parts) - SHOWN_ERRORS
    return "; ".join(parts[:SHOWN_ERRORS]) + (f"; and {more} more" if more > 0 else "")


def _show(value: Any) -> str:
    """A value's repr, cut to keep the message one short line."""
    text = " ".join(repr(value).split())
    return text if len(text) <= 60 else text[:57] + "..."


class _Missing:
    def __repr__(self) -> str:
        return "unset"


MISSING: Any = _Missing()  # the side of a ``config_diff`` entry where the key is absent


def config_diff(old: Any, new: Any, skip: frozenset[str] = frozenset(), prefix: str = "") -> list[tuple[str, Any, Any]]:
    """Where two stored configs (nested mappings) differ: ``(dotted.path, old value, new value)``, with
    ``MISSING`` for an absent key; lists and tuples compare alike; top-level keys in ``skip`` are ignored."""
    if isinstance(old, dict) and isinstance(new, dict):
        diffs = []
        for key in sorted(set(old) | set(new), key=str):
            if not prefix and key in skip:
                continue
            diffs += config_diff(old.get(key, MISSING), new.get(key, MISSING), skip, f"{prefix}{key}.")
        return diffs
    if (list(old) if isinstance(old, tuple | list) else old) != (list(new) if isinstance(new, tuple | list) else new):
        return [(prefix.rstrip("."), old, new)]
    return []

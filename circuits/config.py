"""Typed configuration from YAML: unknown keys and wrong types are rejected, naming file, field and value."""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from circuits.errors import CktLoopError

T = TypeVar("T")


def read_yaml(path: str | Path, what: str = "config") -> Any:
    """Parse a YAML file; a missing file or bad YAML is a one-line ``CktLoopError`` naming the file."""
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise CktLoopError(f"{path}: no such {what} file") from None
    except yaml.YAMLError as exc:
        raise CktLoopError(f"{path}: malformed YAML ({' '.join(str(exc).split())})") from None


def load_config(path: str | Path, cls: type[T], section: str | None = None) -> T:
    """Read ``path`` (YAML) into the dataclass ``cls``; ``section`` picks a top-level key."""
    data = read_yaml(path)
    if section is not None:
        if not isinstance(data, dict) or section not in data:
            raise CktLoopError(f"{path}: missing section {section!r}")
        data = data[section]
    return from_mapping(data, cls, where=str(path))


def from_mapping(data: Any, cls: type[T], where: str = "config") -> T:
    """Build dataclass ``cls`` from a mapping, recursing into nested dataclass fields."""
    if not isinstance(data, dict):
        raise CktLoopError(f"{where}: expected a mapping for {cls.__name__}, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise CktLoopError(
            f"{where}: unknown key(s) {', '.join(unknown)} for {cls.__name__} (known: {', '.join(fields)})"
        )
    hints = typing.get_type_hints(cls)
    values = {}
    for name, value in data.items():
        values[name] = _coerce(value, hints[name], f"{where}: {name}")
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise CktLoopError(f"{where}: {exc}") from None


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return from_mapping(value, hint, where)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, where)
            except CktLoopError:
                continue
        raise CktLoopError(f"{where}: {value!r} is not a {hint}")
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            raise CktLoopError(f"{where}: expected a list, got {value!r}")
        (item,) = typing.get_args(hint)[:1] or (Any,)
        items = [_coerce(v, item, where) for v in value]
        return tuple(items) if origin is tuple else items
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string
        try:
            return float(value)
        except ValueError:
            raise CktLoopError(f"{where}: expected a number, got {value!r}") from None
    if hint in (int, str, bool) and type(value) is not hint:
        raise CktLoopError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value

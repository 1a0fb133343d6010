"""Checks on what callers hand the store, each raising a ``StoreError`` that names the bad field and
value before anything is written."""

from __future__ import annotations

import json
import math
import numbers
import operator
from collections.abc import Iterator
from typing import Any

from circuits.config import MISSING, config_diff
from storage.engine import StoreError


def json_value(value: Any, what: str) -> Any:
    """``value`` as the JSON column will give it back (tuples become lists, keys strings), or a
    StoreError naming ``what`` when it is not JSON (NaN and infinities included)."""
    try:
        return json.loads(json.dumps(value, sort_keys=True, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise StoreError(f"{what} is not JSON-serialisable: {exc}") from None


def nonempty(value: Any, what: str, limit: int = 200) -> str:
    """A non-empty name that fits its column, or a StoreError naming ``what``."""
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise StoreError(f"{what} must be a non-empty string of at most {limit} characters, got {value!r}")
    return value


def integer(value: Any) -> int | None:
    """``value`` as an int if it is an integer (numpy's too) but not a bool, else None."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def count(value: Any, what: str) -> int:
    """A non-negative integer, or a StoreError naming ``what``."""
    n = integer(value)
    if n is None or n < 0:
        raise StoreError(f"{what} must be a non-negative integer, got {value!r}")
    return n


def row_id(value: Any, what: str) -> int:
    """A row id, or a StoreError naming ``what``."""
    n = integer(value)
    if n is None:
        raise StoreError(f"{what} must be an integer id, got {value!r}")
    return n


def number(value: Any, what: str) -> float | None:
    """A float for a nullable Float column (NaN stored as NULL), or a StoreError naming ``what``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise StoreError(f"{what} must be a number or None, got {value!r}")
    return finite(float(value))


def finite(x: float | None) -> float | None:
    """``x`` as a float, with NaN (a spec that could not be read) as None."""
    return None if x is None or math.isnan(x) else float(x)


def config_differences(old: dict[str, Any], new: dict[str, Any]) -> Iterator[str]:
    """One phrase per (nested) key whose value differs between a stored and a requested config."""
    for k, a, b in config_diff(old, new):
        show_a = "unset" if a is MISSING else json.dumps(a)
        show_b = "unset" if b is MISSING else json.dumps(b)
        yield f"config {k} {show_a} (requested {show_b})"

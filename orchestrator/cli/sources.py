"""Where commands read from: circuit files, the store, and the dataset a command works on."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from circuits import Circuit, CircuitError, CktLoopError

if TYPE_CHECKING:
    from storage import Store


def read_circuit(path: str) -> Circuit:
    """A circuit from a JSON file; an object with a ``circuit`` field (an export line) works too."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except FileNotFoundError:
        raise CircuitError(f"{path}: no such file") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise CircuitError(f"{path}: cannot read ({exc.__class__.__name__})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CircuitError(f"{path}: malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if isinstance(data, dict) and "circuit" in data and "nodes" not in data:
        data = data["circuit"]
    try:
        return Circuit.from_dict(data)
    except CircuitError as exc:
        raise CircuitError(f"{path}: {exc}") from None


def open_store(url: str) -> Store:
    from storage import Store

    return Store.open(url)


def dataset_name(store: Store, name: str | None, option: str) -> str:
    """``name``, or the store's only dataset; ``option`` is the flag that names one, for the error."""
    if name:
        return name
    names = [d.name for d in store.datasets()]
    if len(names) == 1:
        return str(names[0])
    if not names:
        raise CktLoopError("the store holds no dataset yet: run `cktloop dataset build --n N` first")
    raise CktLoopError(f"the store holds several datasets ({', '.join(names)}): choose one with {option}")


def data_source(args: argparse.Namespace) -> tuple[str, str | None]:
    """The rows to train or evaluate on: an export file (``--data``), or a dataset in the store."""
    if args.data:
        return str(args.data), None
    with open_store(args.db) as store:
        return args.db, dataset_name(store, args.dataset, "--dataset")

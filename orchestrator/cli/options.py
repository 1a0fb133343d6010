"""Option types for the parser: each checks its value when the command line is parsed.

A bad value ends as argparse's one-line usage error before any command touches the store or
starts Ray. Output paths are checked for writability up front: the nearest existing folder on the
way to them must be a writable directory (missing folders below it are created when written).
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from pathlib import Path

STDIO = "-"


def _number(text: str, kind: type, expected: str) -> float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def _integer_at_least(minimum: int, expected: str, doc: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(_number(text, int, expected))
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text}")
        return value

    parse.__doc__ = doc
    return parse


positive_int = _integer_at_least(1, "a positive integer", "A count: an integer >= 1.")
seed = _integer_at_least(0, "a seed (an integer >= 0)", "A random seed (numpy's generators take no negative ones).")
count = _integer_at_least(0, "a count (an integer >= 0)", "A count that may be 0 (off).")
budget = _integer_at_least(1, "a budget of at least 1 simulation", "Simulations per target: an integer >= 1.")


def positive_float(text: str) -> float:
    """A duration or a share of a resource: a finite number > 0."""
    value = _number(text, float, "a number > 0")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value


def non_negative_float(text: str) -> float:
    """A noise scale or a temperature: a finite number >= 0."""
    value = _number(text, float, "a number >= 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return value


def input_file(text: str) -> Path:
    """An existing, readable regular file."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text}: not a file")
    if not os.access(path, os.R_OK):
        raise argparse.ArgumentTypeError(f"{text}: not readable")
    return path


def input_file_or_stdin(text: str) -> str:
    """An input file, or '-' for standard input."""
    return text if text == STDIO else str(input_file(text))


def _check_writable(path: Path, want_dir: bool) -> None:
    if path.exists():
        if path.is_dir() != want_dir:
            raise argparse.ArgumentTypeError(f"{path}: is {'not ' if want_dir else ''}a directory")
        if not os.access(path, os.W_OK):
            raise argparse.ArgumentTypeError(f"{path}: not writable")
    folder = path if want_dir and path.exists() else path.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise argparse.ArgumentTypeError(f"{path}: cannot write there ({folder} is not a directory)")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{path}: cannot write there ({folder} is not writable)")


def output_file(text: str) -> Path:
    """A file to write: not a directory, in a folder that exists or can be made, and writable."""
    path = Path(text)
    _check_writable(path, want_dir=False)
    return path


def output_file_or_stdout(text: str) -> Path:
    """An output file, or '-' for standard output."""
    return Path(STDIO) if text == STDIO else output_file(text)


def output_dir(text: str) -> Path:
    """A directory to write into: an existing writable one, or one that can be made."""
    path = Path(text)
    _check_writable(path, want_dir=True)
    return path


def database_url(text: str) -> str:
    """A SQLAlchemy URL for a backend the store supports (whether it answers is checked on opening)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        backend = make_url(text).get_backend_name()
    except ArgumentError:
        raise argparse.ArgumentTypeError("not a database URL (e.g. sqlite:///cktloop.db)") from None
    if backend not in ("sqlite", "postgresql"):
        raise argparse.ArgumentTypeError(f"unsupported database backend {backend!r} (use sqlite or postgresql)")
    return text


def ray_address(text: str) -> str:
    """A Ray cluster to join: ``auto``, ``HOST:PORT`` or ``ray://HOST:PORT`` (whether it answers is Ray's to say)."""
    if text == "auto":
        return text
    host, _, port = text.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected auto, HOST:PORT or ray://HOST:PORT, got {text!r}")
    return text


def db_option(parser: argparse.ArgumentParser) -> None:
    """The ``--db`` option every command that reads or writes the store takes."""
    from storage import default_url

    parser.add_argument(
        "--db",
        type=database_url,
        default=default_url(),
        metavar="URL",
        help="SQLAlchemy database URL (default: $CKTLOOP_DB or sqlite:///cktloop.db in the current directory); "
        "e.g. postgresql+psycopg://user@host/db",
    )


def models_option(parser: argparse.ArgumentParser) -> None:
    """``--models shipped|promoted|VERSION``: which registered models to load (orchestrator.design.models)."""

    def choice(text: str) -> str:
        from orchestrator.design.models import check_choice

        try:
            return check_choice(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parser.add_argument(
        "--models",
        type=choice,
        metavar="shipped|promoted|VERSION",
        help="models to use: the promoted versions (default; the shipped model for a kind none was promoted of), "
        "the shipped ones, or registered VERSION[,VERSION] (each for its kind, the other kind promoted); "
        "--generator/--surrogate PATH win over it for their kind",
    )

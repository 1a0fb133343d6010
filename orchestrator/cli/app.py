"""The ``cktloop`` parser and ``main``: every problem a user can fix ends as one line and exit status 2."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from circuits import CktLoopError

EXIT_ERROR = 2


class UsageError(CktLoopError):
    """A command line the parser refuses: a bad option value, a missing argument, an unknown command."""


class Parser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line (through ``main``'s catch), not usage plus message."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return int(args.run(args) or 0)
    except CktLoopError as exc:
        message = " ".join(str(exc).split())  # one line, whatever the message quoted (a YAML excerpt, say)
        print(f"cktloop: error: {message}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("cktloop: interrupted (re-run the same command to resume)", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    from orchestrator.cli import circuits, datasets, design, finetune, loop, models, serve

    parser = Parser(
        prog="cktloop",
        description="Specification-driven op-amp design: build SPICE-labelled datasets, train and evaluate the "
        "generator and the surrogate, design op-amps for target specs and run campaigns of many targets.",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for area in (datasets, circuits, models, finetune, design, loop, serve):
        area.add_commands(commands)
    return parser

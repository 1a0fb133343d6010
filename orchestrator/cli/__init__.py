"""The ``cktloop`` command line: the parser, option validation and one module per command area."""

from orchestrator.cli.app import main

__all__ = ["main"]

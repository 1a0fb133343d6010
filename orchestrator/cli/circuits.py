"""``cktloop netlist`` and ``cktloop simulate``: one circuit file in, its deck or its specs out."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from orchestrator.cli.options import input_file_or_stdin
from orchestrator.cli.sources import read_circuit


def add_commands(commands: Any) -> None:
    simulate = commands.add_parser(
        "simulate",
        help="simulate one circuit with ngspice and print its specs as JSON",
        description="Read a circuit JSON file (or '-' for standard input; an exported JSON line works too) and print "
        "gain_db, ugbw_hz, pm_deg, fom and the status as JSON.",
    )
    simulate.add_argument("file", type=input_file_or_stdin, help="circuit JSON file (or '-' for standard input)")
    simulate.set_defaults(run=_simulate)

    netlist = commands.add_parser(
        "netlist",
        help="print a circuit's self-contained ngspice deck",
        description="Print the deck that `ngspice -b` runs: the AC sweep from 1 Hz to 100 GHz, H = V(out)/V(inp).",
    )
    netlist.add_argument("file", type=input_file_or_stdin, help="circuit JSON file (or '-' for standard input)")
    netlist.set_defaults(run=_netlist)


def _simulate(args: argparse.Namespace) -> int:
    from simulator.ngspice import NgspiceBackend

    circuit = read_circuit(args.file)
    (result,) = NgspiceBackend().simulate([circuit])
    print(json.dumps({"id": circuit.key, **result.to_dict()}, indent=2))
    return 0


def _netlist(args: argparse.Namespace) -> int:
    from simulator.netlist import deck

    sys.stdout.write(deck(read_circuit(args.file)))
    return 0

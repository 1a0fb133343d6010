"""From a circuit to SPICE elements and a self-contained ngspice deck (reference §1.6).

Nets: ``inp`` (driven by ``Vin``, AC 1), ``n1``/``n2`` (stage outputs), ``out`` (the last
stage's output), ground ``0``, and ``x<i>`` inside node i's series R-C branch. A side node on
edges X → side → Y sits between X's and Y's output nets. Every gm subgraph carries a fixed
1 MΩ ∥ 50 fF load on the net its VCCS drives. In SPICE's node order ``G b 0 a 0 gm`` a positive
gm pulls current out of ``b``: an inverting stage of gain −gm·R_load.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from circuits import Circuit, subgraph_type, value_grid
from circuits.subgraphs import Arrangement

INPUT_NET, OUTPUT_NET, GROUND = "inp", "out", "0"
LOAD_OHMS = 1e6
LOAD_FARADS = 50e-15
# 1 Hz .. 100 GHz, 100 points per decade: 1,101 points.
AC_POINTS_PER_DECADE, AC_START_HZ, AC_STOP_HZ = 100, 1.0, 100e9
AC_LINE = f".ac dec {AC_POINTS_PER_DECADE} 1 100G"


@dataclass(frozen=True)
class Element:
    """One SPICE element: R, C or G (VCCS: current ``value``·V(ctrl_p) from ``pos`` to ``neg``)."""

    kind: str  # "R" | "C" | "G"
    name: str
    pos: str
    neg: str
    value: float
    ctrl_p: str = ""
    ctrl_n: str = ""


def net_of(circuit: Circuit) -> dict[int, str]:
    """Output net of every spine node (In → inp, stages → n1, n2, last stage and Out → out)."""
    spine = circuit.spine
    nets = {spine[0]: INPUT_NET, spine[-1]: OUTPUT_NET, spine[-2]: OUTPUT_NET}
    for k, node in enumerate(spine[1:-2], start=1):
        nets[node] = f"n{k}"
    return nets


def elements(circuit: Circuit) -> list[Element]:
    """The circuit's elements, without the input source that drives ``inp``."""
    grid = value_grid(circuit.grid)
    nets = net_of(circuit)
    spine = circuit.spine
    out: list[Element] = []
    for i, node in enumerate(circuit.nodes):
        t = subgraph_type(node.type)
        if t.is_terminal:
            continue
        if i in nets:  # main-path stage: from the previous spine node's net to its own
            a, b = nets[spine[spine.index(i) - 1]], nets[i]
        else:
            (src,), (dst,) = circuit.predecessors(i), circuit.successors(i)
            a, b = nets[src], nets[dst]
        r, c = grid.ohms(node.r), grid.farads(node.c)
        if t.arrangement is Arrangement.SERIES_RC:
            out += [Element("R", f"R{i}", a, f"x{i}", r), Element("C", f"C{i}", f"x{i}", b, c)]
        else:
            if t.has_r:
                out.append(Element("R", f"R{i}", a, b, r))
            if t.has_c:
                out.append(Element("C", f"C{i}", a, b, c))
        if t.has_gm:
            sense, drive = (b, a) if t.feedback else (a, b)
            gm = t.gm_sign * grid.siemens(node.gm)
            out += [
                Element("G", f"G{i}", drive, GROUND, gm, sense, GROUND),
                Element("R", f"RL{i}", drive, GROUND, LOAD_OHMS),
                Element("C", f"CL{i}", drive, GROUND, LOAD_FARADS),
            ]
    return out


def spice_lines(parts: Sequence[Element], prefix: str = "") -> list[str]:
    """The input source and the elements as SPICE lines; ``prefix`` makes names and nets unique
    so several circuits can share one deck (and one ground)."""

    def net(name: str) -> str:
        return name if name == GROUND else prefix + name

    lines = [f"V{prefix}in {net(INPUT_NET)} 0 DC 0 AC 1"]
    for e in parts:
        name = f"{e.kind}{prefix}{e.name[1:]}" if prefix else e.name
        if e.kind == "G":
            lines.append(f"{name} {net(e.pos)} {net(e.neg)} {net(e.ctrl_p)} {net(e.ctrl_n)} {e.value:.12g}")
        else:
            lines.append(f"{name} {net(e.pos)} {net(e.neg)} {e.value:.12g}")
    return lines


def deck(circuit: Circuit, title: str | None = None) -> str:
    """A self-contained ngspice deck: ``ngspice -b deck.cir`` runs the AC sweep the measurement uses."""
    body = [
        f"* {title or 'cktloop circuit ' + circuit.key}",
        f"* H(f) = V({OUTPUT_NET})/V({INPUT_NET}); {circuit.n_stages}-stage OCB op-amp",
        *spice_lines(elements(circuit)),
        AC_LINE,
        ".end",
    ]
    return "\n".join(body) + "\n"

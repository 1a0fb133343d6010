"""A drawing of an op-amp's topology, for reports: the main path left to right, side nodes on arcs.

Spine nodes (In → stages → Out) sit on one row; each side node is a box above or below it, wired
from the spine node whose output net it starts on to the one it ends on. Boxes name the subgraph
type and its devices in physical units, so a reader needs neither the type table nor the grid.
"""

from __future__ import annotations

import math

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from circuits import Circuit, Node, subgraph_type, value_grid

SPACING = 2.4  # inches between spine nodes
BOX_W, BOX_H = 1.8, 0.95
LEVEL_STEP = 1.35  # inches between rows of side nodes
LEVELS = (1, -1, 2, -2, 3, -3)
COLOURS = {"terminal": "#dddddd", "stage": "#cfe3f7", "passive": "#fbe0c3", "gm": "#e3d4f2"}
_PREFIXES = ((1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"), (1e-12, "p"))


def si(value: float, unit: str) -> str:
    """``value`` with an SI prefix and three significant digits, e.g. 3.5e-13 F → '350 fF'."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g} {unit}"
    for scale, prefix in _PREFIXES:
        if abs(value) >= scale * 0.9995:
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value / 1e-15:.3g} f{unit}"


def device_labels(node: Node, grid: str) -> list[str]:
    """The node's devices in physical units; gm is a magnitude, its sign is in the type's name."""
    g = value_grid(grid)
    t = subgraph_type(node.type)
    labels = []
    if t.has_r:
        labels.append(f"R {si(g.ohms(node.r), 'Ω')}")
    if t.has_c:
        labels.append(f"C {si(g.farads(node.c), 'F')}")
    if t.has_gm:
        labels.append(f"gm {si(g.siemens(node.gm), 'S')}")
    return labels


def draw_circuit(circuit: Circuit, title: str | None = None) -> Figure:
    """A figure of ``circuit`` (no pyplot, so callers need no backend and nothing leaks)."""
    spine = circuit.spine
    x_of = {node: k * SPACING for k, node in enumerate(spine)}
    levels = _side_levels(circuit, x_of)
    top = max([0, *levels.values()])
    bottom = min([0, *levels.values()])
    width = (len(spine) - 1) * SPACING + BOX_W + 0.6
    height = (top - bottom) * LEVEL_STEP + BOX_H + 0.9
    fig = Figure(figsize=(width, height))
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_xlim(-BOX_W / 2 - 0.3, width - BOX_W / 2 - 0.3)
    ax.set_ylim(bottom * LEVEL_STEP - BOX_H / 2 - 0.3, top * LEVEL_STEP + BOX_H / 2 + 0.6)
    ax.set_axis_off()

    for k, i in enumerate(spine):
        node = circuit.nodes[i]
        t = subgraph_type(node.type)
        if t.is_terminal:
            _box(ax, x_of[i], 0.0, [t.name], COLOURS["terminal"])
        else:
            _box(ax, x_of[i], 0.0, [f"stage {k}", t.name, *device_labels(node, circuit.grid)], COLOURS["stage"])
        if k:
            _wire(ax, [(x_of[spine[k - 1]] + BOX_W / 2, 0.0), (x_of[i] - BOX_W / 2, 0.0)])

    for i, level in levels.items():
        (src,), (dst,) = circuit.predecessors(i), circuit.successors(i)
        node = circuit.nodes[i]
        t = subgraph_type(node.type)
        y = level * LEVEL_STEP
        x = (x_of[src] + x_of[dst]) / 2
        sign = 1.0 if level > 0 else -1.0
        edge = sign * BOX_H / 2  # the spine box's top or bottom edge
        jog = 0.12 * (abs(level) - 1) + 0.1  # keeps wires of different rows apart where they meet a spine box
        _box(ax, x, y, [t.name, *device_labels(node, circuit.grid)], COLOURS["gm" if t.has_gm else "passive"])
        _wire(ax, [(x_of[src] + jog, edge), (x_of[src] + jog, y), (x - BOX_W / 2, y)])
        _wire(ax, [(x + BOX_W / 2, y), (x_of[dst] - jog, y), (x_of[dst] - jog, edge)])

    ax.text(
        ax.get_xlim()[0] + 0.1,
        ax.get_ylim()[1] - 0.1,
        title or f"{circuit.n_stages}-stage op-amp, {len(levels)} side node(s)",
        ha="left",
        va="top",
        fontsize=9,
    )
    return fig


def _side_levels(circuit: Circuit, x_of: dict[int, float]) -> dict[int, int]:
    """A row for every side node, nearest the spine first, so that no two spans on a row meet."""
    placed: dict[int, list[tuple[float, float]]] = {}
    levels = {}
    for i in circuit.topological_order():
        if i in x_of:
            continue
        (src,), (dst,) = circuit.predecessors(i), circuit.successors(i)
        span = (x_of[src], x_of[dst])
        for level in LEVELS:
            if all(max(span[0], a) > min(span[1], b) for a, b in placed.get(level, [])):
                placed.setdefault(level, []).append(span)
                levels[i] = level
                break
    return levels


def _box(ax: Axes, x: float, y: float, lines: list[str], colour: str) -> None:
    ax.add_patch(
        FancyBboxPatch(
            (x - BOX_W / 2, y - BOX_H / 2),
            BOX_W,
            BOX_H,
            boxstyle="round,pad=0,rounding_size=0.08",
            facecolor=colour,
            edgecolor="#444444",
        )
    )
    ax.text(x, y, "\n".join(lines), ha="center", va="center", fontsize=7.5, linespacing=1.25)


def _wire(ax: Axes, points: list[tuple[float, float]]) -> None:
    """A polyline with an arrowhead at its end, pointing the way the signal goes."""
    if len(points) > 2:
        xs, ys = zip(*points[:-1])
        ax.plot(xs, ys, color="#444444", lw=1.0)
    ax.add_patch(FancyArrowPatch(points[-2], points[-1], arrowstyle="-|>", mutation_scale=10, color="#444444", lw=1.0))

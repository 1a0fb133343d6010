"""A numpy backend: modified nodal analysis of the same element lists, all frequencies at once.

The OCB family is linear (R, C, VCCS), so the AC response is a batched complex solve. It needs
no ngspice, which makes it the backend for tests of everything around the simulator, and a
cross-check of the ngspice path (the two agree to numerical precision).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from circuits import Circuit, Performance, SimStatus
from simulator.measure import measure, sweep_frequencies
from simulator.netlist import GROUND, INPUT_NET, OUTPUT_NET, Element, elements


class MnaBackend:
    """Solves (G + jωC)·v = i per frequency with the input net held at 1 V."""

    name = "mna"
    version = "1"

    def __init__(self) -> None:
        self.freq_hz = sweep_frequencies()

    def simulate(self, circuits: Sequence[Circuit]) -> list[Performance]:
        return self.simulate_elements([elements(c) for c in circuits])

    def simulate_elements(self, blocks: Sequence[Sequence[Element]]) -> list[Performance]:
        return [self._one(block) for block in blocks]

    def transfer(self, block: Sequence[Element]) -> np.ndarray:
        """H(f) = V(out)/V(inp) over the sweep."""
        nets = sorted({n for e in block for n in (e.pos, e.neg, e.ctrl_p, e.ctrl_n)} - {"", GROUND, INPUT_NET})
        index = {net: k for k, net in enumerate(nets)}
        size = len(nets)
        g = np.zeros((size, size))
        c = np.zeros((size, size))
        rhs_g = np.zeros(size)  # currents injected per volt at the input net, conductive part
        rhs_c = np.zeros(size)  # and capacitive part (times jω)

        def stamp(matrix: np.ndarray, rhs: np.ndarray, row: str, col: str, value: float) -> None:
            if row in index:
                if col in index:
                    matrix[index[row], index[col]] += value
                elif col == INPUT_NET:
                    rhs[index[row]] -= value

        for e in block:
            if e.kind == "G":  # current value·V(ctrl_p − ctrl_n) leaves e.pos, enters e.neg
                for node, sign in ((e.pos, 1.0), (e.neg, -1.0)):
                    stamp(g, rhs_g, node, e.ctrl_p, sign * e.value)
                    stamp(g, rhs_g, node, e.ctrl_n, -sign * e.value)
                continue
            matrix, rhs, y = (g, rhs_g, 1.0 / e.value) if e.kind == "R" else (c, rhs_c, e.value)
            for a, b in ((e.pos, e.neg), (e.neg, e.pos)):
                stamp(matrix, rhs, a, a, y)
                stamp(matrix, rhs, a, b, -y)
        jw = 2j * np.pi * self.freq_hz[:, None, None]
        system = g[None] + jw * c[None]
        drive = (rhs_g[None] + jw[:, :, 0] * rhs_c[None])[..., None]
        solution = np.linalg.solve(system, drive)[..., 0]
        return solution[:, index[OUTPUT_NET]]

    def _one(self, block: Sequence[Element]) -> Performance:
        try:
            h = self.transfer(block)
        except np.linalg.LinAlgError as exc:
            return Performance.failed(SimStatus.SIM_ERROR, f"singular nodal matrix: {exc}")
        return measure(self.freq_hz, h)

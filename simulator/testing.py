"""Backends that misbehave on purpose, for tests of the machinery around simulation.

Shipped with the package (like torch_geometric.testing) so Ray workers can import them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

from circuits import Circuit, Performance
from simulator.mna import MnaBackend


class FaultyBackend(MnaBackend):
    """The numpy backend, except that it hangs on ``hang`` keys and kills its process on ``crash`` keys."""

    name = "faulty"

    def __init__(self, hang: frozenset[str] = frozenset(), crash: frozenset[str] = frozenset()) -> None:
        super().__init__()
        self.hang, self.crash = hang, crash

    def simulate(self, circuits: Sequence[Circuit]) -> list[Performance]:
        for circuit in circuits:
            if circuit.key in self.crash:
                os._exit(17)
            if circuit.key in self.hang:
                time.sleep(3600)
        return super().simulate(circuits)

"""The simulator interface: what the rest of CktLoop needs from a circuit simulator."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from circuits import Circuit, Performance


class SimulatorBackend(Protocol):
    """Simulates batches of circuits; one result per circuit, in input order, never raising for a bad circuit."""

    name: str

    @property
    def version(self) -> str: ...

    def simulate(self, circuits: Sequence[Circuit]) -> list[Performance]: ...

"""Backends that misbehave on purpose, or take a fixed time, for tests and benchmarks of the
machinery around simulation.

Shipped with the package (like torch_geometric.testing) so Ray workers can import them.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence

from circuits import Circuit, Performance, SimStatus
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


def fake_measurement(key: str) -> Performance:
    """Deterministic, plausible specs from a circuit key's hash: OK mostly, one in eight without a
    unity-gain crossing."""
    h = int(hashlib.sha256(key.encode()).hexdigest()[:12], 16)
    if h % 8 == 0:
        return Performance(SimStatus.NO_CROSSING, gain_db=-float(h % 20))
    gain = 20.0 + (h % 8000) / 100  # 20..100 dB
    ugbw = 10 ** (5 + (h // 8000 % 500) / 100)  # 100 kHz..10 GHz
    pm = -30.0 + (h // 4_000_000 % 1500) / 10  # -30..120 degrees
    return Performance(SimStatus.OK, gain_db=gain, ugbw_hz=ugbw, pm_deg=pm)


class FixedLatencyBackend:
    """Takes ``latency_s`` a circuit (asleep: no CPU) and answers ``fake_measurement`` of its key.

    For measuring the orchestration alone: with W workers its ideal throughput is W / latency_s
    circuits a second, whatever the machine's cores.
    """

    name = "fixed-latency"

    def __init__(self, latency_s: float = 0.02) -> None:
        if not latency_s >= 0:
            raise ValueError(f"latency_s must be >= 0, got {latency_s!r}")
        self.latency_s = latency_s

    @property
    def version(self) -> str:
        return f"{self.latency_s * 1000:g}ms"

    def simulate(self, circuits: Sequence[Circuit]) -> list[Performance]:
        time.sleep(self.latency_s * len(circuits))
        return [fake_measurement(c.key) for c in circuits]

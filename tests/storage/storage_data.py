"""Test data for the storage tests: rows drawn from the circuit family, and fake results."""

from __future__ import annotations

from circuits import Circuit, Performance, Sample, SimStatus, generate
from storage import DatasetRow

_SAMPLES: dict[tuple[int, int], list[Sample]] = {}


def samples(n: int, seed: int = 1) -> list[Sample]:
    """The first ``n`` circuits of the family for ``seed`` (cached: generating is not free)."""
    if (n, seed) not in _SAMPLES:
        _SAMPLES[(n, seed)] = list(generate(n, seed))
    return _SAMPLES[(n, seed)]


def rows(n: int, seed: int = 1) -> list[DatasetRow]:
    """Dataset rows for the first ``n`` circuits; every fifth topology goes to the test split.

    A stream can repeat a circuit (a small topology sized twice alike); a dataset holds each circuit
    once, at its first position, so repeats are left out here to keep the expected counts simple.
    """
    seen: set[Circuit] = set()  # the generator lists a topology's nodes in one order: equal means same key
    out = []
    for s in samples(n, seed):
        if s.circuit not in seen:
            seen.add(s.circuit)
            out.append(DatasetRow.from_sample(s, "test" if s.topology % 5 == 0 else "train"))
    return out


def fake_performance(key: str) -> Performance:
    """A deterministic result for a circuit key: mostly OK, some failures of each kind."""
    h = int(key[:8], 16)
    if h % 7 == 0:
        return Performance.failed(SimStatus.SIM_ERROR, f"singular matrix ({key[:6]})")
    if h % 11 == 0:
        return Performance(SimStatus.NO_CROSSING, gain_db=-3.5)
    return Performance(SimStatus.OK, gain_db=20 + h % 80, ugbw_hz=1e5 * (1 + h % 1000), pm_deg=-30 + h % 120)

"""simulator.testing: the fixed-latency backend for orchestration benchmarks."""

import pytest

from circuits import SimStatus, generate
from simulator import testing
from simulator.backend import SimulatorBackend
from simulator.testing import FixedLatencyBackend, fake_measurement


def test_fixed_latency_sleeps_its_latency_per_circuit_and_answers_from_the_key(monkeypatch):
    slept = []
    monkeypatch.setattr(testing.time, "sleep", slept.append)
    circuits = [s.circuit for s in generate(40, 3)]
    backend: SimulatorBackend = FixedLatencyBackend(0.02)
    first = backend.simulate(circuits)
    assert slept == [pytest.approx(0.8)]
    assert first == backend.simulate(circuits) == [fake_measurement(c.key) for c in circuits]
    assert (backend.name, backend.version) == ("fixed-latency", "20ms")


def test_fake_measurements_vary_and_are_valid():
    results = [fake_measurement(s.circuit.key) for s in generate(200, 5)]
    ok = [r for r in results if r.ok]
    assert 0 < len(results) - len(ok) < len(results) // 3
    assert all(r.status is SimStatus.NO_CROSSING and r.ugbw_hz is None for r in results if not r.ok)
    assert len({r.gain_db for r in ok}) > len(ok) // 2 and all(r.fom is not None for r in ok)
    assert all(20 <= r.gain_db <= 100 and 1e5 <= r.ugbw_hz <= 1e10 and -30 <= r.pm_deg <= 120 for r in ok)


def test_fixed_latency_rejects_a_negative_latency():
    with pytest.raises(ValueError, match="latency_s must be >= 0"):
        FixedLatencyBackend(-1)

"""Measurement against closed-form transfer functions."""

import numpy as np
import pytest

from circuits import SimStatus
from simulator.measure import measure, sweep_frequencies

F = sweep_frequencies()
S = 2j * np.pi * F


def poles(dc_gain: float, *pole_hz: float) -> np.ndarray:
    h = np.full_like(S, dc_gain)
    for p in pole_hz:
        h = h / (1 + S / (2 * np.pi * p))
    return h


def test_sweep_is_ngspice_dec_100_from_1hz_to_100ghz():
    assert F.size == 1101
    assert F[0] == 1.0 and F[-1] == pytest.approx(100e9)
    assert np.allclose(np.diff(np.log10(F)), 0.01)


def test_single_pole_stage():
    # |H| = 1 at f = fp·sqrt(A² − 1); PM = 180° − atan(f/fp) ≈ 90° for a large A.
    a, fp = 1000.0, 1e3
    result = measure(F, poles(a, fp))
    assert result.status is SimStatus.OK
    assert result.gain_db == pytest.approx(20 * np.log10(a), abs=1e-4)
    assert result.ugbw_hz == pytest.approx(fp * np.sqrt(a**2 - 1), rel=1e-3)
    assert result.pm_deg == pytest.approx(180 - np.degrees(np.arctan(np.sqrt(a**2 - 1))), abs=0.01)


def test_textbook_three_pole_loop():
    result = measure(F, poles(1000.0, 1e3, 1e5, 1e8))
    assert result.ugbw_hz == pytest.approx(308.42e3, rel=5e-4)
    assert result.pm_deg == pytest.approx(17.97, abs=0.01)
    assert result.gain_db == pytest.approx(60.0, abs=1e-4)


def test_two_pole_miller_amplifier_closed_form():
    # Miller-compensated two-stage: H = A0 (1 − s/z) / ((1 + s/p1)(1 + s/p2)), RHP zero at z = gm2/Cc.
    a0, p1, p2, z = 1e4, 1e3, 50e6, 500e6
    h = a0 * (1 - S / (2 * np.pi * z)) / ((1 + S / (2 * np.pi * p1)) * (1 + S / (2 * np.pi * p2)))
    result = measure(F, h)
    f = np.logspace(0, 11, 200001)
    mag = np.abs(a0 * (1 - 2j * np.pi * f / (2 * np.pi * z)) / ((1 + 1j * f / p1) * (1 + 1j * f / p2)))
    fu = f[np.argmax(mag < 1)]
    pm = 180 - np.degrees(np.arctan(fu / p1) + np.arctan(fu / p2) + np.arctan(fu / z))
    assert result.ugbw_hz == pytest.approx(fu, rel=1e-3)
    assert result.pm_deg == pytest.approx(pm, abs=0.05)


def test_inverting_and_non_inverting_amplifiers_measure_alike():
    h = poles(1000.0, 1e3, 1e5, 1e8)
    assert measure(F, -h).pm_deg == pytest.approx(measure(F, h).pm_deg, abs=1e-9)


def test_phase_is_unwrapped_beyond_180_degrees():
    # Four coincident poles: −360° at high frequency; at the crossing ∠H is well below −180°.
    h = poles(1e4, 1e3, 1e3, 1e3, 1e3)
    result = measure(F, h)
    fu = 1e3 * np.sqrt(1e4 ** (1 / 2) - 1)  # |H| = A/(1 + (f/fp)²)² = 1
    assert result.ugbw_hz == pytest.approx(fu, rel=1e-3)
    assert result.pm_deg == pytest.approx(180 - 4 * np.degrees(np.arctan(fu / 1e3)), abs=0.05)
    assert result.pm_deg < -90


def test_no_crossing_is_a_status_not_a_zero():
    low = measure(F, poles(0.5, 1e3))
    assert low.status is SimStatus.NO_CROSSING
    assert low.ugbw_hz is None and low.pm_deg is None and low.fom is None
    assert low.gain_db == pytest.approx(20 * np.log10(0.5))
    flat = measure(F, np.full_like(S, 10.0))  # never falls below 1 inside the sweep
    assert flat.status is SimStatus.NO_CROSSING


def test_non_finite_sweep_is_a_simulation_error():
    h = poles(1000.0, 1e3)
    h[10] = np.nan
    assert measure(F, h).status is SimStatus.SIM_ERROR


def test_mismatched_sweeps_are_rejected():
    with pytest.raises(ValueError, match="matching"):
        measure(F[:-1], poles(10.0, 1e3))


def test_ocb_reading_of_the_phase_margin():
    # Non-inverting single pole: PM 90°, raw phase −90° at the crossing → OCB reads 90°.
    # Inverting: the raw phase is +90°, so OCB reads 180° + 90° wrapped = −90°.
    h = poles(1000.0, 1e3)
    assert measure(F, h).pm_ocb_deg == pytest.approx(measure(F, h).pm_deg, abs=1e-9)
    assert measure(F, -h).pm_ocb_deg == pytest.approx(measure(F, h).pm_deg - 180, abs=1e-9)
    deep = measure(F, poles(1e8, 1e3, 1e3, 1e3, 1e3, 1e3, 1e3))  # standard PM far below −180°: OCB wraps it
    assert deep.pm_deg < -180
    assert -180 <= deep.pm_ocb_deg < 180
    assert deep.pm_ocb_deg == pytest.approx(deep.pm_deg + 360, abs=1e-9)

"""Gain, unity-gain bandwidth and phase margin from an AC sweep of H = V(out)/V(inp).

* ``gain_db``: 20·log10|H| at the first point (1 Hz).
* ``ugbw_hz``: the first downward crossing of |H| = 1, interpolated linearly in (log10 f, dB).
* ``pm_deg``: 180° + ∠H′ at ``ugbw_hz``, where H′ = −H if the amplifier inverts at low frequency
  (Re H(1 Hz) < 0) and H′ = H otherwise; ∠H′ is taken in (−180°, 180°] at 1 Hz, unwrapped along
  the sweep and interpolated in log10 f. Inverting and non-inverting amplifiers are treated
  alike, and a single-pole stage has 90°.
* ``pm_ocb_deg``: 180° + the raw phase of H at ``ugbw_hz`` wrapped into [−180°, 180°), the reading
  that matches the published OCB labels (for comparisons with them only).
"""

from __future__ import annotations

import numpy as np

from circuits import Performance, SimStatus


def measure(freq_hz: np.ndarray, h: np.ndarray) -> Performance:
    """Measure one transfer function sampled at increasing frequencies."""
    freq_hz = np.asarray(freq_hz, dtype=float)
    h = np.asarray(h, dtype=complex)
    if freq_hz.shape != h.shape or freq_hz.size < 2:
        raise ValueError(f"need matching sweeps of >= 2 points, got {freq_hz.shape} and {h.shape}")
    mag = np.abs(h)
    if not np.all(np.isfinite(mag)):
        return Performance.failed(SimStatus.SIM_ERROR, "non-finite values in the AC sweep")
    with np.errstate(divide="ignore"):
        db = 20.0 * np.log10(mag)
    gain_db = float(db[0])
    above = mag >= 1.0
    falls = np.flatnonzero(above[:-1] & ~above[1:])
    if falls.size == 0:
        return Performance(
            status=SimStatus.NO_CROSSING,
            gain_db=gain_db if np.isfinite(gain_db) else None,
            error=f"|H| does not fall through 1 between {freq_hz[0]:g} Hz and {freq_hz[-1]:g} Hz",
        )
    i = int(falls[0])
    logf = np.log10(freq_hz)
    t = db[i] / (db[i] - db[i + 1]) if np.isfinite(db[i + 1]) else 1.0
    log_ugbw = logf[i] + t * (logf[i + 1] - logf[i])
    inverting = h[0].real < 0
    h_ref = -h if inverting else h
    phase = np.unwrap(np.angle(h_ref[: i + 2]))  # np.angle is in (-pi, pi]; unwrap keeps the start
    phase_at = phase[i] + t * (phase[i + 1] - phase[i])
    pm_deg = float(180.0 + np.degrees(phase_at))
    return Performance(
        status=SimStatus.OK,
        gain_db=gain_db,
        ugbw_hz=float(10.0**log_ugbw),
        pm_deg=pm_deg,
        pm_ocb_deg=float((pm_deg + (180.0 if inverting else 0.0) + 180.0) % 360.0 - 180.0),
    )


def sweep_frequencies(points_per_decade: int = 100, start_hz: float = 1.0, stop_hz: float = 100e9) -> np.ndarray:
    """The frequencies of ``.ac dec`` from start to stop (inclusive)."""
    decades = np.log10(stop_hz / start_hz)
    n = round(decades * points_per_decade)
    return start_hz * 10.0 ** (np.arange(n + 1) / points_per_decade)

"""Measured performance of an op-amp, the figure of merit, and simulation outcomes.

Units are in the field names: dB, Hz, degrees. The FoM is defined here and nowhere else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from circuits.specs import SPEC_FIELDS


class SimStatus(StrEnum):
    """How a simulation ended. Only ``OK`` carries specs; every other status carries a reason."""

    OK = "ok"
    NO_CROSSING = "no_crossing"  # |H| never falls through 1 (0 dB) inside the sweep
    SIM_ERROR = "sim_error"  # ngspice refused or failed the deck (e.g. singular matrix)
    TIMEOUT = "timeout"  # the run exceeded its time limit
    CRASHED = "crashed"  # the worker process died while running it


def figure_of_merit(gain_db: float, ugbw_hz: float, pm_deg: float) -> float:
    """FoM = 1.2·G/100 dB + 1.6·min(PM, 90°)/90° + 10·UGBW/1 GHz.

    The weights are OCB's (reference §2.2), so magnitudes stay comparable with published
    FoMs, but the phase term uses a standard phase margin (positive = stable) instead of
    OCB's PM/(−90°), which rewards unstable amplifiers. It saturates at 90°, the margin of
    a single-pole amplifier: a larger margin buys nothing, a negative one is penalised.
    """
    return 1.2 * gain_db / 100.0 + 1.6 * min(pm_deg, 90.0) / 90.0 + 10.0 * ugbw_hz / 1e9


def ocb_figure_of_merit(gain_db: float, ugbw_hz: float, pm_ocb_deg: float) -> float:
    """OCB's own FoM, 1.2·|G|/100 dB + 1.6·PM_ocb/(−90°) + 10·UGBW/1 GHz, for comparisons with the
    published labels only: its phase term rewards unstable amplifiers (reference §2.2, §6.1)."""
    return 1.2 * abs(gain_db) / 100.0 + 1.6 * pm_ocb_deg / -90.0 + 10.0 * ugbw_hz / 1e9


@dataclass(frozen=True)
class Performance:
    """The outcome of simulating one circuit: specs when ``status`` is OK, a reason otherwise.

    ``gain_db`` is kept for NO_CROSSING results too (it is measured), but ``ugbw_hz``,
    ``pm_deg`` and ``fom`` are ``None`` whenever the amplifier has no unity-gain crossing.
    ``pm_ocb_deg`` is the phase margin as the published OCB labels read it (180° + the raw phase
    of H at the crossing, wrapped into [−180°, 180°); inferred, see docs/ocb-101-gap.md), kept
    only to compare with them.
    """

    status: SimStatus
    gain_db: float | None = None
    ugbw_hz: float | None = None
    pm_deg: float | None = None
    error: str | None = None
    pm_ocb_deg: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", SimStatus(self.status))
        if self.status is SimStatus.OK:
            for name in SPEC_FIELDS:
                value = getattr(self, name)
                if value is None or not math.isfinite(value):
                    raise ValueError(f"an OK result needs a finite {name}, got {value!r}")

    @property
    def ok(self) -> bool:
        return self.status is SimStatus.OK

    @property
    def fom(self) -> float | None:
        if not self.ok:
            return None
        assert self.gain_db is not None and self.ugbw_hz is not None and self.pm_deg is not None
        return figure_of_merit(self.gain_db, self.ugbw_hz, self.pm_deg)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "gain_db": self.gain_db,
            "ugbw_hz": self.ugbw_hz,
            "pm_deg": self.pm_deg,
            "fom": self.fom,
            "pm_ocb_deg": self.pm_ocb_deg,
            "error": self.error,
        }

    @classmethod
    def failed(cls, status: SimStatus, error: str) -> Performance:
        return cls(status=status, error=error)

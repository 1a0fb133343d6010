"""Performance, SimStatus and the figure of merit."""

import math
from dataclasses import FrozenInstanceError

import pytest

from circuits import SPEC_FIELDS, Performance, SimStatus, figure_of_merit, ocb_figure_of_merit

FAILED = [SimStatus.NO_CROSSING, SimStatus.SIM_ERROR, SimStatus.TIMEOUT, SimStatus.CRASHED]


# --- figure of merit ---------------------------------------------------------------------------


def test_fom_known_value():
    # 1.2·60/100 + 1.6·60/90 + 10·1 GHz/1 GHz
    assert figure_of_merit(60.0, 1e9, 60.0) == pytest.approx(0.72 + 1.0666667 + 10.0)
    assert figure_of_merit(60.0, 1e9, 60.0) == pytest.approx(11.786667, abs=1e-6)


def test_fom_terms_separately():
    assert figure_of_merit(0.0, 0.0, 0.0) == 0.0
    assert figure_of_merit(100.0, 0.0, 0.0) == pytest.approx(1.2)
    assert figure_of_merit(0.0, 0.0, 90.0) == pytest.approx(1.6)
    assert figure_of_merit(0.0, 1e8, 0.0) == pytest.approx(1.0)
    assert figure_of_merit(0.0, 2.5e9, 0.0) == pytest.approx(25.0)


@pytest.mark.parametrize("pm", [90.0, 90.001, 120.0, 180.0, 1e6])
def test_fom_phase_term_saturates_at_90_degrees(pm):
    assert figure_of_merit(60.0, 1e9, pm) == pytest.approx(0.72 + 1.6 + 10.0)


def test_fom_phase_term_increases_up_to_90_degrees():
    foms = [figure_of_merit(40.0, 1e8, pm) for pm in (-90.0, -30.0, 0.0, 30.0, 60.0, 89.0, 90.0)]
    assert foms == sorted(foms)
    assert len(set(foms)) == len(foms)


def test_negative_phase_margin_is_penalised():
    assert figure_of_merit(60.0, 1e9, -30.0) == pytest.approx(0.72 - 1.6 * 30 / 90 + 10.0)
    assert figure_of_merit(60.0, 1e9, -30.0) < figure_of_merit(60.0, 1e9, 0.0) < figure_of_merit(60.0, 1e9, 30.0)
    # Unlike OCB's PM/(−90°), a less stable amplifier never scores higher.
    assert figure_of_merit(0.0, 0.0, -180.0) == pytest.approx(-3.2)


def test_fom_is_linear_in_gain_and_bandwidth():
    base = figure_of_merit(50.0, 3e8, 45.0)
    assert figure_of_merit(60.0, 3e8, 45.0) - base == pytest.approx(0.12)
    assert figure_of_merit(50.0, 4e8, 45.0) - base == pytest.approx(1.0)


# --- Performance -------------------------------------------------------------------------------


def test_ok_performance_carries_specs_and_fom():
    p = Performance(SimStatus.OK, gain_db=60.0, ugbw_hz=1e9, pm_deg=60.0)
    assert p.ok
    assert p.error is None
    assert p.fom == pytest.approx(figure_of_merit(60.0, 1e9, 60.0))


def test_status_string_is_coerced():
    p = Performance("ok", gain_db=1.0, ugbw_hz=1.0, pm_deg=1.0)
    assert p.status is SimStatus.OK
    assert Performance("timeout").status is SimStatus.TIMEOUT


def test_unknown_status_is_rejected():
    with pytest.raises(ValueError, match="bogus"):
        Performance("bogus")


def test_status_values():
    assert [s.value for s in SimStatus] == ["ok", "no_crossing", "sim_error", "timeout", "crashed"]
    assert SPEC_FIELDS == ("gain_db", "ugbw_hz", "pm_deg")


@pytest.mark.parametrize("spec", SPEC_FIELDS)
@pytest.mark.parametrize("bad", [None, math.nan, math.inf, -math.inf])
def test_ok_result_needs_finite_specs(spec, bad):
    values = {"gain_db": 60.0, "ugbw_hz": 1e9, "pm_deg": 60.0, spec: bad}
    with pytest.raises(ValueError, match=rf"an OK result needs a finite {spec}, got {bad!r}"):
        Performance(SimStatus.OK, **values)


@pytest.mark.parametrize("status", FAILED)
def test_failed_results_have_no_fom(status):
    p = Performance.failed(status, "it broke")
    assert not p.ok
    assert p.fom is None
    assert p.error == "it broke"
    assert (p.gain_db, p.ugbw_hz, p.pm_deg) == (None, None, None)


def test_no_crossing_keeps_measured_gain():
    p = Performance(SimStatus.NO_CROSSING, gain_db=-3.0, error="|H| < 1 everywhere")
    assert p.gain_db == -3.0
    assert p.fom is None
    assert p.to_dict()["gain_db"] == -3.0


def test_failed_results_need_not_be_finite():
    p = Performance(SimStatus.SIM_ERROR, gain_db=math.nan, error="singular matrix")
    assert p.fom is None


def test_to_dict():
    p = Performance(SimStatus.OK, gain_db=60.0, ugbw_hz=1e9, pm_deg=60.0)
    d = p.to_dict()
    assert list(d) == ["status", "gain_db", "ugbw_hz", "pm_deg", "fom", "pm_ocb_deg", "error"]
    assert d["status"] == "ok"
    assert isinstance(d["status"], str)
    assert (d["gain_db"], d["ugbw_hz"], d["pm_deg"]) == (60.0, 1e9, 60.0)
    assert d["fom"] == pytest.approx(11.786667, abs=1e-6)
    assert d["error"] is None


def test_to_dict_failed():
    d = Performance.failed(SimStatus.TIMEOUT, "over 30 s").to_dict()
    assert d == {
        "status": "timeout",
        "gain_db": None,
        "ugbw_hz": None,
        "pm_deg": None,
        "fom": None,
        "pm_ocb_deg": None,
        "error": "over 30 s",
    }


def test_ocb_figure_of_merit_rewards_negative_ocb_margins():
    # OCB's own formula, kept for comparisons: 1.2·|G|/100 + 1.6·PM/(−90) + 10·UGBW/GHz.
    assert ocb_figure_of_merit(-60.0, 1e9, -90.0) == pytest.approx(0.72 + 1.6 + 10.0)
    assert ocb_figure_of_merit(60.0, 1e9, 90.0) < ocb_figure_of_merit(60.0, 1e9, -90.0)


def test_performance_is_frozen_and_comparable():
    p = Performance(SimStatus.OK, gain_db=60.0, ugbw_hz=1e9, pm_deg=60.0)
    assert p == Performance("ok", gain_db=60.0, ugbw_hz=1e9, pm_deg=60.0)
    with pytest.raises(FrozenInstanceError):
        p.gain_db = 1.0  # type: ignore[misc]

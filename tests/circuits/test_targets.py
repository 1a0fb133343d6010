"""Targets: parsing, checking measured specs, and the classes that can meet them."""

import pytest

from circuits import CktLoopError
from circuits.specs import spec_classes
from circuits.targets import Bound, Target, class_fits, valid_classes

OK = {"status": "ok", "gain_db": 70.0, "ugbw_hz": 2e9, "pm_deg": 65.0, "fom": 30.0}


def test_expressions_and_mapping_agree():
    a = Target.from_expressions("t", ["gain_db>=60", "ugbw_hz >= 1e9", "pm_deg>=45", "pm_deg<=90"])
    b = Target.from_mapping("t", {"gain_db": {"min": 60}, "ugbw_hz": {"min": 1e9}, "pm_deg": {"min": 45, "max": 90}})
    assert a == b
    assert a.describe() == "gain_db >= 60, ugbw_hz >= 1e+09, pm_deg >= 45, pm_deg <= 90"


def test_a_side_given_as_none_is_no_bound():
    """Campaigns store bounds as ``{min: low, max: high}`` with None for a missing side; they read back."""
    stored = {"gain_db": {"min": 60.0, "max": None}, "pm_deg": {"min": None, "max": 90.0}}
    assert Target.from_mapping("t", stored) == Target.from_expressions("t", ["gain_db>=60", "pm_deg<=90"])


def test_met_by_measured_specs_only():
    target = Target.from_expressions("t", ["gain_db>=60", "pm_deg>=60"])
    assert target.met_by(OK)
    assert not target.met_by({**OK, "pm_deg": 59.9})
    assert not target.met_by({**OK, "status": "no_crossing"})
    assert Bound(1, 2).contains(1) and Bound(1, 2).contains(2) and not Bound(None, 2).contains(2.1)


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        ({"gain": {"min": 60}}, r"target 'x', field 'gain': unknown spec"),
        ({"pm_deg": {"min": 90, "max": 45}}, r"target 'x', field 'pm_deg': min 90 > max 45"),
        ({"pm_deg": {"least": 3}}, r"field 'pm_deg': expected \{min"),
        ({"pm_deg": {"min": "high"}}, r"field 'pm_deg': min must be a number"),
        ({"pm_deg": {"min": None, "max": None}}, r"field 'pm_deg': expected \{min"),
        ({}, r"target 'x': no bounds"),
    ],
)
def test_bad_targets_name_target_and_field(specs, message):
    with pytest.raises(CktLoopError, match=message):
        Target.from_mapping("x", specs)


def test_bad_expression():
    with pytest.raises(CktLoopError, match=r"cannot read 'gain_db=>60'"):
        Target.from_expressions("x", ["gain_db=>60"])


def test_classes_inside_or_overlapping():
    classes = spec_classes("cktloop")  # gain edges ... 60, 80 ...; pm edges 0, 30, 45, 60, 75, 90
    target = Target.from_expressions("t", ["gain_db>=60", "pm_deg>=60"])
    assert class_fits(target, classes, (3, 5, 4))  # gain [60, 80), pm [60, 75)
    assert not class_fits(target, classes, (2, 5, 4))  # gain [40, 60)
    assert not class_fits(target, classes, (3, 5, 3))  # pm [45, 60)
    between = Target.from_expressions("u", ["gain_db>=70"])
    assert not class_fits(between, classes, (3, 5, 4)) and class_fits(between, classes, (3, 5, 4), inside=False)
    chosen, inside = valid_classes(between, classes, [(3, 5, 4), (4, 5, 4), (1, 0, 0)])
    assert inside and chosen == [(4, 5, 4)]
    chosen, inside = valid_classes(between, classes, [(3, 5, 4), (1, 0, 0)])
    assert not inside and chosen == [(3, 5, 4)]

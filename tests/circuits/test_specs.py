"""Spec classes: the ocb preset reproduces CktGen's flooring of OCB's normalised labels."""

import csv
import math
import os
from pathlib import Path

import pytest

from circuits import CktLoopError
from circuits.specs import SpecAxis, SpecClasses, filter_seen, spec_classes

OCB = Path(os.environ.get("CKTLOOP_SHARED", Path(__file__).resolve().parents[3] / "shared")) / "data/ocb/perform101.csv"


def test_axis_classes_and_intervals():
    axis = SpecAxis("gain_db", (0.0, 60.0))
    assert [axis.classify(v) for v in (-5, 0, 59.9, 60, 200)] == [0, 1, 1, 2, 2]
    assert axis.interval(1) == (0.0, 60.0) and axis.interval(0)[0] == -math.inf
    flipped = SpecAxis("pm", (-90.0, 0.0), sign=-1.0)
    assert flipped.classify(120.0) == 0 and flipped.classify(45.0) == 1 and flipped.classify(-10.0) == 2
    assert flipped.interval(1) == (0.0, 90.0)


def test_bad_axes_are_rejected():
    with pytest.raises(CktLoopError, match="increasing"):
        SpecAxis("gain_db", (10.0, 5.0))
    with pytest.raises(CktLoopError, match="unknown spec classes 'nope'"):
        spec_classes("nope")


@pytest.mark.skipif(not OCB.exists(), reason="published OCB labels not beside the repository")
def test_ocb_preset_equals_cktgen_flooring_of_the_published_labels():
    ocb = spec_classes("ocb")
    assert ocb.sizes == (4, 33, 5)
    checked = 0
    with OCB.open() as fh:
        for row in csv.DictReader(fh):
            g, p, b = float(row["gain"]), float(row["pm"]), float(row["bw"])
            if not 0 <= p < 5:  # CktGen drops pm < 0; > 4 means |PM| beyond 180°
                continue
            physical = {"status": "ok", "gain_db": 100 * (g - 1.19531), "ugbw_hz": (b - 1e-5) * 1e9}
            physical["pm_ocb_deg"] = -90 * (p - 2.00001)
            assert ocb.classify(physical) == (math.floor(g), math.floor(b), math.floor(p)), row
            checked += 1
    assert checked > 9900


def test_failed_results_have_no_class_and_round_trip():
    preset = spec_classes("cktloop")
    assert preset.classify({"status": "no_crossing", "gain_db": 10.0}) is None
    assert preset.classify({"status": "ok", "gain_db": 65.0, "ugbw_hz": 1.5e9, "pm_deg": 62.0}) == (3, 5, 4)
    assert SpecClasses.from_dict(preset.to_dict()) == preset
    assert "pm_deg in [60, 75)" in preset.describe((3, 5, 4))


def test_unseen_test_classes_are_filtered():
    assert filter_seen([(1, 0, 2), (2, 1, 0), None], [(1, 0, 2), (3, 3, 3), None]) == [True, False, False]

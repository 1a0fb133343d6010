"""Errors and calibration on measured rows, with known values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from surrogate.fresh import calibration, error_metrics, spearman, std_scales


def measured(gain: float, ugbw: float, pm: float, fom: float, status: str = "ok") -> dict:
    return {"status": status, "gain_db": gain, "ugbw_hz": ugbw, "pm_deg": pm, "fom": fom}


def test_errors_in_physical_units_over_rows_measured_ok() -> None:
    rows = [
        measured(60, 1e9, 60, 100),
        measured(40, 1e8, 30, 50),
        measured(50, 1e7, 45, 10),
        measured(0, 1, 0, 0, "sim_error"),
    ]
    preds = [measured(61, 1e10, 63, 110), measured(40, 1e8, 27, 40), measured(52, 1e7, 45, 30), measured(9, 9, 9, 9)]
    m = error_metrics(preds, rows)
    assert (m["n"], m["n_left_out"]) == (3, 1)
    assert m["gain_mae_db"] == pytest.approx(1.0)  # 1, 0, 2
    assert m["ugbw_mae_dec"] == pytest.approx(1 / 3)  # one decade off once
    assert m["pm_mae_deg"] == pytest.approx(2.0)  # 3, 3, 0
    assert m["fom_mae"] == pytest.approx(40 / 3)  # 10, 10, 20
    assert m["fom_spearman"] == pytest.approx(1.0)  # 110 > 40 > 30 as 100 > 50 > 10
    assert "calibration" not in m
    with pytest.raises(ValueError, match="2 predictions for 4 rows"):
        error_metrics(preds[:2], rows)
    assert error_metrics([preds[3]], [rows[3]]) == {"n": 0, "n_left_out": 1}


def test_calibration_counts_errors_within_one_and_two_deviations() -> None:
    err = np.array([0.5, -1.5, 2.5, -0.1])
    std = np.array([1.0, 1.0, 1.0, 1.0])
    c = calibration(err, std)
    assert (c["within_1sd"], c["within_2sd"], c["median_sd"]) == (0.5, 0.75, 1.0)
    assert math.isnan(c["spearman_sd_err"])  # a constant deviation ranks nothing
    assert calibration(np.array([0.1, 0.2, 0.4]), np.array([1.0, 2.0, 4.0]))["spearman_sd_err"] == pytest.approx(1.0)
    assert math.isnan(spearman(np.array([1.0, 2.0]), np.array([2.0, 1.0])))


def test_an_ensemble_answer_gets_calibration_per_spec() -> None:
    rows = [measured(60, 1e9, 60, 100), measured(40, 1e8, 30, 50), measured(50, 1e7, 45, 10)]
    std = {"gain_db": 1.5, "ugbw_dec": 0.1, "pm_deg": 1.0, "fom": 5.0}
    preds = [
        {**measured(61, 1e9, 63, 110), "std": std},
        {**measured(40, 1e8, 30, 40), "std": std},
        {**measured(52, 1e7, 45, 30), "std": std},
    ]
    cal = error_metrics(preds, rows)["calibration"]
    assert set(cal) == {"gain_db", "ugbw_dec", "pm", "fom"}
    assert cal["gain_db"]["within_1sd"] == pytest.approx(2 / 3)  # |1|, 0 within 1.5; 2 is not
    assert cal["pm"]["within_2sd"] == pytest.approx(2 / 3)  # the exact two within 2°; 3° is not


def test_std_scales_put_two_thirds_of_the_errors_within_one_scaled_deviation() -> None:
    rows = [measured(60, 1e9, 60, 100 + i) for i in range(100)]
    std = {"gain_db": 0.5, "ugbw_dec": 0.1, "pm_deg": 2.0, "fom": 1.0}
    preds = [{**measured(60 + i / 100, 1e9, 60, 100 + i), "std": std} for i in range(100)]  # gain off by 0..0.99
    scales = std_scales(preds, rows)
    assert scales["gain_db"] == pytest.approx(np.quantile(np.arange(100) / 100 / 0.5, 0.6827))
    assert scales["pm"] == 0.0 and scales["fom"] == 0.0  # no error at all
    scaled = [{**p, "std": {**std, "gain_db": 0.5 * scales["gain_db"]}} for p in preds]
    assert error_metrics(scaled, rows)["calibration"]["gain_db"]["within_1sd"] == pytest.approx(0.68)
    assert std_scales([measured(1, 1, 1, 1)], [rows[0]]) == {}  # no spread: nothing to scale

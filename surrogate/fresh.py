"""The surrogate's errors on measured rows (verified campaign candidates, a held-out slice), as issue 19
reports them: UGBW MAE in decades, PM MAE in degrees, gain MAE in dB, FoM MAE and the FoM's Spearman
rank correlation; and, for an ensemble, how well its spread is calibrated: the share of rows whose error
lies within one and two predicted standard deviations (a Gaussian would give 68 % and 95 %) and the
Spearman correlation of the predicted deviation with the absolute error."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.stats import spearmanr

ERROR_NAMES = ("gain_db", "ugbw_dec", "pm", "fom")
METRIC_NAMES = {"gain_db": "gain_mae_db", "ugbw_dec": "ugbw_mae_dec", "pm": "pm_mae_deg", "fom": "fom_mae"}


def _finite(*values: Any) -> bool:
    return all(isinstance(v, int | float) and math.isfinite(v) for v in values)


def measured_ok(row: Mapping[str, Any], pm_name: str) -> bool:
    """Whether ``row`` has a measured status ok with finite gain, positive UGBW, PM and FoM."""
    g, u, p, f = (row.get(k) for k in ("gain_db", "ugbw_hz", pm_name, "fom"))
    return row.get("status") == "ok" and _finite(g, u, p, f) and float(u) > 0  # type: ignore[arg-type]


def _matrix(items: Sequence[Mapping[str, Any]], pm_name: str) -> np.ndarray:
    return np.array(
        [[float(r["gain_db"]), math.log10(float(r["ugbw_hz"])), float(r[pm_name]), float(r["fom"])] for r in items]
    ).reshape(len(items), 4)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (NaN with fewer than three rows or a constant side)."""
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def calibration(err: np.ndarray, std: np.ndarray) -> dict[str, float]:
    """Share of |err| within 1 and 2 ``std``, and Spearman of ``std`` against |err| (1-D arrays)."""
    err, std = np.abs(err), np.asarray(std)
    return {
        "within_1sd": float((err <= std).mean()),
        "within_2sd": float((err <= 2 * std).mean()),
        "spearman_sd_err": spearman(std, err),
        "median_sd": float(np.median(std)),
    }


def std_scales(
    predictions: Sequence[Mapping[str, Any]], rows: Sequence[Mapping[str, Any]], pm_name: str = "pm_deg"
) -> dict[str, float]:
    """Per spec, the factor that puts 68.3 % of the rows' errors within one scaled deviation (the median
    share a Gaussian's one sigma holds): the ensemble's spread ranks errors but is narrower than they are."""
    keep = [i for i, r in enumerate(rows) if measured_ok(r, pm_name) and "std" in predictions[i]]
    if not keep:
        return {}
    err = np.abs(_matrix([predictions[i] for i in keep], pm_name) - _matrix([rows[i] for i in keep], pm_name))
    std = np.array([[predictions[i]["std"][pm_name if n == "pm" else n] for n in ERROR_NAMES] for i in keep])
    ratio = err / np.maximum(std, 1e-12)
    return {n: float(np.quantile(ratio[:, j], 0.6827)) for j, n in enumerate(ERROR_NAMES)}


def error_metrics(
    predictions: Sequence[Mapping[str, Any]], rows: Sequence[Mapping[str, Any]], pm_name: str = "pm_deg"
) -> dict[str, Any]:
    """Errors of ``predictions`` (``Surrogate.predict`` answers) against ``rows`` (measured specs), pairwise;
    rows not measured ok are left out (counted in ``n_left_out``). With ``std`` in the answers, the
    calibration per spec under ``calibration``."""
    if len(predictions) != len(rows):
        raise ValueError(f"{len(predictions)} predictions for {len(rows)} rows")
    keep = [i for i, r in enumerate(rows) if measured_ok(r, pm_name)]
    out: dict[str, Any] = {"n": len(keep), "n_left_out": len(rows) - len(keep)}
    if not keep:
        return out
    pred = _matrix([predictions[i] for i in keep], pm_name)
    truth = _matrix([rows[i] for i in keep], pm_name)
    err = pred - truth
    for j, name in enumerate(ERROR_NAMES):
        out[METRIC_NAMES[name]] = float(np.abs(err[:, j]).mean())
    out["fom_spearman"] = spearman(pred[:, 3], truth[:, 3])
    if all("std" in predictions[i] for i in keep):
        std = np.array([[predictions[i]["std"][pm_name if n == "pm" else n] for n in ERROR_NAMES] for i in keep])
        out["calibration"] = {name: calibration(err[:, j], std[:, j]) for j, name in enumerate(ERROR_NAMES)}
    return out

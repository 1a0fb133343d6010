"""What a campaign achieved, as issue 19 counts it: targets met, simulations, simulations to the first
met circuit, and a surrogate's errors on the campaign's verified candidates it never trained on.

Simulations to the first met circuit count, per target, what the search itself simulated, in the order
it simulated them, up to and including the first circuit that met the target (``inf`` when none did),
as the search stored it (``first_met``); a target stored before that was recorded counts up to the end
of the batch (at most ``verify_per_round``, 20, circuits) in which its first met circuit came back, from
its history.
Counting the candidates in the store instead would count circuits measured for another campaign, or for
the dataset's pool, that this search never simulated. The errors on verified candidates (``fresh_errors``)
take every measured candidate circuit, whoever measured it: read them right after the campaign.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from typing import Any

from circuits import Circuit


def first_met(summary: dict[str, Any] | None) -> float:
    """Simulations the search had spent up to its first met circuit (``first_met``), or, for a target stored
    before that was recorded, when the batch holding it came back (its ``history``: simulations so far and
    the best met FoM after each batch); inf when none met."""
    summary = summary or {}
    if "first_met" in summary:
        return math.inf if summary["first_met"] is None else float(summary["first_met"])
    for n, best in summary.get("history", []):
        if best is not None:
            return float(n)
    return math.inf


def campaign_outcome(store: Any, campaign: str) -> dict[str, Any]:
    """``targets``, ``met``, ``simulations``, ``median_sims_to_first_met`` (None when fewer than half are
    met), ``mean_sims_to_first_met_of_met`` and the models the targets' searches recorded."""
    rows = store.campaign_targets(campaign)
    firsts = [first_met(r.summary) for r in rows]
    met_firsts = [f for f in firsts if math.isfinite(f)]
    median = statistics.median(firsts) if firsts else math.inf
    models = sorted({str((r.summary or {}).get("surrogate")) for r in rows if r.status == "done"})
    return {
        "targets": len(rows),
        "met": sum(bool(r.met) for r in rows),
        "simulations": sum(r.n_simulations or 0 for r in rows),
        "median_sims_to_first_met": median if math.isfinite(median) else None,
        "mean_sims_to_first_met_of_met": statistics.fmean(met_firsts) if met_firsts else None,
        "surrogates": models,
    }


def fresh_errors(
    store: Any, campaign: str, surrogate: Any, exclude: Iterable[str] = ()
) -> tuple[dict[str, Any], list[str]]:
    """``surrogate``'s errors (``surrogate.fresh.error_metrics``) on the verified candidates of ``campaign``
    whose circuits are not in ``exclude`` (what it trained on), with the keys scored."""
    from surrogate.fresh import error_metrics

    skip = set(exclude)
    rows = [r for r in store.verified_rows([campaign]) if r["id"] not in skip]
    predictions = surrogate.predict([Circuit.from_dict(r["circuit"]) for r in rows]) if rows else []
    return error_metrics(predictions, rows, surrogate.pm_field), [r["id"] for r in rows]


def issue_figures(errors: dict[str, Any]) -> dict[str, Any]:
    """The ``fresh_*`` figures of issue 19 from ``error_metrics``' answer."""
    names = ("ugbw_mae_dec", "pm_mae_deg", "gain_mae_db", "fom_mae", "fom_spearman")
    keys = ("fresh_ugbw_mae_decades", "fresh_pm_mae_deg", "fresh_gain_mae_db", "fresh_fom_mae", "fresh_fom_spearman")
    out: dict[str, Any] = {k: errors.get(n) for k, n in zip(keys, names)}
    out["fresh_rows"] = errors.get("n", 0)
    return out

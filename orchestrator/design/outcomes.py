"""What a campaign achieved, as issue 19 counts it: targets met, simulations, simulations to the first
met circuit, and a surrogate's errors on the campaign's verified candidates it never trained on.

Simulations to the first met circuit count per target the distinct circuits measured by ngspice, in the
order they were proposed (candidate order), up to and including the first one that meets the target
(``inf`` when none does). Read right after the campaign ran: a circuit a later campaign measures would
count as measured too.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from typing import Any

from circuits import Circuit
from circuits.targets import Target


def _target(name: str, bounds: dict[str, Any]) -> Target:
    return Target.from_mapping(name, {f: {k: v for k, v in b.items() if v is not None} for f, b in bounds.items()})


def first_met(store: Any, target_id: int, target: Target) -> float:
    """Distinct measured circuits, in candidate order, up to the first one meeting ``target`` (inf: none)."""
    seen: set[str] = set()
    for c in store.candidates(target_id):
        if c.measured.status is None or c.key in seen:
            continue
        seen.add(c.key)
        if target.met_by(c.measured.to_dict()):
            return float(len(seen))
    return math.inf


def campaign_outcome(store: Any, campaign: str) -> dict[str, Any]:
    """``targets``, ``met``, ``simulations``, ``median_sims_to_first_met`` (None when fewer than half are
    met), ``mean_sims_to_first_met_of_met`` and the models the targets' searches recorded."""
    rows = store.campaign_targets(campaign)
    firsts = [first_met(store, r.id, _target(r.name, r.bounds)) for r in rows]
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

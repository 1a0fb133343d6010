"""A campaign as one record per target, read back from the store: what ``campaign export`` writes and
``campaign report`` draws. The winner carries its circuit, a netlist anyone can run with ``ngspice -b``,
its measured specs (ngspice) and the specs the surrogate predicted for it."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from circuits import Circuit
from circuits.specs import TARGET_FIELDS
from simulator.netlist import deck

if TYPE_CHECKING:
    from storage import CandidateInfo, Store, TargetInfo


def winner_record(candidate: CandidateInfo) -> dict[str, Any]:
    """The winner's fields, shared by ``design --json`` and every export line."""
    circuit = Circuit.from_dict(candidate.circuit)
    measured = candidate.measured.to_dict()
    return {
        "circuit": candidate.circuit,
        "netlist": deck(circuit),
        "measured": {"status": measured["status"], **{f: measured[f] for f in TARGET_FIELDS}},
        "predicted": candidate.predicted,
        "source": candidate.source,
        "spec_class": candidate.spec_class,
        "key": candidate.key,
    }


def target_record(store: Store, target: TargetInfo) -> dict[str, Any]:
    summary = target.summary or {}
    winner = None
    if target.winner_candidate_id is not None:
        by_id = {c.id: c for c in store.candidates(target.id)}
        winner = winner_record(by_id[target.winner_candidate_id])
    refinements = store.refinements(target.id)
    refinement = None
    if refinements:  # the run that reached the best FoM, with the evaluations of every run
        best = max(refinements, key=lambda r: -math.inf if r.fom_after is None else r.fom_after)
        refinement = {
            "fom_before": best.fom_before,
            "fom_after": best.fom_after,
            "n_evaluations": sum(r.n_evaluations for r in refinements),
            "runs": len(refinements),
        }
    return {
        "campaign": target.campaign,
        "name": target.name,
        "bounds": target.bounds,
        "status": target.status,
        "reason": target.reason,
        "met": target.met,
        "class_mode": summary.get("class_mode"),
        "n_simulations": target.n_simulations,
        "winner": winner,
        "refinement": refinement,
        "dataset_best_fom": summary.get("dataset_best_fom"),
        "history": summary.get("history", []),
    }


def campaign_records(store: Store, campaign: int | str) -> list[dict[str, Any]]:
    """One record per target of ``campaign`` (its id or name), in file order; unfinished ones included."""
    return [target_record(store, t) for t in store.campaign_targets(campaign)]

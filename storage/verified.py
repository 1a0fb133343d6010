"""Verified simulations of campaign candidates, as training rows for fine-tuning (closed-loop refinement).

A candidate is verified when the simulator has measured its circuit (``simulations``, shared with
datasets); refinement results are candidates too (source ``refine``). Rows come in the shape of
``DatasetEntry.to_dict`` (``id`` is the circuit key), so the surrogate's data pipeline takes them as it
takes a dataset's, each circuit once however many targets proposed it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, and_, func, select

from storage.engine import Database, StoreError
from storage.models import campaign_targets, campaigns, candidates, circuits, simulations
from storage.records import MEASURED_FIELDS, Measured, from_row


class VerifiedStore(Database):
    """Measured campaign candidates, for fine-tuning."""

    def verified_rows(
        self,
        campaign_names: Sequence[str] = (),
        after_candidate: int = 0,
        simulator: str = "ngspice",
        status: str | None = "ok",
        upto_simulation: int | None = None,
    ) -> list[dict[str, Any]]:
        """One row per distinct circuit among the candidates of ``campaign_names`` (all campaigns when empty)
        with ids above ``after_candidate`` that ``simulator`` measured (with ``status``; None: any) in a
        simulation row up to ``upto_simulation`` (a circuit can be measured later, for another campaign), in
        the order first proposed: ``id`` (circuit key), ``circuit``, the measured fields, ``candidate_id``,
        ``simulation_id``, ``campaign`` and the first candidate's ``source``. An unknown campaign name is a
        ``StoreError``."""
        sim = simulations.alias("s")
        stmt = (
            select(
                candidates.c.id.label("candidate_id"),
                candidates.c.source,
                campaigns.c.name.label("campaign"),
                sim.c.id.label("simulation_id"),
                circuits.c.key,
                circuits.c.circuit,
                *(sim.c[f] for f in MEASURED_FIELDS),
            )
            .join(campaign_targets, campaign_targets.c.id == candidates.c.target_id)
            .join(campaigns, campaigns.c.id == campaign_targets.c.campaign_id)
            .join(circuits, circuits.c.id == candidates.c.circuit_id)
            .join(sim, and_(sim.c.circuit_id == candidates.c.circuit_id, sim.c.simulator == simulator))
            .where(candidates.c.id > after_candidate)
            .order_by(candidates.c.id)
        )
        if status is not None:
            stmt = stmt.where(sim.c.status == status)
        if upto_simulation is not None:
            stmt = stmt.where(sim.c.id <= upto_simulation)
        names = sorted(set(campaign_names))
        if names:
            stmt = stmt.where(campaigns.c.name.in_(names))

        def work(conn: Connection) -> list[Any]:
            if names:
                known = set(conn.execute(select(campaigns.c.name).where(campaigns.c.name.in_(names))).scalars())
                missing = [n for n in names if n not in known]
                if missing:
                    raise StoreError(f"no campaign named {', '.join(map(repr, missing))} in the store")
            return list(conn.execute(stmt))

        out: dict[str, dict[str, Any]] = {}
        for r in self._read(work):
            if r.key not in out:
                measured = from_row(Measured, r).to_dict()
                out[r.key] = {
                    "id": r.key,
                    "circuit": r.circuit,
                    **measured,
                    "candidate_id": int(r.candidate_id),
                    "simulation_id": int(r.simulation_id),
                    "campaign": r.campaign,
                    "source": r.source,
                }
        return list(out.values())

    def last_candidate_id(self) -> int:
        """The highest candidate id so far (0 in a store without candidates): where ``--since`` resumes."""
        return int(self._read(lambda conn: conn.execute(select(func.max(candidates.c.id))).scalar()) or 0)

    def last_simulation_id(self) -> int:
        """The highest simulation id so far (0 in a store without simulations)."""
        return int(self._read(lambda conn: conn.execute(select(func.max(simulations.c.id))).scalar()) or 0)

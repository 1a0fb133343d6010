"""Campaign candidates (circuits proposed for a target, with their lineage and predictions) and the
NSGA-II refinements run from them. Measured specs are not kept here: they are joined from the
circuit's row in ``simulations``. Writes are idempotent, so a killed campaign can repeat them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, and_, exists, select

from circuits.circuit import Circuit
from circuits.specs import TARGET_FIELDS
from storage.campaigns import check_candidates, target_row
from storage.circuit_rows import CHUNK_SIZE, LOOKUP_CHUNK, Identity, add_circuits, chunks, circuit_ids
from storage.engine import Database, StoreError, insert_new
from storage.models import candidates, circuits, refinements, simulations
from storage.records import (
    MEASURED_FIELDS,
    CandidateInfo,
    CandidateRecord,
    Measured,
    RefinementInfo,
    from_row,
)
from storage.validate import count, integer, json_value, nonempty, number, row_id


class CandidateStore(Database):
    """Candidates and refinements of campaign targets."""

    def add_candidates(self, target_id: int, records: Sequence[CandidateRecord]) -> list[int]:
        """Record circuits proposed for a target (adding the circuits and topologies as needed); return
        the candidate ids in input order. A (circuit, source) the target already has keeps its first
        row, and its id is returned: a resumed run re-proposing it adds nothing. A parent must exist."""
        if not records:
            self._read(lambda conn: target_row(conn, target_id))
            return []
        rows = [_candidate_row(i, rec) for i, rec in enumerate(records)]
        idents = [Identity.of(rec.circuit) for rec in records]
        parents = sorted({row["parent_id"] for row in rows if row["parent_id"] is not None})

        def work(conn: Connection) -> list[int]:
            target = target_row(conn, target_id)
            if parents:
                known = set(conn.execute(select(candidates.c.id).where(candidates.c.id.in_(parents))).scalars())
                missing = [p for p in parents if p not in known]
                if missing:
                    raise StoreError(
                        f"target {target.name!r} of campaign {target.campaign!r}: parent candidate(s)"
                        f" {', '.join(map(str, missing))} do not exist; nothing recorded"
                    )
            add_circuits(conn, idents)
            ids = circuit_ids(conn, (ident.key for ident in idents))
            unique: dict[tuple[int, str], dict[str, Any]] = {}
            for row, ident in zip(rows, idents):
                unique.setdefault((ids[ident.key], row["source"]), row)
            # In input order, so ids (and listings) follow the order proposed. Unlike circuits, writers for
            # different targets never share a candidate row; two on one target that meet head-on deadlock
            # at worst, and ``_write`` retries that.
            ordered = [{**row, "target_id": target.id, "circuit_id": k[0]} for k, row in unique.items()]
            for chunk in chunks(ordered, CHUNK_SIZE):
                conn.execute(insert_new(conn, candidates), list(chunk))
            found: dict[tuple[int, str], int] = {}
            for cids in chunks(sorted({k[0] for k in unique}), LOOKUP_CHUNK):
                stmt = select(candidates.c.circuit_id, candidates.c.source, candidates.c.id).where(
                    candidates.c.target_id == target.id, candidates.c.circuit_id.in_(cids)
                )
                found.update({(c, s): i for c, s, i in conn.execute(stmt)})
            return [found[(ids[ident.key], row["source"])] for row, ident in zip(rows, idents)]

        return self._write(work)

    def candidates(self, target_id: int, simulator: str = "ngspice") -> list[CandidateInfo]:
        """The target's candidates in the order recorded, each with its circuit, prediction and
        ``simulator``'s verdict (all None when not simulated yet)."""
        sim = simulations.alias("s")
        cand = candidates.c
        stmt = (
            select(candidates, circuits.c.key, circuits.c.circuit, *(sim.c[f] for f in MEASURED_FIELDS))
            .join(circuits, circuits.c.id == cand.circuit_id)
            .outerjoin(sim, and_(sim.c.circuit_id == cand.circuit_id, sim.c.simulator == simulator))
            .order_by(cand.id)
        )

        def work(conn: Connection) -> list[Any]:
            tid = target_row(conn, target_id).id
            return list(conn.execute(stmt.where(cand.target_id == tid)))

        out = []
        for r in self._read(work):
            predicted = {f: v for f in TARGET_FIELDS if (v := getattr(r, f"predicted_{f}")) is not None}
            out.append(from_row(CandidateInfo, r, predicted=predicted or None, measured=from_row(Measured, r)))
        return out

    def pending_candidates(self, target_id: int, simulator: str = "ngspice") -> list[tuple[str, Circuit]]:
        """(key, circuit) of the target's candidate circuits not yet simulated by ``simulator``, each once,
        in the order first proposed: what a resumed run must still simulate."""
        done = exists().where(simulations.c.circuit_id == circuits.c.id, simulations.c.simulator == simulator)
        stmt = (
            select(circuits.c.key, circuits.c.circuit)
            .join(candidates, candidates.c.circuit_id == circuits.c.id)
            .where(~done)
            .order_by(candidates.c.id)
        )

        def work(conn: Connection) -> list[tuple[str, Any]]:
            tid = target_row(conn, target_id).id
            return [(k, c) for k, c in conn.execute(stmt.where(candidates.c.target_id == tid))]

        seen: dict[str, Circuit] = {}
        for key, data in self._read(work):
            if key not in seen:
                seen[key] = Circuit.from_dict(data)
        return list(seen.items())

    def add_refinement(
        self,
        target_id: int,
        seed_candidate_id: int,
        result_candidate_id: int | None,
        n_evaluations: int,
        fom_before: float | None,
        fom_after: float | None,
        history: Any,
    ) -> int:
        """Record the NSGA-II refinement of one of the target's candidates (the result, if any, is one too)
        and return its id. Recording it again with the same content is a no-op; other content is refused."""
        row = {
            "seed_candidate_id": row_id(seed_candidate_id, "the seed candidate"),
            "result_candidate_id": None
            if result_candidate_id is None
            else row_id(result_candidate_id, "the result candidate"),
            "n_evaluations": count(n_evaluations, "n_evaluations"),
            "fom_before": number(fom_before, "fom_before"),
            "fom_after": number(fom_after, "fom_after"),
            "history": json_value(history, "the refinement history"),
        }

        def work(conn: Connection) -> int:
            target = target_row(conn, target_id)
            check_candidates(conn, target, {"seed": row["seed_candidate_id"], "result": row["result_candidate_id"]})
            conn.execute(insert_new(conn, refinements), {**row, "target_id": target.id})
            have = conn.execute(
                select(refinements).where(
                    refinements.c.target_id == target.id, refinements.c.seed_candidate_id == row["seed_candidate_id"]
                )
            ).one()
            differs = [f for f in row if getattr(have, f) != row[f]]
            if differs:
                raise StoreError(
                    f"target {target.name!r} of campaign {target.campaign!r}: the refinement of candidate"
                    f" {seed_candidate_id} is already recorded with a different {', '.join(differs)}"
                )
            return int(have.id)

        return self._write(work)

    def refinements(self, target_id: int) -> list[RefinementInfo]:
        """The target's recorded refinements, oldest first (a resumed run skips their seeds)."""

        def work(conn: Connection) -> list[Any]:
            tid = target_row(conn, target_id).id
            return list(
                conn.execute(select(refinements).where(refinements.c.target_id == tid).order_by(refinements.c.id))
            )

        return [from_row(RefinementInfo, r) for r in self._read(work)]


def _candidate_row(index: int, rec: CandidateRecord) -> dict[str, Any]:
    """The checked columns of a candidate, but for its target and circuit ids."""
    what = f"candidate {index + 1}"
    if not isinstance(rec, CandidateRecord):
        raise StoreError(f"{what} must be a CandidateRecord, got {type(rec).__name__}")
    if not isinstance(rec.circuit, Circuit):
        raise StoreError(f"{what}: circuit must be a Circuit, got {type(rec.circuit).__name__}")
    spec_class = None
    if rec.spec_class is not None:
        items = [] if isinstance(rec.spec_class, str | bytes) else list(rec.spec_class)
        indices = [integer(x) for x in items]
        if not indices or any(i is None for i in indices):
            raise StoreError(f"{what}: spec_class must be a non-empty sequence of integers, got {rec.spec_class!r}")
        spec_class = indices
    if rec.predicted is not None and not isinstance(rec.predicted, Mapping):
        raise StoreError(f"{what}: predicted must be a mapping of spec names to numbers, got {rec.predicted!r}")
    predicted = dict(rec.predicted or {})
    unknown = sorted(map(str, set(predicted) - set(TARGET_FIELDS)))
    if unknown:
        raise StoreError(f"{what}: unknown predicted spec(s) {', '.join(unknown)} (known: {', '.join(TARGET_FIELDS)})")
    return {
        "source": nonempty(rec.source, f"the source of {what}", 32),
        "spec_class": spec_class,
        **{f"predicted_{f}": number(predicted.get(f), f"{what}: predicted {f}") for f in TARGET_FIELDS},
        "model_version": None
        if rec.model_version is None
        else nonempty(rec.model_version, f"{what}: model_version", 64),
        "surrogate_version": None
        if rec.surrogate_version is None
        else nonempty(rec.surrogate_version, f"{what}: surrogate_version", 64),
        "parent_id": None if rec.parent_id is None else row_id(rec.parent_id, f"{what}: parent_id"),
        "round": count(rec.round, f"{what}: round"),
    }

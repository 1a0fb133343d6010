"""Design campaigns and their targets: created from a campaign file, each target pending until it is
finished with a verdict (never reopened) or failed with a reason (a re-run retries it).

A campaign runner may be killed at any point and re-run: every write here is idempotent (unique
constraints + ON CONFLICT DO NOTHING, then a read-back that refuses contradictions), so re-running
the same steps finds the rows already there and adds no duplicates.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, func, select, update

from circuits.targets import Target
from storage.engine import Database, StoreError, insert_new
from storage.models import campaign_targets, campaigns, candidates
from storage.records import TARGET_STATUSES, CampaignInfo, TargetInfo, from_row
from storage.validate import config_differences, count, integer, json_value, nonempty, row_id

REASON_LIMIT = 2000  # characters of a failed target's reason kept


def campaign_row(conn: Connection, name_or_id: int | str) -> Any:
    """The campaign's row, named by its name or id, or a StoreError."""
    if isinstance(name_or_id, str):
        found = conn.execute(select(campaigns).where(campaigns.c.name == name_or_id)).first()
        if found is None:
            raise StoreError(f"no campaign named {name_or_id!r}")
        return found
    cid = integer(name_or_id)
    if cid is None:
        raise StoreError(f"a campaign is named by a string or an integer id, got {name_or_id!r}")
    found = conn.execute(select(campaigns).where(campaigns.c.id == cid)).first()
    if found is None:
        raise StoreError(f"no campaign with id {name_or_id}")
    return found


def target_row(conn: Connection, target_id: int) -> Any:
    """The target's row with its campaign's name (``campaign``), or a StoreError naming the id."""
    stmt = (
        select(campaign_targets, campaigns.c.name.label("campaign"))
        .join(campaigns, campaigns.c.id == campaign_targets.c.campaign_id)
        .where(campaign_targets.c.id == row_id(target_id, "a campaign target"))
    )
    found = conn.execute(stmt).first()
    if found is None:
        raise StoreError(f"no campaign target with id {target_id}")
    return found


def check_candidates(conn: Connection, target: Any, wanted: dict[str, int | None]) -> None:
    """Refuse candidate ids (by role, e.g. "winner") that do not exist or belong to another target."""
    ids = {role: row_id(cid, f"the {role} candidate") for role, cid in wanted.items() if cid is not None}
    if not ids:
        return
    stmt = select(candidates.c.id, candidates.c.target_id).where(candidates.c.id.in_(ids.values()))
    owners: dict[int, int] = {c: t for c, t in conn.execute(stmt)}
    for role, cid in ids.items():
        if owners.get(cid) != target.id:
            where = "does not exist" if cid not in owners else f"belongs to target id {owners[cid]}"
            raise StoreError(f"target {target.name!r} of campaign {target.campaign!r}: {role} candidate {cid} {where}")


def _target_rows(targets: Sequence[Target | Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The checked rows of targets in file order (a target's position is its index)."""
    rows: list[dict[str, Any]] = []
    for position, target in enumerate(targets):
        if isinstance(target, Target):
            label: Any = target.name
            bounds: Any = {field: {"min": b.low, "max": b.high} for field, b in target.bounds}
        elif isinstance(target, Mapping):
            label, bounds = target.get("name"), target.get("bounds")
        else:
            raise StoreError(f"target {position + 1} must be a Target or a mapping, got {type(target).__name__}")
        nonempty(label, f"the name of target {position + 1}")
        if not isinstance(bounds, Mapping) or not bounds:
            raise StoreError(f"target {label!r}: bounds must be a non-empty JSON object, got {bounds!r}")
        if any(r["name"] == label for r in rows):
            raise StoreError(f"target {label!r} appears twice")
        bounds = json_value(dict(bounds), f"the bounds of target {label!r}")
        rows.append({"name": label, "position": position, "bounds": bounds, "status": "pending"})
    return rows


class CampaignStore(Database):
    """Campaigns, their targets and the targets' verdicts."""

    def ensure_campaign(self, name: str, config: dict[str, Any]) -> int:
        """The id of campaign ``name``, creating it if new. An existing one must have the same config
        (the validated campaign file): re-running a file resumes it, a changed file is refused."""
        nonempty(name, "a campaign name")
        if not isinstance(config, dict):
            raise StoreError(f"the config of campaign {name!r} must be a JSON object, got {type(config).__name__}")
        config = json_value(config, f"the config of campaign {name!r}")

        def work(conn: Connection) -> int:
            conn.execute(insert_new(conn, campaigns), {"name": name, "config": config})
            row = conn.execute(select(campaigns.c.id, campaigns.c.config).where(campaigns.c.name == name)).one()
            if row.config != config:
                problems = config_differences(row.config, config)
                raise StoreError(
                    f"campaign {name!r} already exists with different settings: {'; '.join(problems)}"
                    " (choose another name to start a new campaign)"
                )
            return int(row.id)

        return self._write(work)

    def add_campaign_time(self, campaign: int | str, seconds: float) -> None:
        """Add ``seconds`` of running time to a campaign's ``wall_s`` (each run adds its own share). Not
        retried once its commit was sent: a connection lost then raises ``CommitUnknown``."""
        if not math.isfinite(seconds) or seconds < 0:
            raise StoreError(f"campaign time must be a finite number of seconds >= 0, got {seconds!r}")

        def work(conn: Connection) -> None:
            cid = campaign_row(conn, campaign).id
            conn.execute(update(campaigns).where(campaigns.c.id == cid).values(wall_s=campaigns.c.wall_s + seconds))

        self._write(work, idempotent=False)  # run twice, it would add the time twice

    def ensure_targets(self, campaign: int | str, targets: Sequence[Target | Mapping[str, Any]]) -> dict[str, int]:
        """Ids by name of the campaign's targets, creating the new ones as pending.

        ``targets`` are in file order (a target's position is its index), each a
        ``circuits.targets.Target`` or a mapping with ``name`` and ``bounds`` (a JSON object such as
        ``{"gain_db": {"min": 60.0, "max": null}}``). A stored target must keep its position and bounds.
        """
        rows = _target_rows(targets)

        def work(conn: Connection) -> dict[str, int]:
            camp = campaign_row(conn, campaign)
            if rows:
                conn.execute(insert_new(conn, campaign_targets), [{**r, "campaign_id": camp.id} for r in rows])
            t = campaign_targets.c
            stored = conn.execute(select(t.id, t.name, t.position, t.bounds).where(t.campaign_id == camp.id)).all()
            by_name = {r.name: r for r in stored}
            by_position = {r.position: r.name for r in stored}
            for r in rows:
                have = by_name.get(r["name"])
                where = f"campaign {camp.name!r}, target {r['name']!r}"
                if have is None:
                    raise StoreError(
                        f"{where}: position {r['position']} already holds target {by_position[r['position']]!r}"
                        " (the campaign file changed; use a new campaign name)"
                    )
                if have.position != r["position"]:
                    raise StoreError(f"{where}: stored at position {have.position}, not {r['position']}")
                if have.bounds != r["bounds"]:
                    raise StoreError(f"{where}: stored with bounds {have.bounds} (requested {r['bounds']})")
            return {r["name"]: int(by_name[r["name"]].id) for r in rows}

        return self._write(work)

    def campaign(self, campaign: int | str) -> CampaignInfo:
        """One campaign, with its counts of targets, done, failed and met."""
        return self._read(lambda conn: _campaign_infos(conn, campaign_row(conn, campaign).id)[0])

    def campaigns(self) -> list[CampaignInfo]:
        """Every campaign as ``campaign`` gives it, oldest first."""
        return self._read(_campaign_infos)

    def campaign_targets(self, campaign: int | str, status: str | None = None) -> list[TargetInfo]:
        """The campaign's targets (all, or those with ``status`` pending, done or failed) in file order."""
        if status is not None and status not in TARGET_STATUSES:
            raise StoreError(f"unknown target status {status!r} (known: {', '.join(TARGET_STATUSES)})")

        def work(conn: Connection) -> list[TargetInfo]:
            where = [campaign_targets.c.campaign_id == campaign_row(conn, campaign).id]
            if status is not None:
                where.append(campaign_targets.c.status == status)
            return _target_infos(conn, *where)

        return self._read(work)

    def unfinished_targets(self, campaign: int | str) -> list[TargetInfo]:
        """The targets a resumed run still has to do (pending, and failed ones to retry), in file order."""
        return [t for t in self.campaign_targets(campaign) if t.status != "done"]

    def target(self, target_id: int) -> TargetInfo:
        """One target, as ``campaign_targets`` lists it."""

        def work(conn: Connection) -> TargetInfo:
            return _target_infos(conn, campaign_targets.c.id == target_row(conn, target_id).id)[0]

        return self._read(work)

    def finish_target(
        self,
        target_id: int,
        met: bool,
        winner_candidate_id: int | None,
        n_simulations: int,
        summary: dict[str, Any] | None = None,
    ) -> None:
        """Close a target with its verdict: whether it was ``met`` (then by the winner, one of its
        candidates), the simulations spent and a free-form JSON ``summary``. Finishing it again with the
        same verdict is a no-op; a different one is refused, as a finished target is never reopened."""
        if not isinstance(met, bool):
            raise StoreError(f"met must be True or False, got {met!r}")
        values = {
            "met": met,
            "winner_candidate_id": None if winner_candidate_id is None else row_id(winner_candidate_id, "the winner"),
            "n_simulations": count(n_simulations, "n_simulations"),
            "summary": None if summary is None else json_value(summary, "the target summary"),
        }

        def work(conn: Connection) -> None:
            target = target_row(conn, target_id)
            where = f"target {target.name!r} of campaign {target.campaign!r}"
            if met and values["winner_candidate_id"] is None:
                raise StoreError(f"{where}: a met target needs its winner candidate")
            check_candidates(conn, target, {"winner": values["winner_candidate_id"]})
            # The status condition makes the update atomic: of two finishers, one closes the target and
            # the other sees it done and compares.
            closed = conn.execute(
                update(campaign_targets)
                .where(campaign_targets.c.id == target.id, campaign_targets.c.status != "done")
                .values(status="done", reason=None, finished_at=func.now(), **values)
            )
            if closed.rowcount == 1:
                return
            have = target_row(conn, target.id)
            differs = [f for f in values if getattr(have, f) != values[f]]
            if differs:
                raise StoreError(
                    f"{where} is already finished with a different {', '.join(differs)};"
                    " a finished target is never reopened"
                )

        self._write(work)

    def fail_target(self, target_id: int, reason: str) -> None:
        """Mark a target failed with ``reason`` (why its search raised; cut to ``REASON_LIMIT``
        characters). A re-run retries it; failing it again keeps the newest reason. A finished target
        is never reopened, so failing one is refused."""
        if not isinstance(reason, str) or not reason.strip():
            raise StoreError(f"a failure reason must be a non-empty string, got {reason!r}")
        text = reason[:REASON_LIMIT]

        def work(conn: Connection) -> None:
            target = target_row(conn, target_id)
            failed = conn.execute(
                update(campaign_targets)
                .where(campaign_targets.c.id == target.id, campaign_targets.c.status != "done")
                .values(status="failed", reason=text, finished_at=func.now())
            )
            if failed.rowcount != 1:
                raise StoreError(
                    f"target {target.name!r} of campaign {target.campaign!r} is already finished;"
                    " a finished target is never reopened"
                )

        self._write(work)


def _campaign_infos(conn: Connection, campaign_id: int | None = None) -> list[CampaignInfo]:
    t = campaign_targets.c
    counts_stmt = select(
        t.campaign_id,
        func.count().label("targets"),
        func.count().filter(t.status == "done").label("done"),
        func.count().filter(t.status == "failed").label("failed"),
        func.count().filter(t.met.is_(True)).label("met"),
    ).group_by(t.campaign_id)
    stmt = select(campaigns).order_by(campaigns.c.id)
    if campaign_id is not None:
        counts_stmt = counts_stmt.where(t.campaign_id == campaign_id)
        stmt = stmt.where(campaigns.c.id == campaign_id)
    counts = {r.campaign_id: r for r in conn.execute(counts_stmt)}
    out = []
    for c in conn.execute(stmt):
        n = counts.get(c.id)
        tally = {k: getattr(n, k) if n else 0 for k in ("targets", "done", "failed", "met")}
        out.append(from_row(CampaignInfo, c, **tally))
    return out


def _target_infos(conn: Connection, *where: Any) -> list[TargetInfo]:
    n_candidates = select(candidates.c.target_id, func.count().label("n")).group_by(candidates.c.target_id).subquery()
    stmt = (
        select(campaign_targets, campaigns.c.name.label("campaign"), n_candidates.c.n)
        .join(campaigns, campaigns.c.id == campaign_targets.c.campaign_id)
        .outerjoin(n_candidates, n_candidates.c.target_id == campaign_targets.c.id)
        .where(*where)
        .order_by(campaign_targets.c.campaign_id, campaign_targets.c.position)
    )
    return [from_row(TargetInfo, r, candidates=r.n or 0) for r in conn.execute(stmt)]

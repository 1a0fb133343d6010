"""Design jobs: campaigns submitted to the service, with their status, error and times.

A job is ``queued`` when submitted, ``running`` once a runner takes it, and ends ``done``, ``failed``
(with the error) or ``cancelled``. Every change of status is one conditional UPDATE (``WHERE status
IN ...``), so a runner finishing a job that was cancelled meanwhile changes nothing, and of two
runners taking the same queued job only one gets it. A runner that starts up puts the jobs left
``running`` by a killed predecessor back in the queue (``requeue_jobs``); their campaigns resume per
target, so nothing is done twice. These writes are not re-run after a connection lost while committing
(their answer, or the job count, would be wrong): that raises ``CommitUnknown``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, func, select, update

from storage.engine import Database, StoreError
from storage.models import campaigns, design_jobs
from storage.records import JOB_STATUSES, JobInfo, from_row
from storage.validate import json_value, nonempty, row_id

ERROR_LIMIT = 2000  # characters of a failed job's error kept
NAME_LIMIT = 150  # characters of a job's name (its campaign's name adds a prefix)


def job_campaign(job_id: int, name: str | None) -> str:
    """The campaign name of job ``job_id``: ``job<id>``, or ``job<id>-<name>`` when it has a name."""
    return f"job{job_id}-{name}" if name else f"job{job_id}"


def _statuses(status: str | Iterable[str] | None) -> list[str] | None:
    if status is None:
        return None
    wanted = [status] if isinstance(status, str) else list(status)
    for s in wanted:
        if s not in JOB_STATUSES:
            raise StoreError(f"unknown job status {s!r} (known: {', '.join(JOB_STATUSES)})")
    return wanted


class JobStore(Database):
    """Design jobs, queued, running and finished."""

    def add_job(self, request: dict[str, Any], name: str | None = None) -> JobInfo:
        """Queue a job for ``request`` (the validated campaign: name, budget, targets) and return it."""
        if name is not None:
            nonempty(name, "a job name", NAME_LIMIT)
        if not isinstance(request, dict):
            raise StoreError(f"a job request must be a JSON object, got {type(request).__name__}")
        request = json_value(request, "the job request")

        def work(conn: Connection) -> JobInfo:
            placeholder = f"pending-{uuid.uuid4().hex}"  # the real name needs the id
            job_id = conn.execute(
                design_jobs.insert()
                .values(name=name, campaign=placeholder, request=request, status="queued")
                .returning(design_jobs.c.id)
            ).scalar_one()
            campaign = job_campaign(job_id, name)
            if conn.execute(select(campaigns.c.id).where(campaigns.c.name == campaign)).first() is not None:
                raise StoreError(f"a campaign named {campaign!r} already exists; submit the job with another name")
            conn.execute(update(design_jobs).where(design_jobs.c.id == job_id).values(campaign=campaign))
            return _job(conn, job_id)

        return self._write(work, idempotent=False)  # run twice, it would queue two jobs

    def job(self, job_id: int) -> JobInfo:
        """One job, or a StoreError naming the id."""
        return self._read(lambda conn: _job(conn, row_id(job_id, "a job")))

    def jobs(self, status: str | Iterable[str] | None = None) -> list[JobInfo]:
        """Jobs (all, or those with ``status``, one or several), oldest first."""
        wanted = _statuses(status)
        stmt = select(design_jobs).order_by(design_jobs.c.id)
        if wanted is not None:
            stmt = stmt.where(design_jobs.c.status.in_(wanted))
        return [from_row(JobInfo, r) for r in self._read(lambda conn: conn.execute(stmt).all())]

    def start_job(self, job_id: int) -> bool:
        """Take a queued job: it becomes running (its first start time kept). False if it was not queued."""
        return self._move(
            job_id, ("queued",), status="running", started_at=func.coalesce(design_jobs.c.started_at, func.now())
        )

    def end_job(self, job_id: int, status: str, error: str | None = None) -> bool:
        """End a running job as ``done`` or ``failed`` (with ``error``, cut to ``ERROR_LIMIT`` characters).
        False, and nothing changed, if it was not running (e.g. cancelled meanwhile)."""
        if status not in ("done", "failed"):
            raise StoreError(f"a running job ends done or failed, not {status!r}")
        if status == "failed" and (not isinstance(error, str) or not error.strip()):
            raise StoreError(f"a failed job needs its error as a non-empty string, got {error!r}")
        text = None if error is None else error[:ERROR_LIMIT]
        return self._move(job_id, ("running",), status=status, error=text, finished_at=func.now())

    def cancel_job(self, job_id: int) -> JobInfo:
        """Cancel a queued or running job; a finished one is left as it is. Returns the job as it now is."""
        self._move(job_id, ("queued", "running"), status="cancelled", finished_at=func.now())
        return self.job(job_id)

    def requeue_jobs(self) -> list[int]:
        """Put every running job back in the queue (for a runner starting after another was killed);
        returns their ids."""

        def work(conn: Connection) -> list[int]:
            running = design_jobs.c.status == "running"
            ids = [
                int(i)
                for i in conn.execute(select(design_jobs.c.id).where(running).order_by(design_jobs.c.id)).scalars()
            ]
            conn.execute(update(design_jobs).where(running).values(status="queued"))
            return ids

        return self._write(work, idempotent=False)  # run again, it would answer no ids

    def _move(self, job_id: int, sources: tuple[str, ...], **values: Any) -> bool:
        jid = row_id(job_id, "a job")

        def work(conn: Connection) -> bool:
            _job(conn, jid)  # a StoreError for an unknown id
            where = (design_jobs.c.id == jid, design_jobs.c.status.in_(sources))
            return conn.execute(update(design_jobs).where(*where).values(**values)).rowcount == 1

        return self._write(work, idempotent=False)  # run again, a move that landed would answer False


def _job(conn: Connection, job_id: int) -> JobInfo:
    row = conn.execute(select(design_jobs).where(design_jobs.c.id == job_id)).first()
    if row is None:
        raise StoreError(f"no design job with id {job_id}")
    return from_row(JobInfo, row)

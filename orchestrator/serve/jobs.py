"""Design jobs: campaigns submitted to the service, kept in the store, run by a runner in this process.

``DesignJobs`` is plain Python (no Serve, no HTTP): ``submit`` checks a request against the caps and
queues it in the store; a runner thread takes queued jobs, at most ``caps.max_concurrent_jobs`` at
once, and runs each with ``orchestrator.design.campaign.run_campaign`` in a thread of its own, as
``cktloop campaign run`` would, under the campaign name ``job<id>[-<name>]``. ``cancel`` marks a job
cancelled, and its run stops within a second (``run_campaign``'s ``should_stop``). ``stop`` (service
shutdown) stops the runs but leaves their jobs ``running``; ``start`` puts such jobs (and any left by a
killed service) back in the queue, and their campaigns resume per target: finished targets are kept,
the others re-run to the same rows, so nothing is stored twice.

``LocalJobs`` gives the routes (``orchestrator.serve.designs``) the same calls as coroutines;
``orchestrator.serve.job_runner`` does the same through a Serve deployment.
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import logging
import re
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from circuits import CktLoopError
from circuits.config import from_mapping
from orchestrator.design.campaign import CampaignSettings, run_campaign
from orchestrator.design.campaign_file import Campaign
from orchestrator.design.reuse import DatasetRows
from orchestrator.design.search import SearchConfig
from orchestrator.serve.designs import DesignRequest, JobConflict, JobNotFound, JobsBusy
from storage import JobInfo, StoreError

log = logging.getLogger("cktloop.serve.jobs")

DEFAULT_MAX_QUEUED = 20
# Ray CPUs each ngspice actor of a job reserves (``designs.simulator_cpus`` overrides): a fraction, so a
# job's actors start beside the service's own simulation pool even on two cores (where whole CPUs would
# wait for ever); they use what the cores give, and results do not depend on it.
JOB_SIMULATOR_CPUS = 0.25
POLL_S = 0.5  # how often the runner looks for queued jobs when nothing wakes it


class BadDesign(CktLoopError):
    """A request the caps refuse: a 422 naming the field and the value."""


def campaign_settings(config: Any) -> CampaignSettings:
    """How a job's campaign runs, from the service's config (``ServeConfig``): the served checkpoints,
    or plain random search with ``designs.random``; bandit workers and seed from ``designs``."""
    designs = getattr(config, "designs", None)
    knobs: dict[str, Any] = {
        "workers": getattr(designs, "workers", 2),
        "searches_per_worker": getattr(designs, "searches_per_worker", 16),
        "seed": getattr(designs, "seed", 0),
        "simulator_cpus": getattr(designs, "simulator_cpus", None) or JOB_SIMULATOR_CPUS,
    }
    if getattr(designs, "random", False):
        return CampaignSettings(None, None, SearchConfig(refine_share=0.0), **knobs)
    generator, surrogate = config.generator_checkpoint(), config.surrogate_checkpoint()
    return CampaignSettings(generator, surrogate, SearchConfig(), **knobs)


class DesignJobs:
    """Submit, list, inspect, cancel and report design jobs; run them (``start``) on Ray via ``run``."""

    def __init__(
        self,
        store: Any,
        settings: CampaignSettings,
        caps: Any,
        address: str | None = None,
        run: Callable[..., Any] = run_campaign,
        poll_s: float = POLL_S,
    ) -> None:
        self.store, self.settings, self.caps, self.address = store, settings, caps, address
        self.run, self.poll_s = run, poll_s
        self._datasets = DatasetRows()  # the datasets' rows reuse reads, kept between jobs
        self.max_queued = getattr(caps, "max_queued_jobs", DEFAULT_MAX_QUEUED)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._cancelled: set[int] = set()
        self._running: dict[int, threading.Thread] = {}
        self._lock = threading.Lock()
        self._runner: threading.Thread | None = None

    # --- the API's calls ---------------------------------------------------------------------------

    def submit(self, request: Mapping[str, Any] | DesignRequest) -> int:
        """Queue a job for ``request`` (the campaign file's schema); its id."""
        req = request if isinstance(request, DesignRequest) else from_mapping(dict(request), DesignRequest, "design")
        caps = self.caps
        if req.budget > caps.max_budget:
            raise BadDesign(f"budget: {req.budget} is over the service's cap of {caps.max_budget} (caps.max_budget)")
        if len(req.targets) > caps.max_targets_per_job:
            raise BadDesign(
                f"targets: {len(req.targets)} targets are over the service's cap of {caps.max_targets_per_job} "
                "(caps.max_targets_per_job)"
            )
        if len(self.store.jobs("queued")) >= self.max_queued:
            raise JobsBusy(
                f"jobs: {self.max_queued} jobs are queued, the service's cap (caps.max_queued_jobs); retry later"
            )
        job = self.store.add_job(req.model_dump(mode="json"), name=req.name)
        self._wake.set()
        return job.id

    def list(self) -> list[dict[str, Any]]:
        """Every job as a summary, newest first."""
        return [self._summary(job, winners=False)[0] for job in reversed(self.store.jobs())]

    def status(self, job_id: int) -> dict[str, Any]:
        """A job's summary with its targets: state, verdict and winner (circuit, netlist, measured, predicted)."""
        summary, targets = self._summary(self._job(job_id))
        return {**summary, "targets": targets}

    def cancel(self, job_id: int) -> dict[str, Any]:
        """Cancel a queued or running job (a cancelled one stays so); a finished one is a conflict."""
        job = self._job(job_id)
        if job.status in ("done", "failed"):
            raise JobConflict(f"job {job_id} is already {job.status}")
        self._cancelled.add(job.id)
        return self._summary(self.store.cancel_job(job.id), winners=False)[0]

    def report(self, job_id: int) -> str:
        """The campaign's HTML report (``orchestrator.reporting``), its figures inline as data URIs."""
        from orchestrator.design.export import campaign_records
        from orchestrator.reporting.report import write_report

        job = self._job(job_id)
        info = self._campaign(job)
        if info is None:
            raise JobConflict(f"job {job_id} is {job.status} and has no results yet")
        records = campaign_records(self.store, info.id)
        facts = {"campaign": info.name, "job": job.id, "status": job.status, "targets": info.targets}
        facts["wall_time_s"] = info.wall_s
        with tempfile.TemporaryDirectory(prefix="cktloop-report-") as tmp:
            page = write_report(records, tmp, facts=facts, title=f"CktLoop design job {job.id}")
            return _inline_images(page.read_text(encoding="utf-8"), Path(tmp))

    # --- the runner ----------------------------------------------------------------------------------

    def start(self) -> builtins.list[int]:
        """Requeue the jobs a stopped or killed runner left running, and start taking jobs; their ids."""
        requeued = self.store.requeue_jobs()
        if requeued:
            log.info("design jobs %s resume", requeued)
        self._stopping.clear()
        self._runner = threading.Thread(target=self._loop, name="design-jobs", daemon=True)
        self._runner.start()
        return requeued

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop taking jobs and stop the runs in flight; their jobs stay running, for the next ``start``."""
        self._stopping.set()
        self._wake.set()
        with self._lock:
            threads = [self._runner, *self._running.values()]
        for thread in threads:
            if thread is not None:
                thread.join(timeout_s)

    def alive(self) -> bool:
        return self._runner is not None and self._runner.is_alive()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self._take()
            except Exception as exc:  # a store hiccup must not end the runner
                log.error("design job runner: %s", _reason(exc))
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def _take(self) -> None:
        """Start queued jobs, oldest first, while fewer than ``max_concurrent_jobs`` run."""
        with self._lock:
            for job_id, thread in list(self._running.items()):
                if not thread.is_alive():
                    del self._running[job_id]
            for job in self.store.jobs("queued"):
                if len(self._running) >= self.caps.max_concurrent_jobs or self._stopping.is_set():
                    return
                if self.store.start_job(job.id):  # another runner may have taken it
                    thread = threading.Thread(target=self._run_job, args=(job,), name=f"design-job-{job.id}")
                    self._running[job.id] = thread
                    thread.start()

    def _run_job(self, job: JobInfo) -> None:
        try:
            request = from_mapping(job.request, DesignRequest, f"job {job.id}")
            campaign = Campaign(job.campaign, request.budget, tuple(t.target() for t in request.targets))
            stop = partial(self._stop, job.id)
            self.run(
                self.store, campaign, self.settings, address=self.address, should_stop=stop, datasets=self._datasets
            )
        except Exception as exc:
            if not self._stopping.is_set():
                log.error("design job %d failed: %s", job.id, _reason(exc))
                self.store.end_job(job.id, "failed", _reason(exc))
            return
        finally:
            self._wake.set()  # a slot is free
        if not self._stopping.is_set():  # a stopped run leaves the job running, for the next start
            self.store.end_job(job.id, "done")  # a no-op when it was cancelled meanwhile

    def _stop(self, job_id: int) -> bool:
        """Whether the run of ``job_id`` should stop: the runner stops, or the job was cancelled (here or
        by another process sharing the store)."""
        if self._stopping.is_set() or job_id in self._cancelled:
            return True
        return self.store.job(job_id).status == "cancelled"

    # --- answers -----------------------------------------------------------------------------------------

    def _job(self, job_id: int) -> JobInfo:
        try:
            return self.store.job(job_id)
        except StoreError:
            raise JobNotFound(f"no design job with id {job_id}") from None

    def _campaign(self, job: JobInfo) -> Any:
        """The job's campaign, or None before its first run created it."""
        try:
            return self.store.campaign(job.campaign)
        except StoreError as exc:
            if str(exc).startswith("no campaign named"):
                return None
            raise

    def _summary(self, job: JobInfo, winners: bool = True) -> tuple[dict[str, Any], builtins.list[dict[str, Any]]]:
        """A job's summary and its targets (from the campaign once it exists, else from the request), with
        their winners or (cheaper, for summaries) without."""
        from orchestrator.design.export import campaign_records

        info = self._campaign(job)
        if info is not None and winners:
            targets = [_target(r) for r in campaign_records(self.store, info.id)]
        elif info is not None:
            targets = [_target(asdict(t)) for t in self.store.campaign_targets(info.id)]
        else:
            request = from_mapping(job.request, DesignRequest, f"job {job.id}")
            targets = [_pending(entry.target()) for entry in request.targets]
        summary = {
            "id": job.id,
            "name": job.name,
            "campaign": job.campaign,
            "status": job.status,
            "error": job.error,
            "budget": job.request.get("budget"),
            "targets_total": len(targets),
            "targets_done": sum(t["status"] == "done" for t in targets),
            "targets_met": sum(bool(t["met"]) for t in targets),
            "simulations": sum(t["n_simulations"] or 0 for t in targets),
            "submitted_at": _utc(job.submitted_at),
            "started_at": _utc(job.started_at),
            "finished_at": _utc(job.finished_at),
        }
        return summary, targets


def _target(record: Mapping[str, Any]) -> dict[str, Any]:
    """An export record (``orchestrator.design.export``) as the API's target."""
    winner = record.get("winner") or {}
    return {
        "name": record["name"],
        "status": record["status"],
        "bounds": record["bounds"],
        "met": record["met"],
        "n_simulations": record["n_simulations"],
        "reason": record["reason"],
        **{k: winner.get(k) for k in ("circuit", "netlist", "measured", "predicted")},
    }


def _pending(target: Any) -> dict[str, Any]:
    bounds = {f: {"min": b.low, "max": b.high} for f, b in target.bounds}
    return _target(
        {"name": target.name, "status": "pending", "bounds": bounds, "met": None, "n_simulations": None, "reason": None}
    )


def _utc(when: datetime | None) -> datetime | None:
    """A stored time as UTC (SQLite gives the server's UTC ``now()`` back without its zone)."""
    return when.replace(tzinfo=UTC) if when is not None and when.tzinfo is None else when


def _reason(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _inline_images(html: str, folder: Path) -> str:
    """The page with each ``src="<file>.png"`` of ``folder`` as a data URI, so it stands alone."""

    def inline(match: re.Match[str]) -> str:
        path = folder / match.group(1)
        if not path.is_file():
            return match.group(0)
        return f'src="data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()}"'

    return re.sub(r'src="([\w.-]+\.png)"', inline, html)


class LocalJobs:
    """``DesignJobs`` for the routes: each call a coroutine, run in a worker thread."""

    def __init__(self, jobs: DesignJobs) -> None:
        self.jobs = jobs

    async def submit(self, request: Mapping[str, Any]) -> int:
        return await asyncio.to_thread(self.jobs.submit, request)

    async def list(self) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.jobs.list)

    async def status(self, job_id: int) -> dict[str, Any]:
        return await asyncio.to_thread(self.jobs.status, job_id)

    async def cancel(self, job_id: int) -> dict[str, Any]:
        return await asyncio.to_thread(self.jobs.cancel, job_id)

    async def report(self, job_id: int) -> str:
        return await asyncio.to_thread(self.jobs.report, job_id)


def design_jobs(config: Any) -> DesignJobs:
    """``DesignJobs`` on the config's store, settings and caps (not started)."""
    from storage import Store

    return DesignJobs(Store.open(config.db_url()), campaign_settings(config), config.caps, address=config.address)


def from_config(config: Any, services: Any = None) -> LocalJobs:
    """The design jobs of a service running in this process, their runner started (H3's ``jobs_for``)."""
    jobs = design_jobs(config)
    jobs.start()
    return LocalJobs(jobs)

"""Design jobs over HTTP: ``/v1/designs``. A job is a campaign (the campaign file's schema, its name
optional) that the service runs as ``cktloop campaign run`` would, stores as a campaign, and resumes
after a restart.

    POST   /v1/designs              {"name"?, "budget"?, "targets": [{"name", "specs"}]} -> 202 {"id"}
    GET    /v1/designs              every job, newest first, without its targets
    GET    /v1/designs/{id}         status, simulations, and per target: met, circuit, netlist, measured, predicted
    GET    /v1/designs/{id}/report  the campaign's HTML report (figures inline)
    DELETE /v1/designs/{id}         cancel a queued or running job

The routes call ``request.app.state.services.jobs`` (``orchestrator.serve.jobs``: the same calls in
this process or through the job runner's Serve handle) and hold no state of their own.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, StringConstraints

from circuits import Circuit, CktLoopError
from orchestrator.design.campaign_file import CampaignFile

log = logging.getLogger("cktloop.serve.designs")

JobName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=150)]
JobStatus = Literal["queued", "running", "done", "failed", "cancelled"]


class DesignRequest(CampaignFile):
    """A design job: the campaign file's schema (``orchestrator.design.campaign_file``), its name optional."""

    name: JobName | None = None  # type: ignore[assignment]


class JobNotFound(CktLoopError):
    """No job with that id: a 404."""


class JobConflict(CktLoopError):
    """The job cannot do that in its state (a report before any result, cancelling a finished job): a 409."""


class JobsBusy(CktLoopError):
    """The job queue is full: a 429."""


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Submitted(_Answer):
    id: int


class Specs(_Answer):
    """Measured (ngspice) or predicted (surrogate) specs; null where there is no value."""

    status: str | None = None
    gain_db: float | None = None
    ugbw_hz: float | None = None
    pm_deg: float | None = None
    fom: float | None = None


class DesignTarget(_Answer):
    """One target: its state (pending, done or failed with a reason) and, once done, its winner."""

    name: str
    status: Literal["pending", "done", "failed"]
    bounds: dict[str, Any]
    met: bool | None = None
    n_simulations: int | None = None
    reason: str | None = None
    circuit: dict[str, Any] | None = None
    netlist: str | None = None
    measured: Specs | None = None
    predicted: Specs | None = None


class DesignSummary(_Answer):
    """A job as ``GET /v1/designs`` lists it."""

    id: int
    name: str | None
    campaign: str
    status: JobStatus
    error: str | None = None
    budget: int
    targets_total: int
    targets_done: int
    targets_met: int
    simulations: int
    submitted_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None


class DesignJob(DesignSummary):
    """A job with its targets (``GET /v1/designs/{id}``)."""

    targets: list[DesignTarget]


class DesignList(_Answer):
    designs: list[DesignSummary]


JobId = Annotated[int, Path(ge=1, le=2**63 - 1, description="the job's id, as POST /v1/designs answered it")]


def _problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    from orchestrator.serve.schemas import Problem

    what = {
        404: "no design job with that id",
        409: "not possible in the job's state (cancelling a finished job, a report before any result)",
        429: "caps.max_queued_jobs jobs already wait",
        503: "this service runs no design jobs",
    }
    # the JSON media type named: a route answering HTML would otherwise document its problems as HTML
    json = {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    return {code: {"model": Problem, "description": what[code], "content": json} for code in (*codes, 503)}


router = APIRouter(prefix="/v1/designs", tags=["designs"])


def _jobs(request: Request) -> Any:
    jobs = getattr(request.app.state.services, "jobs", None)
    if jobs is None:
        raise HTTPException(503, "design jobs are not available in this service")
    return jobs


async def _call(request: Request, method: str, *args: Any) -> Any:
    """A call on the service's jobs, its refusals as HTTP answers naming the job and what is wrong."""
    try:
        return await getattr(_jobs(request), method)(*args)
    except JobNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except JobConflict as exc:
        raise HTTPException(409, str(exc)) from None
    except JobsBusy as exc:
        raise HTTPException(429, str(exc)) from None


@router.post("", status_code=202, response_model=Submitted, responses=_problems(429))
async def submit(req: DesignRequest, request: Request) -> Submitted:
    """Queue a design job; it runs as soon as fewer than ``caps.max_concurrent_jobs`` jobs run."""
    return Submitted(id=await _call(request, "submit", req.model_dump()))


@router.get("", response_model=DesignList, responses=_problems())
async def list_jobs(request: Request) -> DesignList:
    """Every job, newest first."""
    return DesignList(designs=await _call(request, "list"))


@router.get("/{job_id}", response_model=DesignJob, responses=_problems(404))
async def get_job(job_id: JobId, request: Request) -> DesignJob:
    """A job's status, simulations spent, and each target's verdict and winner."""
    job = await _call(request, "status", job_id)
    await _predict_missing(request, job["targets"])
    return DesignJob.model_validate(job)


_PREDICTED: dict[str, dict[str, Any]] = {}  # circuit key -> the served surrogate's prediction
_PREDICTED_MAX = 4096


async def _predict_missing(request: Request, targets: list[dict[str, Any]]) -> None:
    """Winners stored without a prediction (refined ones: refinement is judged by ngspice alone) get the
    served surrogate's, remembered per circuit; without a surrogate they keep null."""
    services = request.app.state.services
    missing = [t for t in targets if t.get("circuit") and not t.get("predicted")]
    if not missing or getattr(services, "models", None) is None:
        return
    keys = [Circuit.from_dict(t["circuit"]).key for t in missing]
    todo = {k: t["circuit"] for k, t in zip(keys, missing) if k not in _PREDICTED}
    if todo:
        try:
            answer = await services.predict([Circuit.from_dict(c) for c in todo.values()])
        except Exception as exc:  # a prediction is extra: the job's answer goes out without it
            log.warning("no surrogate prediction for design winners: %s", exc)
            return
        if len(_PREDICTED) > _PREDICTED_MAX:
            _PREDICTED.clear()
        for key, row in zip(todo, answer.predicted):
            _PREDICTED[key] = row.model_dump(include={"gain_db", "ugbw_hz", "pm_deg", "fom"})
    for key, target in zip(keys, missing):
        target["predicted"] = _PREDICTED.get(key)


@router.get("/{job_id}/report", response_class=HTMLResponse, responses=_problems(404, 409))
async def report(job_id: JobId, request: Request) -> HTMLResponse:
    """The campaign's HTML report (``cktloop campaign report``'s page, figures inline)."""
    return HTMLResponse(await _call(request, "report", job_id))


@router.delete("/{job_id}", response_model=DesignSummary, responses=_problems(404, 409))
async def cancel(job_id: JobId, request: Request) -> DesignSummary:
    """Cancel a queued or running job (its finished targets stay stored); 409 for a finished one."""
    return DesignSummary.model_validate(await _call(request, "cancel", job_id))

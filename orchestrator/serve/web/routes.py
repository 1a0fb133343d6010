"""The designer's page at ``/`` and the figures it shows, per target of a design job.

``GET /`` is ``static/index.html`` (its script and style under ``/static``, mounted by the app). For each
target's winner: ``bode.svg`` and ``topology.svg``, drawn by ``orchestrator.reporting`` (the report's
own Bode plot with gain, UGBW and PM marked, and its topology drawing) as SVG, and ``netlist.cir``, the
deck ngspice runs. The winner is read from the design jobs (``request.app.state.services.jobs``).
``POST /v1/echo`` answers its JSON body: the benchmark's measure of what HTTP and Serve cost by themselves.
"""

from __future__ import annotations

import functools
import inspect
import io
import json
import pathlib
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Request
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from circuits import Circuit, CktLoopError
from orchestrator.serve.schemas import Problem

STATIC = pathlib.Path(__file__).parent / "static"
FIGURE_CACHE = 128  # rendered figures kept (a figure takes 0.1-0.5 s to draw; a page shows two per target)

router = APIRouter()

JobId = Annotated[int, Path(ge=1, le=2**63 - 1, description="the design job's id")]  # an SQL BIGINT

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem, "description": "no such job, target or winner"}}


def _media(kind: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"content": {kind: {"schema": {"type": "string"}}}, "description": "the figure or file"}, **NOT_FOUND}


@router.get("/", include_in_schema=False)
async def page() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html")


@router.post("/v1/echo", tags=["service"], response_model=dict[str, Any])
async def echo(body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    """The request's JSON object, unchanged (for measuring the service's own overhead)."""
    return body


async def winner(request: Request, job_id: JobId, name: str) -> dict[str, Any]:
    """Target ``name`` of job ``job_id`` as the jobs API answers it, when it has a winning circuit; else a 404."""
    jobs = getattr(request.app.state.services, "jobs", None)
    if jobs is None:
        raise HTTPException(404, "design jobs are not served here")
    try:
        answer = jobs.status(job_id)
        if inspect.isawaitable(answer):
            answer = await answer
    except (CktLoopError, KeyError, LookupError):
        raise HTTPException(404, f"job_id: no design job {job_id}") from None
    job = answer.model_dump(mode="json") if hasattr(answer, "model_dump") else dict(answer)
    target = next((t for t in job.get("targets") or [] if t.get("name") == name), None)
    if target is None:
        raise HTTPException(404, f"name: job {job_id} has no target {name!r}")
    if not target.get("circuit"):
        raise HTTPException(404, f"name: target {name!r} of job {job_id} has no winner (yet)")
    return target


@router.get("/v1/designs/{job_id}/targets/{name}/bode.svg", tags=["designs"], responses=_media("image/svg+xml"))
async def bode_svg(job_id: JobId, name: str, request: Request) -> Response:
    """The winner's Bode plot (magnitude and phase, measured gain, UGBW and PM marked)."""
    target = await winner(request, job_id, name)
    svg = await run_in_threadpool(figure_svg, "bode", _key(target["circuit"]), name)
    return Response(svg, media_type="image/svg+xml", headers=_cache_headers())


@router.get("/v1/designs/{job_id}/targets/{name}/topology.svg", tags=["designs"], responses=_media("image/svg+xml"))
async def topology_svg(job_id: JobId, name: str, request: Request) -> Response:
    """The winner's topology: the main path left to right, side nodes on arcs, devices in physical units."""
    target = await winner(request, job_id, name)
    svg = await run_in_threadpool(figure_svg, "topology", _key(target["circuit"]), name)
    return Response(svg, media_type="image/svg+xml", headers=_cache_headers())


@router.get("/v1/designs/{job_id}/targets/{name}/netlist.cir", tags=["designs"], responses=_media("text/plain"))
async def netlist(job_id: JobId, name: str, request: Request) -> Response:
    """The winner's SPICE deck, as ``ngspice -b`` runs it."""
    target = await winner(request, job_id, name)
    text = target.get("netlist") or _deck(_key(target["circuit"]))
    filename = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name) or "winner"
    disposition = f'attachment; filename="{filename}.cir"'
    return Response(text, media_type="text/plain", headers={"Content-Disposition": disposition})


def _key(circuit: Any) -> str:
    """A circuit's JSON as a hashable cache key (the same circuit, the same figure)."""
    return json.dumps(circuit.to_dict() if isinstance(circuit, Circuit) else circuit, sort_keys=True)


def _cache_headers() -> dict[str, str]:
    return {"Cache-Control": "private, max-age=3600"}  # a winner's figure never changes


@functools.lru_cache(maxsize=FIGURE_CACHE)
def figure_svg(kind: str, circuit_json: str, name: str) -> bytes:
    """The ``kind`` figure ('bode' or 'topology') of a circuit, drawn by orchestrator.reporting, as SVG bytes."""
    from orchestrator.reporting.bode import bode, plot_bode
    from orchestrator.reporting.drawing import draw_circuit

    circuit = Circuit.from_dict(json.loads(circuit_json))
    fig = plot_bode(bode(circuit), f"{name}: Bode plot") if kind == "bode" else draw_circuit(circuit)
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})  # no date: the same circuit, the same bytes
    return buf.getvalue()


def _deck(circuit_json: str) -> str:
    from simulator.netlist import deck

    return deck(Circuit.from_dict(json.loads(circuit_json)))

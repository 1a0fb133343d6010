"""The HTTP API as a FastAPI app over ``Services``: routes, error answers, the token and body-size gate.

``create_app(services, token)`` builds it; it runs the same in-process (FastAPI's TestClient, no Ray)
and as the Serve ingress (``orchestrator.serve.deployments``). Routers get what they need from
``request.app.state.services`` (``services.config``, ``services.jobs``). Every error is JSON
``{"error": one line naming the field and the value, "status": code}``: 400 malformed JSON, 401 no
token, 404/405, 413 body over the cap, 422 a value the API refuses; a 500 is a bug of ours, never the
client's input, and the service goes on serving.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from circuits import CktLoopError
from circuits.config import describe_errors
from orchestrator.serve.schemas import (
    CircuitsRequest,
    GenerateAnswer,
    GenerateRequest,
    Health,
    ModelsAnswer,
    PredictAnswer,
    Problem,
    SimulateAnswer,
)
from orchestrator.serve.security import Gate
from orchestrator.serve.services import Services, Unavailable
from storage.engine import mask

log = logging.getLogger("cktloop.serve")

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "description": what}
    for code, what in (
        (400, "malformed JSON"),
        (401, "missing or wrong bearer token"),
        (413, "body over caps.max_body_bytes"),
        (422, "a field's value is refused; the message names the field and the value"),
        (503, "a part of the service is missing on its node (e.g. ngspice)"),
    )
}


def _problem(status: int, error: str) -> JSONResponse:
    return JSONResponse({"error": " ".join(error.split()), "status": status}, status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    """JSON problems for every error; the body's field path is named without the leading 'body'."""

    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            ctx = errors[0].get("ctx") or {}
            return _problem(400, f"body: malformed JSON ({ctx.get('error', 'cannot parse')})")
        for e in errors:
            loc = tuple(e.get("loc") or ())
            e["loc"] = loc[1:] if loc[:1] == ("body",) else loc
        return _problem(422, describe_errors(errors) or "body: invalid")

    async def refused(_: Request, exc: CktLoopError) -> JSONResponse:
        return _problem(503 if isinstance(exc, Unavailable) else 422, str(exc))

    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return _problem(exc.status_code, str(exc.detail))

    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed: %s: %s", request.method, request.url.path, type(exc).__name__, mask(str(exc)))
        return _problem(500, f"internal error ({type(exc).__name__}); the service goes on")

    app.add_exception_handler(RequestValidationError, invalid)  # type: ignore[arg-type]
    app.add_exception_handler(CktLoopError, refused)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, crashed)


def services_of(request: Request) -> Services:
    return request.app.state.services


def create_app(services: Services, token: str | None = None) -> FastAPI:
    """The API over ``services``; with ``token``, every request needs ``Authorization: Bearer <token>``."""
    app = FastAPI(
        title="CktLoop",
        version="1",
        description="Specification-driven op-amp design: generate circuits for target specs, predict their specs, "
        "simulate them with ngspice, run design jobs.",
        responses=ERRORS,
        docs_url=None,  # served below from the swagger-ui-bundle package: FastAPI's page loads Swagger UI from a CDN
        redoc_url=None,
    )
    app.state.services = services
    install_error_handlers(app)

    @app.post("/v1/generate", response_model=GenerateAnswer, tags=["models"])
    async def generate(req: GenerateRequest, request: Request) -> Response:
        """Circuits for a target (bounds per spec) or a spec class, each with the surrogate's prediction."""
        # the answer comes as JSON from where the models run: sent as it is, not decoded and validated again
        return Response(await services_of(request).generate(req), media_type="application/json")

    @app.post("/v1/predict", response_model=PredictAnswer, tags=["models"])
    async def predict(req: CircuitsRequest, request: Request) -> PredictAnswer:
        """The surrogate's predicted spec class and specs per circuit."""
        return await services_of(request).predict(req.circuits)

    @app.post("/v1/simulate", response_model=SimulateAnswer, tags=["models"])
    async def simulate(req: CircuitsRequest, request: Request) -> SimulateAnswer:
        """ngspice's measured specs (or the reason there are none) per circuit."""
        return await services_of(request).simulate(req.circuits)

    @app.get("/v1/models", response_model=ModelsAnswer, tags=["models"])
    async def models(request: Request) -> ModelsAnswer:
        """The model versions served and their spec classes."""
        return await services_of(request).model_list()

    @app.get("/healthz", response_model=Health, tags=["service"])
    async def healthz(request: Request) -> Health:
        return await services_of(request).health()

    _include_parts(app, web=services.config.web)
    _offline_docs(app, bearer=token is not None)
    app.add_middleware(Gate, token=token, max_body_bytes=services.config.caps.max_body_bytes)
    return app


def _offline_docs(app: FastAPI, bearer: bool) -> None:
    """Swagger UI at /docs from the files of the ``swagger-ui-bundle-v2`` package (the machines are offline);
    with a token, the schema declares the bearer scheme, so the page's Authorize button sends it."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="CktLoop API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )

    if bearer:
        plain = app.openapi

        def with_bearer() -> dict[str, Any]:
            schema = plain()
            schema.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = {
                "type": "http",
                "scheme": "bearer",
            }
            schema["security"] = [{"bearer": []}]
            return schema

        app.openapi = with_bearer  # type: ignore[method-assign]


def _include_parts(app: FastAPI, web: bool) -> None:
    """The design-job router and (with ``web``) the page, where their modules exist (issue 17's other parts)."""
    if importlib.util.find_spec("orchestrator.serve.designs") is not None:
        from orchestrator.serve import designs

        app.include_router(designs.router)
    if web and importlib.util.find_spec("orchestrator.serve.web.routes") is not None:
        from fastapi.staticfiles import StaticFiles

        from orchestrator.serve.web import routes

        static = Path(routes.__file__).parent / "static"
        if static.is_dir():
            app.mount("/static", StaticFiles(directory=static), name="static")
        app.include_router(routes.router)

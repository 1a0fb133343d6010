"""The Serve application: model deployments with dynamic batching, the simulator, the FastAPI ingress.

* ``Ingress``: the HTTP entry (``create_app``) and the generator, with a surrogate beside it to rank its
  circuits: /v1/generate runs in the ingress replica itself (no handle call: the request's only process hop
  is Serve's proxy to the ingress), its other calls go to the deployments' handles (``HandleModels``).
* ``SurrogateModel``: the surrogate of /v1/predict (and of design jobs' winners).
* Both models load the checkpoints their ``user_config`` names. ``@serve.batch`` merges concurrent requests
  into one model call (each request's answer is what it alone would get: ``Generator.generate_many`` decodes
  every row from its own seeded latents). A new ``user_config`` swaps the model in place (``reconfigure``):
  the new checkpoint loads in a worker thread while the old model keeps answering, then one assignment
  switches; every answer names the version of the model that produced it.
* ``Simulator``: a ``SimulationPool`` of ngspice workers (one process each); concurrent
  /v1/simulate requests are batched into one pool run.

``build_app(args)`` is the application builder (``serve run orchestrator.serve.deployments:build_app``,
the repository's ``serve_config.yaml``, ``cktloop serve``); ``app_config(config)`` is the Serve config
``cktloop serve`` applies. Model checkpoints travel in the deployments' ``user_config``, never in the
builder's args, so applying the config again with other checkpoints reconfigures the running replicas
instead of replacing them. Secrets (API token, database URL) never enter the Serve config: the builder
reads them in the cluster from the environment (or ``token_file``).
"""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import os
import time
from collections.abc import Sequence
from typing import Any

from ray import serve
from ray.serve.schema import LoggingConfig
from sqlalchemy.engine import make_url

from circuits import Circuit, CktLoopError, Performance
from orchestrator.serve.app import create_app
from orchestrator.serve.batching import Batching
from orchestrator.serve.config import ModelDeployment, ServeConfig
from orchestrator.serve.services import (
    BadRequest,
    GenerateCall,
    Services,
    Unavailable,
    generate_answers,
    model_info,
    prediction_rows,
)
from storage.engine import mask

APP_NAME = "cktloop"
QUIET = LoggingConfig(enable_access_log=False, log_level="WARNING")
INGRESS_ONGOING_REQUESTS = 256  # HTTP requests one ingress replica takes at once (page, jobs, figures, models)


class _ModelReplica(Batching):
    """What both model deployments share: the model, swapped in place by ``reconfigure``."""

    model: Any = None
    checkpoint: str | None = None

    def __init__(self, torch_threads: int = 1, num_gpus: float = 0.0) -> None:
        import torch

        super().__init__()
        torch.set_num_threads(torch_threads)
        self.num_gpus = num_gpus

    def _device(self) -> Any:
        from surrogate.training.device import choose_device

        return choose_device("auto" if self.num_gpus > 0 else "cpu")

    def _load(self, checkpoint: str) -> Any:
        raise NotImplementedError

    def _default_checkpoint(self) -> str:
        raise NotImplementedError

    async def reconfigure(self, user_config: dict[str, Any]) -> None:
        """Load the checkpoint ``user_config`` names (the old model answers meanwhile), then swap; apply
        the batch settings."""
        checkpoint = str(user_config.get("checkpoint") or self._default_checkpoint())
        if checkpoint != self.checkpoint or self.model is None:
            model = await asyncio.to_thread(self._load, checkpoint)
            self.model, self.checkpoint = model, checkpoint  # one step: a batch sees the old or the new model
        batched = self._batched  # type: ignore[attr-defined]
        batched.set_max_batch_size(int(user_config.get("max_batch_size", 16)))
        batched.set_batch_wait_timeout_s(float(user_config.get("batch_wait_timeout_s", 0.0)))

    def check_health(self) -> None:
        if self.model is None:
            raise RuntimeError("no model loaded")

    def info(self) -> dict[str, Any]:
        return model_info(self.model, self.checkpoint)

    def stats(self) -> dict[str, Any]:
        """This replica's id (a model swap keeps it), its recent batch sizes, model calls' times in their thread
        and requests' times in the replica (seconds; the latest last, 1,000 each at most)."""
        return {
            "replica": serve.get_replica_context().replica_id.unique_id,
            "batch_sizes": list(self.batch_sizes),
            "call_s": list(self.call_s),
            "request_s": list(self.request_s),
        }


def _load_surrogate(checkpoint: str, device: Any) -> Any:
    from surrogate.predict import Surrogate

    return Surrogate.load(checkpoint, device=device)


def _surrogate_checkpoint() -> str:
    from surrogate.paths import DESIGN_CHECKPOINT

    return str(DESIGN_CHECKPOINT)


class _Generator(_ModelReplica):
    """The generator, with the surrogate that ranks its circuits beside it (``user_config["surrogate"]``, the
    surrogate deployment's checkpoint): what the ingress replica runs for /v1/generate, in its own process
    (no handle call), drawn and ranked in one batch, answered as JSON."""

    ranker: Any = None
    ranker_checkpoint: str | None = None

    def _load(self, checkpoint: str) -> Any:
        from generator.predict import Generator

        return Generator.load(checkpoint, device=self._device())

    def _default_checkpoint(self) -> str:
        from generator.paths import DESIGN_CHECKPOINT

        return str(DESIGN_CHECKPOINT)

    async def reconfigure(self, user_config: dict[str, Any]) -> None:
        """The ranker first, then the generator; each swapped in one step (a batch reads both at once)."""
        checkpoint = str(user_config.get("surrogate") or _surrogate_checkpoint())
        if checkpoint != self.ranker_checkpoint or self.ranker is None:
            ranker = await asyncio.to_thread(_load_surrogate, checkpoint, self._device())
            self.ranker, self.ranker_checkpoint = ranker, checkpoint
        await super().reconfigure(user_config)

    def check_health(self) -> None:
        super().check_health()
        if self.ranker is None:
            raise RuntimeError("no surrogate loaded to rank with")

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.0)
    async def _batched(self, calls: list[GenerateCall]) -> list[bytes | str]:
        model, ranker = self.model, self.ranker  # the whole batch on one pair, whatever reconfigure does meanwhile
        answers = await self._call(len(calls), generate_answers, model, ranker, calls)
        return [str(a) if isinstance(a, Exception) else a for a in answers]

    async def generate(self, call: GenerateCall) -> bytes | str:
        """The call's ``GenerateAnswer`` JSON, or the one-line reason it is refused."""
        return await self._submit(call)


@serve.deployment(logging_config=QUIET, health_check_period_s=10)
class SurrogateModel(_ModelReplica):
    def _load(self, checkpoint: str) -> Any:
        return _load_surrogate(checkpoint, self._device())

    def _default_checkpoint(self) -> str:
        return _surrogate_checkpoint()

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.0)
    async def _batched(self, calls: list[list[Circuit]]) -> list[tuple[str, list[dict[str, Any]]]]:
        model = self.model
        rows = await self._call(len(calls), prediction_rows, model, [c for circuits in calls for c in circuits])
        starts = list(itertools.accumulate((len(c) for c in calls), initial=0))
        return [(model.version, rows[a:b]) for a, b in itertools.pairwise(starts)]

    async def predict(self, circuits: list[Circuit]) -> tuple[str, list[dict[str, Any]]]:
        return await self._submit(circuits)


@serve.deployment(logging_config=QUIET, health_check_period_s=30, max_ongoing_requests=64)
class Simulator(Batching):
    """ngspice through the simulation pool: its workers are Ray actors, one ngspice process each."""

    def __init__(self, settings: dict[str, Any]) -> None:
        super().__init__()
        from orchestrator.distributed.simulation_pool import PoolConfig, SimulationPool
        from orchestrator.serve.config import SimulatorDeployment
        from simulator.ngspice import NgspiceBackend

        cfg = SimulatorDeployment.model_validate(settings)
        batched: Any = self._batched  # @serve.batch adds the setters; its type hints do not say so
        batched.set_max_batch_size(cfg.max_batch_size)
        batched.set_batch_wait_timeout_s(cfg.batch_wait_timeout_s)
        self.pool: Any = None
        self.name = "ngspice (not installed: /v1/simulate answers 503)"
        if not NgspiceBackend.available():  # the rest of the service still serves
            return
        self.pool = SimulationPool(
            PoolConfig(
                num_workers=cfg.workers,
                num_cpus_per_worker=cfg.worker_cpus,
                circuits_per_deck=cfg.circuits_per_deck,
                timeout_s=cfg.timeout_s,
            )
        )
        self.name = f"{self.pool.simulator} {self.pool.version}"

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.01)
    async def _batched(self, calls: list[list[Circuit]]) -> list[list[Performance]]:
        results = await self._call(len(calls), self.pool.simulate_all, [c for circuits in calls for c in circuits])
        starts = list(itertools.accumulate((len(c) for c in calls), initial=0))
        return [results[a:b] for a, b in itertools.pairwise(starts)]

    async def simulate(self, circuits: list[Circuit]) -> tuple[str, list[Performance]] | str:
        """(simulator and version, results), or why there is no simulator."""
        if self.pool is None:
            return "simulator: ngspice's shared library is not installed on the service's node"
        return self.name, await self._submit(circuits)


class HandleModels:
    """``services.Models`` over the ingress replica's own generator (``generator``: a ``_Generator``) and the
    surrogate and simulator deployments' handles. A part that fails (an error of ours or of its node, never
    the request's: refusals come back as answers) is a 503 naming the part."""

    def __init__(self, generator: Any, surrogate: Any, simulator: Any) -> None:
        self.generator, self.surrogate, self.simulator = generator, surrogate, simulator

    @staticmethod
    async def _ask(part: str, method: Any, *args: Any) -> Any:
        from ray.exceptions import RayError

        try:
            return await method.remote(*args)
        except RayError as exc:
            cause = getattr(exc, "cause", None) or exc
            lines = str(cause).strip().splitlines() or [type(cause).__name__]
            raise Unavailable(f"{part}: {mask(lines[0])[:300]}") from None

    async def generate(self, call: GenerateCall) -> bytes:
        try:
            answer = await self.generator.generate(call)
        except Exception as exc:  # the model's failure, not the request's (refusals are answers)
            lines = str(exc).strip().splitlines() or [type(exc).__name__]
            raise Unavailable(f"generator: {mask(lines[0])[:300]}") from None
        if isinstance(answer, str):
            raise BadRequest(answer)
        return answer

    async def predict(self, circuits: Sequence[Circuit]) -> tuple[str, list[dict[str, Any]]]:
        return await self._ask("surrogate", self.surrogate.predict, list(circuits))

    async def simulate(self, circuits: Sequence[Circuit]) -> tuple[str, list[Performance]]:
        answer = await self._ask("simulator", self.simulator.simulate, list(circuits))
        if isinstance(answer, str):
            raise Unavailable(answer)
        return answer

    async def info(self) -> dict[str, dict[str, Any]]:
        return {"generator": self.generator.info(), "surrogate": await self._ask("surrogate", self.surrogate.info)}


@serve.deployment(logging_config=QUIET, health_check_period_s=10)
@serve.ingress()
class Ingress(_Generator):
    """The HTTP entry, ``create_app``, and the generator: /v1/generate runs in this replica (its ``user_config``
    is the generator's), the other calls go to the surrogate and simulator deployments' handles. The
    generator's replicas, CPUs and GPUs are this deployment's."""

    def __init__(
        self,
        surrogate: Any,
        simulator: Any,
        config: dict[str, Any],
        token: str | None,
        runner: Any = None,
    ) -> None:
        cfg = ServeConfig.model_validate(config)
        super().__init__(cfg.generator.torch_threads, cfg.generator.num_gpus)
        self.services = Services(HandleModels(self, surrogate, simulator), cfg)
        if runner is not None:  # design jobs live in their one runner replica, whatever the ingress replicas
            from orchestrator.serve.job_runner import HandleJobs

            self.services.jobs = HandleJobs(runner)
        self.token = token

    def __serve_build_asgi_app__(self) -> Any:
        return create_app(self.services, self.token)


def model_user_config(model: ModelDeployment, ranker: ModelDeployment | None = None) -> dict[str, Any]:
    """The part of a model's settings that changes in place: checkpoint and batching; for the generator
    (``ranker``: the surrogate's settings), the checkpoint of the surrogate that ranks its circuits."""
    config = {
        "checkpoint": model.checkpoint,
        "max_batch_size": model.max_batch_size,
        "batch_wait_timeout_s": model.batch_wait_timeout_s,
    }
    if ranker is not None:
        config["surrogate"] = ranker.checkpoint
    return config


def _model(deployment: Any, model: ModelDeployment) -> Any:
    return deployment.options(user_config=model_user_config(model), **model.deployment_options()).bind(
        model.torch_threads, model.num_gpus
    )


def _deployment(cls: Any) -> Any:
    """A class decorated with ``@serve.deployment``, as what it is (a Deployment; Serve's hints keep the class)."""
    return cls


def _cpu_free(deployment: Any) -> Any:
    """``deployment`` reserving no CPU of its own: its replica holds actors that reserve their own (the
    simulator's ngspice workers) or drives a job's campaign on Ray (the job runner)."""
    return _deployment(deployment).options(ray_actor_options={"num_cpus": 0})


def build_app(args: dict[str, Any]) -> Any:
    """The Serve application for ``args`` (a ``ServeConfig`` as a mapping; model checkpoints, if any,
    are the initial ``user_config``). Refuses a non-loopback host without a token."""
    config = ServeConfig.model_validate(args or {})
    token = config.read_token()
    config.check_exposure(token)
    simulator = _cpu_free(Simulator).bind(config.simulator.model_dump())
    runner = None
    if importlib.util.find_spec("orchestrator.serve.job_runner") is not None:
        from orchestrator.serve.job_runner import JobRunner

        runner = _cpu_free(JobRunner).bind(config.model_dump())
    ingress = _deployment(Ingress).options(
        user_config=model_user_config(config.generator, config.surrogate),
        **config.generator.deployment_options(at_least=INGRESS_ONGOING_REQUESTS),
    )
    return ingress.bind(
        _model(SurrogateModel, config.surrogate),
        simulator,
        config.model_dump(),
        token,
        runner,
    )


def app_config(config: ServeConfig, proxy_port: int | None = None) -> dict[str, Any]:
    """The Serve config (``ServeDeploySchema``) that runs ``config``: the builder's args hold no
    checkpoints (changing them would replace the replicas; the deployments' ``user_config`` does) and no
    database URL with a password (``environment_for`` passes that one in the environment). Serve's proxy
    listens on ``config.port``, or on ``proxy_port`` where the ingress replica takes that port (direct ingress)."""
    exclude: dict[str, Any] = {"generator": {"checkpoint"}, "surrogate": {"checkpoint"}}
    if config.db is not None and make_url(config.db).password is not None:
        exclude["db"] = True
    args = config.model_dump(exclude=exclude)
    return {
        "http_options": {
            "host": config.host,
            "port": proxy_port or config.port,
            "request_timeout_s": config.request_timeout_s,
        },
        "logging_config": QUIET.model_dump(),
        "applications": [
            {
                "name": APP_NAME,
                "route_prefix": "/",
                "import_path": "orchestrator.serve.deployments:build_app",
                "args": args,
                "deployments": [
                    {"name": "Ingress", "user_config": model_user_config(config.generator, config.surrogate)},
                    {"name": "SurrogateModel", "user_config": model_user_config(config.surrogate)},
                ],
            }
        ],
    }


def deploy(config: ServeConfig, timeout_s: float = 600.0, direct: bool = False) -> None:
    """Apply ``app_config(config)`` to the connected Ray (Serve started on ``config.host:port`` if it is not
    running) and wait until the application runs: the first time it starts the application; later, changed
    checkpoints or batch settings are reconfigured in place. Serve's config deployment (``serve deploy``).
    ``direct``: the Ray was started with ``environment_for``'s direct ingress, the ingress replica listens on
    ``config.port`` itself and Serve's proxy on a free port beside it."""
    from ray.exceptions import RayError
    from ray.serve._private.api import serve_start
    from ray.serve.schema import ServeDeploySchema

    schema = ServeDeploySchema.model_validate(app_config(config, _free_port(config.host) if direct else None))
    try:
        client = serve_start(http_options=schema.http_options.model_dump(), global_logging_config=QUIET)
        client.deploy_apps(schema)
    except RayError as exc:  # e.g. Serve's proxy actor killed when it is not up within 60 s on a loaded machine
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CktLoopError(f"Serve did not start: {type(exc).__name__}: {mask(first)[:300]}") from None
    deadline = time.monotonic() + timeout_s
    while True:
        app = serve.status().applications.get(APP_NAME)
        status = str(app.status) if app is not None else "NOT_STARTED"
        if status.endswith("RUNNING") and not _updating(app):
            return
        if status.endswith("DEPLOY_FAILED"):
            message = " ".join((app.message or "").split())[:500] if app is not None else ""
            raise CktLoopError(f"the service did not start: {message or 'see the Ray logs'}")
        if time.monotonic() > deadline:
            raise CktLoopError(f"the service is not running after {timeout_s:g} s (status {status})")
        time.sleep(0.5)


def _updating(app: Any) -> bool:
    """Whether a deployment of ``app`` is still taking a new config (its replicas reconfiguring or starting)."""
    return any(not str(d.status).endswith("HEALTHY") for d in app.deployments.values())


# Serve's latency settings (part of Ray's RAY_SERVE_THROUGHPUT_OPTIMIZED set): a replica runs its handler on its
# main event loop, and a handle routes on the caller's loop, instead of a thread and a loop of their own each; a
# request then crosses no thread inside the proxy and the replicas (docs/serve.md: latency and throughput).
SERVE_ENV = {"RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "0", "RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP": "0"}


def direct_ingress_env(port: int) -> dict[str, str]:
    """Serve's direct ingress (Ray 2.60, also in that set): the ingress replica serves HTTP itself on ``port``
    (its range's only port), so a request crosses no proxy process. A port let go is taken again at once, and a
    replica that stops drains its open requests only (no load balancer in front has to deregister it)."""
    return {
        "RAY_SERVE_ENABLE_DIRECT_INGRESS": "1",
        "RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT": str(port),
        "RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT": str(port + 1),
        "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "0",
        "RAY_SERVE_PORT_QUARANTINE_S": "0",
    }


def environment_for(config: ServeConfig) -> bool:
    """Put the store's URL where the replicas read it when it is not in the Serve config, and Serve's latency
    settings unless set already (call before Ray starts: a local Ray's processes inherit this environment).
    Direct ingress too where it can work: a Ray of our own still to start (a joined cluster keeps its own
    settings), one ingress replica (the one port), not turned off by ``RAY_SERVE_ENABLE_DIRECT_INGRESS=0``.
    Whether it is on (``deploy(..., direct=)``)."""
    import ray

    if config.db:
        os.environ["CKTLOOP_DB"] = config.db
    for name, value in SERVE_ENV.items():
        os.environ.setdefault(name, value)
    one = config.generator.replicas == 1 and (config.generator.max_replicas or 1) == 1
    direct = one and config.address is None and not os.environ.get("RAY_ADDRESS") and not ray.is_initialized()
    if direct and os.environ.get("RAY_SERVE_ENABLE_DIRECT_INGRESS", "1") != "0":
        os.environ.update(direct_ingress_env(config.port))
        return True
    return False


def _free_port(host: str) -> int:
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])

"""The service's configuration: where it listens, which models it serves, its limits and resources.

One ``ServeConfig`` (pydantic, strict, unknown keys rejected) is read from a YAML file (``cktloop serve
--config``, or the ``args.config`` of the repository's ``serve_config.yaml`` under Ray's own ``serve run``)
and travels to every replica as a plain mapping. The API token is never part of the file: it comes from
the environment variable named by ``token_env`` or from ``token_file``, read when the service starts.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, model_validator

from circuits import CktLoopError
from circuits.config import ConfigModel, from_mapping, read_yaml

TOKEN_ENV = "CKTLOOP_API_TOKEN"
LOOPBACK = ("127.0.0.1", "localhost", "::1")

PositiveInt = Annotated[int, Field(ge=1)]


class Caps(ConfigModel):
    """What one request, or the service, may ask for at most."""

    max_body_bytes: PositiveInt = 1_000_000
    max_n: PositiveInt = 100  # circuits per /v1/generate
    max_circuits: PositiveInt = 256  # circuits per /v1/predict or /v1/simulate
    max_budget: PositiveInt = 5000  # simulations per target of a design job
    max_targets_per_job: PositiveInt = 50
    max_concurrent_jobs: PositiveInt = 2
    max_queued_jobs: PositiveInt = 20  # POST /v1/designs answers 429 past it


class ModelDeployment(ConfigModel):
    """One model deployment: its checkpoint (None: the shipped design model), replicas and batching."""

    checkpoint: str | None = None
    replicas: PositiveInt = 1
    max_replicas: PositiveInt | None = None  # > replicas: autoscale between them (min_replicas = replicas)
    num_cpus: float = Field(0.0, ge=0)  # Ray's logical CPUs per replica (0: share the node's cores)
    num_gpus: float = Field(0.0, ge=0)
    torch_threads: PositiveInt = 1
    max_batch_size: PositiveInt = 32  # requests merged into one model call (20 clients: all in one)
    batch_wait_timeout_s: float = Field(0.0, ge=0)  # once the model is free (0: take what queued)
    max_ongoing_requests: PositiveInt = 32  # raised to max_batch_size when lower, so batches can fill

    @model_validator(mode="after")
    def _scaling(self) -> ModelDeployment:
        if self.max_replicas is not None and self.max_replicas < self.replicas:
            raise ValueError(f"max_replicas {self.max_replicas} is below replicas {self.replicas}")
        return self

    def deployment_options(self, at_least: int = 1) -> dict[str, Any]:
        """``Deployment.options`` for this model (replicas or autoscaling, resources, request limit: never below
        ``max_batch_size`` nor ``at_least``)."""
        options: dict[str, Any] = {
            "ray_actor_options": {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus},
            "max_ongoing_requests": max(self.max_ongoing_requests, self.max_batch_size, at_least),
        }
        if self.max_replicas is not None and self.max_replicas > self.replicas:
            options["autoscaling_config"] = {"min_replicas": self.replicas, "max_replicas": self.max_replicas}
        else:
            options["num_replicas"] = self.replicas
        return options


class SimulatorDeployment(ConfigModel):
    """The simulation deployment: one replica holding a pool of ngspice workers (one process each)."""

    workers: PositiveInt = 1
    worker_cpus: float = Field(1.0, ge=0)
    circuits_per_deck: PositiveInt = 50
    timeout_s: float = Field(60.0, gt=0)
    max_batch_size: PositiveInt = 8  # /v1/simulate requests merged into one pool run
    batch_wait_timeout_s: float = Field(0.01, ge=0)


class DesignJobsConfig(ConfigModel):
    """How design jobs run (orchestrator.serve.jobs)."""

    random: bool = False  # plain random search, no models (tests, the baseline)
    workers: PositiveInt = 2
    searches_per_worker: PositiveInt = 16  # targets a bandit worker searches at once (its model calls batch them)
    seed: int = Field(0, ge=0)
    simulator_cpus: float | None = Field(None, gt=0)  # Ray CPUs per ngspice actor of a job (None: 0.25)


class ServeConfig(ConfigModel):
    """Everything ``cktloop serve`` needs; every field has a default that works on one laptop."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    address: str | None = None  # a Ray cluster to join (None: start a local one)
    db: str | None = None  # SQLAlchemy URL of the store (None: $CKTLOOP_DB or sqlite:///cktloop.db)
    token_env: str = TOKEN_ENV
    token_file: str | None = None
    caps: Caps = Caps()
    generator: ModelDeployment = ModelDeployment()
    surrogate: ModelDeployment = ModelDeployment()
    simulator: SimulatorDeployment = SimulatorDeployment()
    designs: DesignJobsConfig = DesignJobsConfig()
    request_timeout_s: float = Field(300.0, gt=0)
    web: bool = True  # the page at / and its static files

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)

    def db_url(self) -> str:
        from storage import default_url

        return self.db or default_url()

    def generator_checkpoint(self) -> str:
        from generator.paths import DESIGN_CHECKPOINT

        return self.generator.checkpoint or str(DESIGN_CHECKPOINT)

    def surrogate_checkpoint(self) -> str:
        from surrogate.paths import DESIGN_CHECKPOINT

        return self.surrogate.checkpoint or str(DESIGN_CHECKPOINT)

    def read_token(self) -> str | None:
        """The API token: ``$token_env`` if set, else the first line of ``token_file``; None without either."""
        token = os.environ.get(self.token_env, "").strip()
        if not token and self.token_file:
            try:
                token = Path(self.token_file).read_text().strip().splitlines()[0].strip()
            except (OSError, IndexError, UnicodeDecodeError):
                raise CktLoopError(f"token_file {self.token_file}: cannot read a token from it") from None
        return token or None

    def check_exposure(self, token: str | None) -> None:
        """Refuse a non-loopback address without a token: one line saying why and what to do."""
        if not self.loopback and not token:
            raise CktLoopError(
                f"refusing to listen on {self.host} without an API token: set {self.token_env} or token_file "
                "(or listen on 127.0.0.1)"
            )


def is_loopback(host: str) -> bool:
    if host in LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_serve_config(path: str | Path | None = None, **overrides: Any) -> ServeConfig:
    """The file's config (or the defaults) with the ``overrides`` that are not None (command-line options)."""
    data: Any = {} if path is None else read_yaml(path, "serve config")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise CktLoopError(f"{path}: expected a mapping of serve settings")
    data = {**data, **{k: v for k, v in overrides.items() if v is not None}}
    return from_mapping(data, ServeConfig, where=str(path) if path else "serve config")

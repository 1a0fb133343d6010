"""What the routes call: ``Services``, over ``Models`` that run in this process or behind Serve handles.

``Services`` holds the API's logic (caps, merging the generator's circuits with the surrogate's
predictions, answers as schemas) and knows nothing of Ray; ``Models`` is the three calls it needs
from the models and the simulator. ``LocalModels`` runs the plain classes in this process (tests,
one-process use); ``orchestrator.serve.deployments.HandleModels`` calls the Serve deployments. Both
resolve a request's spec classes with the generator that answers it (``plan_generation``), so a model
swapped between two calls cannot pair one model's classes with another's decoder.
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from circuits import Circuit, CktLoopError, Performance
from circuits.specs import SpecClass
from circuits.targets import Target, valid_classes
from orchestrator.serve.config import ServeConfig
from orchestrator.serve.schemas import (
    GenerateAnswer,
    GeneratedCircuit,
    GenerateRequest,
    Health,
    Measured,
    ModelInfo,
    ModelsAnswer,
    PredictAnswer,
    Predicted,
    SimulateAnswer,
)


class BadRequest(CktLoopError):
    """A request the service cannot answer as asked: a 422 whose message names the field and the value."""


class Unavailable(CktLoopError):
    """A part of the service that is not there (e.g. ngspice on this node): a 503 saying which."""


@dataclass(frozen=True)
class GenerateCall:
    """One /v1/generate request as a model host reads it (plain data: it travels to a replica)."""

    bounds: tuple[tuple[str, float | None, float | None], ...] | None  # (field, min, max); None: spec_class
    spec_class: tuple[int, ...] | None
    n: int
    seed: int
    sampling: str

    @classmethod
    def of(cls, req: GenerateRequest) -> GenerateCall:
        target = req.bounds()
        bounds = tuple((f, b.low, b.high) for f, b in target.bounds) if target else None
        spec = tuple(req.spec_class) if req.spec_class is not None else None
        return cls(bounds, spec, req.n, req.seed, req.sampling)

    def target(self) -> Target | None:
        from circuits.targets import Bound

        return None if self.bounds is None else Target("target", tuple((f, Bound(lo, hi)) for f, lo, hi in self.bounds))


def plan_generation(generator: Any, call: GenerateCall) -> tuple[list[SpecClass], tuple[Any, ...]]:
    """The classes a call draws from and the ``Generator.generate`` arguments that draw them.

    A target's classes are those of the generator's training classes lying wholly inside its bounds,
    else those overlapping them (``circuits.targets.valid_classes``, as the design search picks its
    arms). The ``n`` circuits' classes are drawn from them with ``seed``, and the generator is seeded
    with it too, so the same request gives the same circuits whatever it is batched with.
    """
    classes = generator.spec_classes
    if call.spec_class is not None:
        sizes = classes.sizes
        if len(call.spec_class) != len(sizes) or any(k >= s for k, s in zip(call.spec_class, sizes)):
            raise BadRequest(
                f"class: {list(call.spec_class)} is not a class of the generator (axis sizes {list(sizes)})"
            )
        chosen: list[SpecClass] = [call.spec_class]
    else:
        target = call.target()
        assert target is not None
        chosen, _inside = valid_classes(target, classes, generator.train_classes)
        if not chosen:
            raise BadRequest(f"target: no spec class of the generator overlaps {target.describe()}")
    picks = np.random.default_rng(call.seed).integers(len(chosen), size=call.n)
    specs = [chosen[i] for i in picks]
    return chosen, (specs, 1, call.seed, call.sampling)


def generate_with(generator: Any, calls: Sequence[GenerateCall]) -> list[tuple[list[SpecClass], list[Any]] | Exception]:
    """Several calls on one ``Generator`` as one batch; each answer is (classes, [(class, Circuit or reason)]),
    or the ``BadRequest`` of that call alone (the others still run)."""
    plans: list[tuple[list[SpecClass], tuple[Any, ...]] | Exception] = []
    for call in calls:
        try:
            plans.append(plan_generation(generator, call))
        except CktLoopError as exc:
            plans.append(BadRequest(str(exc)))
    runnable = [p for p in plans if not isinstance(p, Exception)]
    decoded = iter(generator.generate_many([args for _, args in runnable]) if runnable else [])
    answers: list[tuple[list[SpecClass], list[Any]] | Exception] = []
    for plan in plans:
        if isinstance(plan, Exception):
            answers.append(plan)
            continue
        chosen, (specs, *_rest) = plan
        out = next(decoded)
        answers.append((chosen, [(s, c if isinstance(c, Circuit) else str(c)) for s, c in zip(specs, out)]))
    return answers


def prediction_rows(surrogate: Any, circuits: Sequence[Circuit]) -> list[dict[str, Any]]:
    """``Surrogate.predict`` rows without the embedding (answers stay small JSON)."""
    rows = surrogate.predict(list(circuits)) if circuits else []
    return [{k: v for k, v in row.items() if k != "embedding"} for row in rows]


def generate_answers(generator: Any, surrogate: Any, calls: Sequence[GenerateCall]) -> list[bytes | Exception]:
    """Several /v1/generate calls answered in one go: one ``generate_with`` batch, one surrogate call for all their
    valid circuits, each answer the ``GenerateAnswer`` JSON that call alone would get (or its ``BadRequest``).
    Answered as JSON bytes where the models run, so the answer crosses a process boundary as one string and the
    HTTP side sends it as it is (no circuit decoded, validated and encoded again on the way)."""
    drawn = generate_with(generator, calls)
    valid = [[] if isinstance(a, Exception) else [(s, c) for s, c in a[1] if isinstance(c, Circuit)] for a in drawn]
    rows = iter(prediction_rows(surrogate, [c for v in valid for _, c in v]))
    answers: list[bytes | Exception] = []
    for a, v in zip(drawn, valid):
        if isinstance(a, Exception):
            answers.append(a)
            continue
        answer = GenerateAnswer(
            model_version=generator.version,
            surrogate_version=surrogate.version,
            circuits=[
                GeneratedCircuit(circuit=c, spec_class=list(cls), predicted=Predicted.from_row(next(rows)))
                for cls, c in v
            ],
            invalid=len(a[1]) - len(v),
        )
        answers.append(answer.model_dump_json().encode())
    return answers


def model_info(model: Any, checkpoint: Any) -> dict[str, Any]:
    """Version, checkpoint and spec classes of a loaded ``Generator`` or ``Surrogate``."""
    classes = getattr(model, "spec_classes", None) or model.classes
    return {
        "version": model.version,
        "checkpoint": str(checkpoint),
        "spec_classes": classes.to_dict(),
        "train_classes": [list(c) for c in model.train_classes] or None,
    }


class Models(Protocol):
    """The calls ``Services`` needs; each answer names the model version that produced it."""

    async def generate(self, call: GenerateCall) -> bytes: ...  # the GenerateAnswer JSON (``generate_answers``)
    async def predict(self, circuits: Sequence[Circuit]) -> tuple[str, list[dict[str, Any]]]: ...
    async def simulate(self, circuits: Sequence[Circuit]) -> tuple[str, list[Performance]]: ...
    async def info(self) -> dict[str, dict[str, Any]]: ...


class LocalModels:
    """The plain classes in this process; model calls run in worker threads, one at a time per model."""

    def __init__(self, generator: Any, surrogate: Any, backend: Any, surrogate_checkpoint: Any = None) -> None:
        self.generator, self.surrogate, self.backend = generator, surrogate, backend
        self.surrogate_checkpoint = surrogate_checkpoint or ""
        self._locks = {name: threading.Lock() for name in ("generator", "surrogate", "backend")}

    def _locked(self, name: str, fn: Any, *args: Any) -> Any:
        with self._locks[name]:
            return fn(*args)

    async def generate(self, call: GenerateCall) -> bytes:
        generator, surrogate = self.generator, self.surrogate  # one pair for the whole call, even if swapped meanwhile
        (answer,) = await asyncio.to_thread(self._generate, generator, surrogate, call)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def _generate(self, generator: Any, surrogate: Any, call: GenerateCall) -> list[bytes | Exception]:
        with self._locks["generator"], self._locks["surrogate"]:
            return generate_answers(generator, surrogate, [call])

    async def predict(self, circuits: Sequence[Circuit]) -> tuple[str, list[dict[str, Any]]]:
        surrogate = self.surrogate
        return surrogate.version, await asyncio.to_thread(
            self._locked, "surrogate", prediction_rows, surrogate, circuits
        )

    async def simulate(self, circuits: Sequence[Circuit]) -> tuple[str, list[Performance]]:
        results = await asyncio.to_thread(self._locked, "backend", self.backend.simulate, list(circuits))
        return f"{self.backend.name} {self.backend.version}", results

    async def info(self) -> dict[str, dict[str, Any]]:
        return {
            "generator": model_info(self.generator, self.generator.checkpoint),
            "surrogate": model_info(self.surrogate, self.surrogate_checkpoint),
        }


class Services:
    """The API's logic over ``models``; ``jobs`` is the design-job manager (None: no design jobs)."""

    def __init__(self, models: Models, config: ServeConfig, jobs: Any = None) -> None:
        self.models, self.config, self.jobs = models, config, jobs

    def _check_count(self, field: str, count: int, cap: int, cap_name: str) -> None:
        if count > cap:
            raise BadRequest(f"{field}: {count} is over the service's cap of {cap} (caps.{cap_name})")

    async def generate(self, req: GenerateRequest) -> bytes:
        """The ``GenerateAnswer`` JSON: circuits drawn and ranked where the models are, in one call."""
        self._check_count("n", req.n, self.config.caps.max_n, "max_n")
        return await self.models.generate(GenerateCall.of(req))

    async def predict(self, circuits: Sequence[Circuit]) -> PredictAnswer:
        self._check_count("circuits", len(circuits), self.config.caps.max_circuits, "max_circuits")
        version, rows = await self.models.predict(circuits)
        return PredictAnswer(model_version=version, predicted=[Predicted.from_row(r) for r in rows])

    async def simulate(self, circuits: Sequence[Circuit]) -> SimulateAnswer:
        self._check_count("circuits", len(circuits), self.config.caps.max_circuits, "max_circuits")
        simulator, results = await self.models.simulate(circuits)
        return SimulateAnswer(simulator=simulator, measured=[Measured.from_performance(p) for p in results])

    async def model_list(self) -> ModelsAnswer:
        info = await self.models.info()
        return ModelsAnswer(generator=ModelInfo(**info["generator"]), surrogate=ModelInfo(**info["surrogate"]))

    async def health(self) -> Health:
        info = await self.models.info()
        return Health(status="ok", generator=info["generator"]["version"], surrogate=info["surrogate"]["version"])


def jobs_for(config: ServeConfig, services: Services) -> Any:
    """The design jobs of this service: ``orchestrator.serve.jobs.from_config(config, services)`` (issue 17,
    design jobs), or None while that module does not exist."""
    if importlib.util.find_spec("orchestrator.serve.jobs") is None:
        return None
    from orchestrator.serve import jobs

    factory = getattr(jobs, "from_config", None)
    return factory(config, services) if factory is not None else None

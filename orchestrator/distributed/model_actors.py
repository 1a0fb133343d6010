"""Ray actors that host the generator and the surrogate: one model copy per actor, batched calls.

The hosts are plain classes around ``generator.predict.Generator`` and ``surrogate.predict.Surrogate``
(tests and one-process searches call them directly). On Ray, ``GeneratorActor`` and ``SurrogateActor``
serve many callers at once: they are async actors whose ``Batcher`` gathers the calls that arrive
while the model is busy, or within ``batch_window_s`` of the first, into one model call, so bandit
workers do not queue behind each other's calls and the model runs on larger batches. Every caller
gets exactly what its call alone returns. Resources (CPUs, GPUs) come from configuration, and a host
puts its model on the GPU when Ray gave it one. Every host reports the model version it serves, so
results stored by a campaign can name the model that proposed them.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from circuits import Circuit
from circuits.specs import SpecClass
from generator.sampling import SamplingLike


@dataclass(frozen=True)
class ActorResources:
    """What Ray reserves for one model actor."""

    num_cpus: float = 1.0
    num_gpus: float = 0.0

    def __post_init__(self) -> None:
        if self.num_cpus < 0 or self.num_gpus < 0:
            raise ValueError(f"actor resources must be >= 0, got {self}")


Request = TypeVar("Request")
Answer = TypeVar("Answer")

BATCH_WINDOW_S = 0.002  # how long a batch waits for more calls after its first


class Batcher(Generic[Request, Answer]):
    """Merges concurrent calls into one call of ``run`` (a list of requests -> one answer per request).

    A batch is every request that arrived while the previous batch ran, or within ``window_s`` of its
    first, at most ``max_requests``. The model runs in one worker thread, so the event loop keeps
    taking requests meanwhile. When a batch raises, its requests are run one at a time, so only the
    culprit's caller sees the error. ``batches`` counts calls of ``run``.
    """

    def __init__(
        self, run: Callable[[list[Request]], list[Answer]], window_s: float = BATCH_WINDOW_S, max_requests: int = 64
    ) -> None:
        if window_s < 0 or max_requests < 1:
            raise ValueError(f"a batch window must be >= 0 s and a batch >= 1 request, got {window_s}, {max_requests}")
        self.run, self.window_s, self.max_requests = run, window_s, max_requests
        self.batches = 0
        self._pending: list[tuple[Request, asyncio.Future[Answer]]] = []
        self._drain: asyncio.Task[None] | None = None
        self._thread = ThreadPoolExecutor(max_workers=1)

    async def submit(self, request: Request) -> Answer:
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._pending.append((request, future))
        if self._drain is None or self._drain.done():
            self._drain = asyncio.create_task(self._run_pending())
        return await future

    async def _run_pending(self) -> None:
        while self._pending:
            await asyncio.sleep(self.window_s)
            batch, self._pending = self._pending[: self.max_requests], self._pending[self.max_requests :]
            try:
                answers = await self._call([request for request, _ in batch])
            except Exception:
                for request, future in batch:
                    try:
                        future.set_result((await self._call([request]))[0])
                    except Exception as exc:
                        future.set_exception(exc)
            else:
                for (_, future), answer in zip(batch, answers, strict=True):
                    future.set_result(answer)

    async def _call(self, requests: list[Request]) -> list[Answer]:
        self.batches += 1
        return await asyncio.get_running_loop().run_in_executor(self._thread, self.run, requests)


def _device(resources_gpus: float) -> Any:
    """The shared device choice: a GPU where Ray gave the actor one (and torch sees it), else the CPU."""
    from surrogate.training.device import choose_device

    return choose_device("auto" if resources_gpus > 0 else "cpu")


def _one_thread_per_cpu() -> None:
    """Torch in an actor uses the CPUs Ray gave it (at least one), not every core of the node."""
    import ray
    import torch

    in_actor = ray.is_initialized() and ray.get_runtime_context().get_actor_id() is not None
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 0.0) if in_actor else 0.0
    torch.set_num_threads(max(1, int(cpus)))


class GeneratorHost:
    """One CktGen model; results travel as circuits or the reason a generated graph is invalid."""

    def __init__(self, checkpoint: str | Path, num_gpus: float = 0.0) -> None:
        from generator.predict import Generator

        _one_thread_per_cpu()
        self.model = Generator.load(checkpoint, device=_device(num_gpus))

    def version(self) -> str:
        return self.model.version

    def spec_classes(self) -> dict[str, Any]:
        """The class preset the generator is conditioned on (as a dict: it travels between processes)."""
        return self.model.spec_classes.to_dict()

    def train_classes(self) -> list[tuple[int, ...]]:
        """The joint classes the generator saw in training: a campaign's arms are drawn from these."""
        return self.model.train_classes

    def generate(
        self, specs: Sequence[SpecClass], n_per_spec: int = 1, seed: int | None = None, sampling: SamplingLike = "spec"
    ) -> list[Circuit | str]:
        return self.generate_many([(specs, n_per_spec, seed, sampling)])[0]

    def generate_many(self, calls: list[tuple[Any, ...]]) -> list[list[Circuit | str]]:
        """Several ``generate`` calls (their arguments) decoded as one batch."""
        return [[r if isinstance(r, Circuit) else str(r) for r in out] for out in self.model.generate_many(calls)]


class SurrogateHost:
    """One GIN surrogate: predicted spec class, FoM and specs for batches of circuits."""

    def __init__(self, checkpoint: str | Path, num_gpus: float = 0.0) -> None:
        from surrogate.predict import Surrogate

        _one_thread_per_cpu()
        self.model = Surrogate.load(checkpoint, device=_device(num_gpus))

    def version(self) -> str:
        return self.model.version

    def predict(self, circuits: Sequence[Circuit]) -> list[dict[str, Any]]:
        return self.model.predict(circuits)

    def predict_many(self, calls: list[Sequence[Circuit]]) -> list[list[dict[str, Any]]]:
        """Several ``predict`` calls run as one batch (each circuit is predicted on its own)."""
        rows = self.model.predict([c for circuits in calls for c in circuits])
        starts = list(itertools.accumulate((len(circuits) for circuits in calls), initial=0))
        return [rows[a:b] for a, b in itertools.pairwise(starts)]


class _BatchingActor:
    """What both model actors share: the host, the batcher of its one busy method, the version served."""

    def __init__(self, host: GeneratorHost | SurrogateHost, run: Callable[[list[Any]], list[Any]], window_s: float):
        self.host = host
        self.batcher: Batcher[Any, Any] = Batcher(run, window_s)

    def version(self) -> str:
        return self.host.version()

    def node(self) -> str | None:
        """The Ray node this actor runs on."""
        from orchestrator.distributed.placement import node_id

        return node_id()

    def model_calls(self) -> int:
        """How many batches the model has run (each one model call)."""
        return self.batcher.batches

    async def _submit_all(self, requests: list[Any]) -> list[Any]:
        """Several requests sent as one Ray call (a caller's ``Coalescer``), batched with every other
        request as if each came alone; an error travels as that request's answer."""
        return list(await asyncio.gather(*(self.batcher.submit(r) for r in requests), return_exceptions=True))


class GeneratorActor(_BatchingActor):
    """``GeneratorHost`` for many concurrent callers on Ray: ``generate`` calls are batched."""

    def __init__(self, checkpoint: str | Path, num_gpus: float = 0.0, batch_window_s: float = BATCH_WINDOW_S) -> None:
        self.generator = GeneratorHost(checkpoint, num_gpus)
        super().__init__(self.generator, self.generator.generate_many, batch_window_s)

    def spec_classes(self) -> dict[str, Any]:
        return self.generator.spec_classes()

    def train_classes(self) -> list[tuple[int, ...]]:
        return self.generator.train_classes()

    async def generate(
        self, specs: Sequence[SpecClass], n_per_spec: int = 1, seed: int | None = None, sampling: SamplingLike = "spec"
    ) -> list[Circuit | str]:
        return await self.batcher.submit((specs, n_per_spec, seed, sampling))

    async def generate_calls(self, calls: list[tuple[Any, ...]]) -> list[list[Circuit | str] | BaseException]:
        """Several ``generate`` calls (their arguments) in one Ray call: each answer, or its error."""
        return await self._submit_all(calls)


class SurrogateActor(_BatchingActor):
    """``SurrogateHost`` for many concurrent callers on Ray: ``predict`` calls are batched."""

    def __init__(self, checkpoint: str | Path, num_gpus: float = 0.0, batch_window_s: float = BATCH_WINDOW_S) -> None:
        host = SurrogateHost(checkpoint, num_gpus)
        super().__init__(host, host.predict_many, batch_window_s)

    async def predict(self, circuits: Sequence[Circuit]) -> list[dict[str, Any]]:
        return await self.batcher.submit(circuits)

    async def predict_calls(self, calls: list[tuple[Sequence[Circuit]]]) -> list[list[dict[str, Any]] | BaseException]:
        """Several ``predict`` calls (their arguments) in one Ray call, without the embeddings (a caller
        ranking circuits has no use for them): each answer, or its error."""
        answers = await self._submit_all([circuits for (circuits,) in calls])
        return [a if isinstance(a, BaseException) else [_without_embedding(r) for r in a] for a in answers]


def _without_embedding(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "embedding"}


def start_actor(
    actor: type,
    checkpoint: str | Path,
    resources: ActorResources = ActorResources(),
    batch_window_s: float = BATCH_WINDOW_S,
    node: str | None = None,
) -> Any:
    """Start a Ray actor ``actor`` (``GeneratorActor`` or ``SurrogateActor``) serving ``checkpoint``, on
    ``node`` (one offering ``model``: see ``placement``) or where Ray puts it."""
    import ray

    from orchestrator.distributed.placement import model_options

    options = model_options(node)
    actor_cls: Any = ray.remote(num_cpus=resources.num_cpus, num_gpus=resources.num_gpus, **options)(actor)
    return actor_cls.remote(str(checkpoint), resources.num_gpus, batch_window_s)

"""Ray actors that host the generator and the surrogate: one model copy per actor, batched calls.

The hosts are plain classes around ``generator.predict.Generator`` and ``surrogate.predict.Surrogate``;
Ray only wraps them here. Resources (CPUs, GPUs) come from configuration, and a host puts its model
on the GPU when Ray gave it one. Every host reports the model version it serves, so results stored
by a campaign can name the model that proposed them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from circuits import Circuit
from circuits.specs import SpecClass


@dataclass(frozen=True)
class ActorResources:
    """What Ray reserves for one model actor."""

    num_cpus: float = 1.0
    num_gpus: float = 0.0

    def __post_init__(self) -> None:
        if self.num_cpus < 0 or self.num_gpus < 0:
            raise ValueError(f"actor resources must be >= 0, got {self}")


def _device(resources_gpus: float) -> str:
    import torch

    return "cuda" if resources_gpus > 0 and torch.cuda.is_available() else "cpu"


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
        self, specs: Sequence[SpecClass], n_per_spec: int = 1, seed: int | None = None, sampling: str = "spec"
    ) -> list[Circuit | str]:
        out = self.model.generate(specs, n_per_spec, seed, sampling)
        return [r if isinstance(r, Circuit) else str(r) for r in out]


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


def start_actor(host: type, checkpoint: str | Path, resources: ActorResources = ActorResources()) -> Any:
    """Start a Ray actor hosting ``host`` (``GeneratorHost`` or ``SurrogateHost``) on ``checkpoint``."""
    import ray

    actor_cls = ray.remote(num_cpus=resources.num_cpus, num_gpus=resources.num_gpus)(host)
    return actor_cls.remote(str(checkpoint), resources.num_gpus)

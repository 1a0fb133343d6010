"""Where CktLoop's Ray actors run on a cluster, decided here and nowhere else.

- **Bandit workers** (a campaign's) go to the nodes offering ``sim`` in turn, in proportion to their
  ``sim`` (``sim_nodes``), each pinned to its node; their simulation workers go with them, so a search
  and its ngspice share a node and the campaign's simulations spread as its workers do. They reserve no
  CPU: their searches mostly wait on the models and the simulators.
- **Simulation workers** of a pool not tied to a node (a dataset build's) spread over the nodes (Ray's
  SPREAD strategy, balanced by the raylet of the process that starts them). Where the cluster offers
  the ``sim`` resource (``scripts/local_cluster.sh`` and ``ray_cluster.yaml`` give every node ``sim`` =
  its CPUs), each asks for as much ``sim`` as CPUs, so a node without ``sim`` (a GPU node kept for the
  models, say) hosts none.
- **Model actors** (generator, surrogate): one pair on each node offering ``model`` (preferring it, and
  asking for a share of ``model``, so Ray may restart a lost one on another ``model`` node), or, when no
  node offers it, one pair where Ray puts it (one machine). Ray restarts a lost model actor and retries
  the calls it held (``MODEL_RESTARTS``): the models' answers depend only on the call's arguments, so a
  retried call answers what the first would have.

On one machine (a local Ray without these resources) the options change nothing that matters.
"""

from __future__ import annotations

import math
from typing import Any

SIM_RESOURCE = "sim"
MODEL_RESOURCE = "model"
MODEL_SHARE = 0.01  # of a node's ``model`` resource, per model actor: any number of them fit on the node
MODEL_RESTARTS = 3  # restarts of a lost model actor, and retries of each call it held


def offered(resource: str) -> bool:
    """Whether some node of the cluster offers ``resource``."""
    import ray

    return bool(ray.cluster_resources().get(resource, 0) > 0)


def _strategy(node: str | None, soft: bool = False) -> Any:
    """Ray's SPREAD, or ``node``: for good (``soft`` False: the actor waits for room there, and fails when
    the node is gone), or as a preference. Ray 2.60 kept only 1 of 4 softly pinned actors of no CPU on
    their node on ``local_cluster.sh``'s cluster, so what must stay on a node is pinned for good."""
    if node is None:
        return "SPREAD"
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return NodeAffinitySchedulingStrategy(node, soft=soft)


def simulation_options(cpus: float, node: str | None = None) -> dict[str, Any]:
    """``ray.remote`` options of a simulation worker reserving ``cpus`` CPUs, spread or on ``node``."""
    options: dict[str, Any] = {"num_cpus": cpus, "scheduling_strategy": _strategy(node)}
    if cpus > 0 and offered(SIM_RESOURCE):
        options["resources"] = {SIM_RESOURCE: cpus}
    return options


def bandit_options(searches: int, node: str | None = None) -> dict[str, Any]:
    """``ray.remote`` options of a bandit worker running ``searches`` searches at once, on ``node`` (its
    simulation workers then go there too) or spread."""
    return {"num_cpus": 0, "max_concurrency": searches, "scheduling_strategy": _strategy(node)}


def _alive_offering(resource: str) -> dict[str, float]:
    import ray

    return {
        n["NodeID"]: n["Resources"][resource] for n in ray.nodes() if n["Alive"] and n["Resources"].get(resource, 0) > 0
    }


def sim_nodes() -> list[str]:
    """The homes of the bandit workers, taken in turn: each alive node offering ``sim`` (every alive node
    when none does) as many times as it has ``sim`` (CPUs), interleaved, so that workers fill the nodes in
    proportion: two nodes of 2 and 1 give [a, b, a]."""
    offer = _alive_offering(SIM_RESOURCE) or _alive_offering("CPU")
    counts = {node: max(1, math.ceil(amount)) for node, amount in sorted(offer.items())}
    return [node for turn in range(max(counts.values(), default=0)) for node, n in counts.items() if n > turn]


def model_nodes() -> list[str]:
    """The alive nodes offering ``model``, by node id; empty when none does."""
    return sorted(_alive_offering(MODEL_RESOURCE))


def model_options(node: str | None) -> dict[str, Any]:
    """``ray.remote`` options of a model actor on ``node`` (one of ``model_nodes``), or anywhere (None)."""
    options: dict[str, Any] = {"max_restarts": MODEL_RESTARTS, "max_task_retries": MODEL_RESTARTS}
    if node is not None:
        options["resources"] = {MODEL_RESOURCE: MODEL_SHARE}
        options["scheduling_strategy"] = _strategy(node, soft=True)  # the resource keeps it on `model` nodes
    return options


def node_lost(exc: BaseException) -> bool:
    """Whether an actor's failure looks like the loss of its node, or of the connection to it, rather than
    a crash of its own: Ray's ``ActorUnavailableError`` (the call "may or may not have been executed"), or
    an actor death whose cause is its node's death (Ray says so only in the message)."""
    import ray

    return isinstance(exc, ray.exceptions.ActorUnavailableError) or "its node has died" in str(exc)


def node_id() -> str | None:
    """The Ray node this process runs on, or None outside Ray."""
    import ray

    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None

"""Placement options on one machine (the suite's local Ray offers neither `sim` nor `model`), and telling a
lost node from an actor's own crash. The cluster itself: test_cluster_campaigns.py."""

from __future__ import annotations

import pytest
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from orchestrator.distributed import placement

pytestmark = pytest.mark.ray


def test_on_one_machine_workers_ask_for_cpus_only(ray_session) -> None:  # type: ignore[no-untyped-def]
    node = placement.node_id()
    cpus = int(ray_session.cluster_resources()["CPU"])
    assert node is not None and placement.sim_nodes() == [node] * cpus and placement.model_nodes() == []
    assert placement.simulation_options(0.5) == {"num_cpus": 0.5, "scheduling_strategy": "SPREAD"}
    pinned = placement.simulation_options(0.5, node)["scheduling_strategy"]
    assert isinstance(pinned, NodeAffinitySchedulingStrategy) and pinned.node_id == node and not pinned.soft
    assert placement.bandit_options(4)["max_concurrency"] == 4
    anywhere = placement.model_options(None)
    assert "resources" not in anywhere and anywhere["max_restarts"] == anywhere["max_task_retries"] > 0
    on_node = placement.model_options(node)
    assert on_node["resources"] == {"model": placement.MODEL_SHARE}


def test_a_lost_node_is_told_from_a_crash() -> None:
    assert placement.node_lost(ActorUnavailableError("RpcError: Socket closed", None))
    died = "The actor died unexpectedly before finishing this task.\nThe actor died because its node has died."
    assert placement.node_lost(RayActorError(error_msg=died))
    assert not placement.node_lost(ActorDiedError())  # its process died (a crash): the circuits' fault
    assert not placement.node_lost(RayActorError(error_msg="The actor died: exit code 17"))

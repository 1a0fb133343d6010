"""ray_cluster.yaml: accepted by Ray's own cluster-config checks, and starting the nodes as
scripts/local_cluster.sh (the cluster the tests run on) does."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NPROC = "$(nproc)"


def _config() -> dict:
    return yaml.safe_load((ROOT / "ray_cluster.yaml").read_text())


def _ray_start_flags(command: str, shell: bool = True) -> dict[str, str]:
    """The ``--flag=value`` arguments of the ``ray start`` in a command line (shell syntax, or the
    arguments themselves separated by spaces)."""
    rest = command.split("ray start", 1)[1]
    words = shlex.split(rest) if shell else rest.split()
    return {name: value for name, _, value in (w.partition("=") for w in words)}


def _script_flags() -> list[dict[str, str]]:
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "local_cluster.sh"), "commands", "--workers", "1"],
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    return [_ray_start_flags(line, shell=False) for line in done.stdout.splitlines()]


def test_rays_cluster_launcher_accepts_the_file() -> None:
    from ray.autoscaler._private.commands import _bootstrap_config
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = _config()
    validate_config(prepare_config(config))  # the JSON schema Ray ships, on the config `ray up` builds
    resolved = _bootstrap_config(config, no_config_cache=True)  # what `ray up` does before any SSH
    assert resolved["provider"]["type"] == "local"
    assert resolved["provider"]["worker_ips"] == config["provider"]["worker_ips"]
    node_type = resolved["available_node_types"][resolved["head_node_type"]]
    assert node_type["min_workers"] == node_type["max_workers"] == len(config["provider"]["worker_ips"])


def test_a_broken_file_is_refused_by_the_same_check() -> None:
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = _config()
    config["idle_timeout_minutes"] = "ten"
    with pytest.raises(Exception, match="ten"):
        validate_config(prepare_config(config))


def test_start_commands_match_the_local_cluster_script() -> None:
    config = _config()
    head = _ray_start_flags(config["head_start_ray_commands"][-1])
    worker = _ray_start_flags(config["worker_start_ray_commands"][-1])
    script_head, script_worker = _script_flags()
    assert head.pop("--autoscaling-config") == "~/ray_bootstrap_config.yaml"  # `ray up` writes it
    # Resources: `sim` is the machine's CPU count there, 1 on the script's 1-CPU nodes.
    assert json.loads(head.pop("--resources").replace(NPROC, "1")) == json.loads(script_head.pop("--resources"))
    assert json.loads(worker.pop("--resources").replace(NPROC, "1")) == json.loads(script_worker.pop("--resources"))
    assert head == script_head  # the same ports and role
    # A worker joins the head's GCS port and, on a machine of its own, uses the head's ports.
    assert worker.pop("--address") == "$RAY_HEAD_IP:" + script_worker.pop("--address").split(":")[1]
    assert set(worker) == set(script_worker)
    assert all(worker[flag] == head[flag] for flag in worker)

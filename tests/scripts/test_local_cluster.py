"""scripts/local_cluster.sh: a head and worker nodes as separate `ray start` processes on one machine."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import free_base

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "local_cluster.sh"

# Joins the cluster, waits until `alive` nodes are alive, prints each alive node's resources as JSON.
_NODES = """
import json, sys, time, ray
ray.init(address=sys.argv[1], log_to_driver=False, logging_level="ERROR")
deadline = time.monotonic() + 120
while True:
    alive = [n for n in ray.nodes() if n["Alive"]]
    if len(alive) == int(sys.argv[2]) or time.monotonic() > deadline:
        break
    time.sleep(1)
print(json.dumps([n["Resources"] for n in alive]))
"""


def _run(state: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CKTLOOP_CLUSTER_DIR": str(state), "RAY_AUTH_MODE": "disabled"}
    return subprocess.run(
        ["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def _sessions_of(pid_file: Path) -> list[int]:
    """The live processes of one node: its session, whose id the script recorded."""
    sid = int(pid_file.read_text())
    out = subprocess.run(["ps", "-eo", "pid=,sid=,stat="], capture_output=True, text=True, check=True).stdout
    rows = [line.split() for line in out.splitlines()]
    return [int(pid) for pid, s, stat in rows if int(s) == sid and not stat.startswith("Z")]


def _alive_nodes(address: str, expected: int) -> list[dict[str, float]]:
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    done = subprocess.run(
        [sys.executable, "-c", _NODES, address, str(expected)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    )
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.fixture
def state() -> Iterator[Path]:
    # Short and outside pytest's tmp_path: Ray's socket paths under --temp-dir must fit in 107 bytes.
    path = Path(tempfile.mkdtemp(prefix="lc", dir="/tmp"))
    yield path
    _run(path, "down")  # a failed test leaves no nodes behind
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["up", "--workers", "two"], "--workers must be an integer"),
        (["up", "--port", "6379"], "--port must be an integer in 1024..60000 other than 6379"),
        (["up", "--cpus", "0"], "--cpus must be an integer >= 1"),
        (["up", "--nodes", "2"], "unknown option --nodes"),
        (["kill-worker", "0"], "kill-worker takes a worker index >= 1"),
        (["kill-worker", "3"], "no worker node 3"),
        (["restart"], "usage: local_cluster.sh up"),
        (["up", "--workers", "2", "--model-node", "3"], "--model-node must be a node index in 0..2 (0: the head)"),
    ],
)
def test_bad_input_is_one_line(state: Path, args: list[str], message: str) -> None:
    done = _run(state, *args, timeout=30)
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_model_node_moves_the_model_resource_to_that_node(state: Path) -> None:
    lines = _run(state, "commands", "--workers", "2", "--model-node", "2", timeout=30).stdout.splitlines()
    assert ['"model":1' in line for line in lines] == [False, False, True]
    head, *_ = _run(state, "commands", "--workers", "2", timeout=30).stdout.splitlines()
    assert '--resources={"sim":1,"model":1}' in head  # the head, by default


def test_down_and_status_without_a_cluster(state: Path) -> None:
    assert _run(state, "status", timeout=30).stdout.startswith("no cluster")
    assert _run(state, "down", timeout=30).returncode == 0


@pytest.mark.slow
@pytest.mark.ray
def test_up_kill_worker_down_leaves_other_ray_alone(state: Path, ray_session) -> None:  # type: ignore[no-untyped-def]
    ray = ray_session  # this test's own local Ray, started before the cluster and checked after `down`

    @ray.remote(num_cpus=0)
    def ping() -> int:
        return os.getpid()

    local_worker = ray.get(ping.remote(), timeout=120)
    base = free_base(workers=2)
    up = _run(state, "up", "--workers", "2", "--port", str(base))
    assert up.returncode == 0, up.stderr
    address = up.stdout.strip().splitlines()[-1]
    assert address == f"127.0.0.1:{base}"

    nodes = _alive_nodes(address, 3)
    assert len(nodes) == 3
    assert all(n["sim"] == 1 and n["CPU"] == 1 for n in nodes)
    assert sorted(n.get("model", 0) for n in nodes) == [0, 0, 1]
    assert "3 nodes up" in up.stdout and "alive in the GCS: 3" in _run(state, "status", timeout=60).stdout

    killed = _run(state, "kill-worker", "1", timeout=60)
    assert killed.returncode == 0, killed.stderr
    assert _sessions_of(state / "n1" / "pid") == []  # every process of worker node 1 is gone at once
    assert _sessions_of(state / "n0" / "pid") and _sessions_of(state / "n2" / "pid")
    nodes = _alive_nodes(address, 2)
    assert len(nodes) == 2 and sorted(n.get("model", 0) for n in nodes) == [0, 1]  # the head survives
    assert "node 1: stopped" in _run(state, "status", timeout=60).stdout

    down = _run(state, "down", timeout=120)
    assert down.returncode == 0, down.stderr
    assert [pid for p in state.glob("n*/pid") for pid in _sessions_of(p)] == []
    assert [p for p in state.rglob("*") if p.is_socket()] == []  # `ray up` reads every file of the checkout
    assert ray.get(ping.remote(), timeout=120) > 0 and local_worker > 0  # the test's own Ray still serves

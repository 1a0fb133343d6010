"""Serve's direct ingress under ``cktloop serve``: where it is turned on (a Ray of its own, one ingress replica),
the Serve config that moves Serve's proxy off the service's port, and (``slow``) a real ``cktloop serve`` whose
port is held by the ingress replica itself, answering /v1/generate, stopping on SIGTERM without a drain wait."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from orchestrator.serve import deployments
from orchestrator.serve.config import ModelDeployment, ServeConfig
from orchestrator.serve.deployments import SERVE_ENV, app_config, direct_ingress_env, environment_for

NAMES = [*direct_ingress_env(1), *SERVE_ENV, "RAY_ADDRESS", "CKTLOOP_DB"]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No Serve setting in the environment (each restored afterwards), no Ray connected."""
    import ray

    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    return monkeypatch


def test_direct_ingress_on_for_a_local_ray_of_one_ingress_replica(clean_env: pytest.MonkeyPatch) -> None:
    assert environment_for(ServeConfig(port=8123)) is True
    assert os.environ["RAY_SERVE_ENABLE_DIRECT_INGRESS"] == "1"
    assert (
        os.environ["RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT"],
        os.environ["RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT"],
    ) == (
        "8123",
        "8124",
    )
    assert os.environ["RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S"] == "0"


@pytest.mark.parametrize(
    "config, env",
    [
        (ServeConfig(address="127.0.0.1:6379"), {}),  # a joined cluster keeps its own settings
        (ServeConfig(), {"RAY_ADDRESS": "127.0.0.1:6379"}),  # so does one Ray finds through RAY_ADDRESS
        (ServeConfig(generator=ModelDeployment(replicas=2)), {}),  # two ingress replicas cannot share the one port
        (ServeConfig(generator=ModelDeployment(max_replicas=3)), {}),
        (ServeConfig(), {"RAY_SERVE_ENABLE_DIRECT_INGRESS": "0"}),  # turned off by hand
    ],
)
def test_direct_ingress_off(clean_env: pytest.MonkeyPatch, config: ServeConfig, env: dict[str, str]) -> None:
    for name, value in env.items():
        clean_env.setenv(name, value)
    assert environment_for(config) is False
    assert "RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT" not in os.environ
    assert os.environ.get("RAY_SERVE_ENABLE_DIRECT_INGRESS") == env.get("RAY_SERVE_ENABLE_DIRECT_INGRESS")


def test_direct_ingress_off_where_ray_runs_already(clean_env: pytest.MonkeyPatch) -> None:
    import ray

    clean_env.setattr(ray, "is_initialized", lambda: True)  # its processes have their environment already
    assert environment_for(ServeConfig()) is False


def test_serve_proxy_leaves_the_port_to_the_replica() -> None:
    config = ServeConfig(port=8123)
    assert app_config(config)["http_options"]["port"] == 8123
    assert app_config(config, proxy_port=40111)["http_options"]["port"] == 40111
    port = deployments._free_port("127.0.0.1")
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # free indeed


def _holder(port: int) -> str:
    """The command line of the process listening on TCP ``port`` (Linux's /proc: the socket's inode, then the
    process holding it)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "0A":  # 0A: LISTEN
            inodes.add(f"socket:[{fields[9]}]")
    for fd in Path("/proc").glob("[0-9]*/fd/*"):
        try:
            if os.readlink(fd) in inodes:
                return (fd.parent.parent / "cmdline").read_text().replace("\0", " ")
        except OSError:  # a process or descriptor gone meanwhile, or not ours to read
            continue
    return ""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's /proc")
def test_cktloop_serve_port_is_the_ingress_replica(tmp_path: Any) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    for name in NAMES:
        env.pop(name, None)
    cmd = [sys.executable, "-m", "orchestrator.cli", "serve", "--port", str(port), "--db", f"sqlite:///{tmp_path}/s.db"]
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, "cktloop serve did not answer /healthz in 300 s"
                time.sleep(1)
        assert "ServeReplica:cktloop:Ingress" in _holder(port)  # no proxy process between client and replica
        body = json.dumps({"target": {"gain_db": {"min": 60}}, "n": 3, "seed": 1}).encode()
        request = urllib.request.Request(url + "/v1/generate", body, {"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as res:
            answer = json.loads(res.read())
        assert len(answer["circuits"]) + answer["invalid"] == 3 and answer["model_version"]
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0
        assert time.monotonic() - start < 60  # no 30 s drain for a load balancer that is not there
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

"""Joining Ray: an address nothing answers at is refused before Ray is touched; Ray's join knobs are scoped."""

from __future__ import annotations

import os
import socket

import pytest

from circuits import CktLoopError
from orchestrator.distributed import runtime


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("scheme", ["", "ray://"])
def test_an_address_nothing_listens_at_is_one_error_naming_it(scheme):
    address = f"{scheme}127.0.0.1:{free_port()}"
    with pytest.raises(CktLoopError) as caught:
        runtime.probe(address)
    message = str(caught.value)
    assert address in message and "refused" in message.lower() and "\n" not in message


def test_an_address_that_answers_passes_the_probe():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        runtime.probe(f"127.0.0.1:{server.getsockname()[1]}")
        runtime.probe(f"ray://127.0.0.1:{server.getsockname()[1]}")


def test_ensure_ray_refuses_an_unreachable_cluster_before_starting_anything():
    address = f"127.0.0.1:{free_port()}"
    with pytest.raises(CktLoopError, match=address):
        runtime.ensure_ray(address)


def test_one_join_attempt_while_joining_and_the_users_choice_kept(monkeypatch):
    monkeypatch.delenv(runtime.JOIN_ATTEMPTS_ENV, raising=False)
    with runtime._one_join_attempt(joining=True):
        assert os.environ[runtime.JOIN_ATTEMPTS_ENV] == "1"
    assert runtime.JOIN_ATTEMPTS_ENV not in os.environ
    with runtime._one_join_attempt(joining=False):
        assert runtime.JOIN_ATTEMPTS_ENV not in os.environ  # a local start waits for its GCS as Ray decides
    monkeypatch.setenv(runtime.JOIN_ATTEMPTS_ENV, "7")
    with runtime._one_join_attempt(joining=True):
        assert os.environ[runtime.JOIN_ATTEMPTS_ENV] == "7"
    assert os.environ[runtime.JOIN_ATTEMPTS_ENV] == "7"


@pytest.mark.parametrize("error", [Exception, RuntimeError, ConnectionError])
def test_a_ray_that_fails_to_start_is_one_error_not_a_traceback(monkeypatch, error):
    import ray

    def init(**kwargs):
        raise error("The current node timed out during startup.\nThis could happen because ...")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)
    with pytest.raises(CktLoopError, match=r"^cannot start or join a local Ray instance: The current node timed out"):
        runtime.ensure_ray(num_cpus=1)


def test_ensure_ray_says_whether_it_connected(monkeypatch):
    """A command that finds Ray connected already (called in-process) must not shut it down afterwards."""
    import ray

    calls: list[dict] = []
    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    monkeypatch.setattr(ray, "init", lambda **kwargs: calls.append(kwargs))
    assert runtime.ensure_ray(num_cpus=1) is False and not calls
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    assert runtime.ensure_ray(num_cpus=1) is True and calls[0]["num_cpus"] == 1

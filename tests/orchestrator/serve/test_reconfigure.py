"""A new model version put into the running service while 20 clients call /v1/generate.

The "new version" is the shipped design models' weights saved under another version label: the
mechanism (user_config -> reconfigure -> load beside the old model -> swap) is what is tested, not a
better model. The service is deployed as ``cktloop serve`` deploys it, then the same config is applied
again with the new checkpoints, as a promotion would.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from orchestrator.serve.config import ServeConfig

pytestmark = [pytest.mark.ray, pytest.mark.slow]

CLIENTS = 20
NEW = "-relabelled-v2"


def relabel(kind: str, source: Path, target: Path) -> str:
    """``source``'s checkpoint saved at ``target`` with its version label + NEW; the new label."""
    if kind == "generator":
        from generator.checkpoint import load_checkpoint as load
        from generator.checkpoint import save_checkpoint as save
    else:
        from surrogate.checkpoint import load, save
    state = load(source)
    state["version"] = str(state["version"]) + NEW
    save(target, state)
    return state["version"]


@pytest.fixture(scope="module")
def base(ray_session: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeConfig]:
    from ray import serve

    from orchestrator.serve.deployments import deploy

    folder = tmp_path_factory.mktemp("reconfigure")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = ServeConfig(port=port, db=f"sqlite:///{folder / 'store.db'}")
    deploy(config)
    yield config
    serve.shutdown()


class Client(threading.Thread):
    """Calls /v1/generate until told to stop; keeps every (status, model_version, surrogate_version)."""

    def __init__(self, url: str, seed: int, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.url, self.seed, self.stop = url, seed, stop
        self.answers: list[tuple[int, str, str]] = []
        self.failures: list[str] = []

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=120) as http:
            while not self.stop.is_set():
                try:
                    r = http.post("/v1/generate", json={"class": [6, 7, 4], "n": 2, "seed": self.seed})
                    body = r.json()
                    self.answers.append((r.status_code, body.get("model_version"), body.get("surrogate_version")))
                except Exception as exc:  # a dropped connection is a failed request too
                    self.failures.append(f"{type(exc).__name__}: {exc}")


def wait_until(condition: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s:g} s: {what}")
        time.sleep(0.1)


def test_new_version_swapped_in_place_while_20_clients_call(base: ServeConfig, tmp_path: Path) -> None:
    from ray import serve

    from generator.paths import DESIGN_CHECKPOINT as GENERATOR
    from orchestrator.serve.deployments import APP_NAME, deploy
    from surrogate.paths import DESIGN_CHECKPOINT as SURROGATE

    url = f"http://127.0.0.1:{base.port}"
    old = httpx.get(f"{url}/healthz", timeout=60).json()
    new_generator = relabel("generator", GENERATOR, tmp_path / "generator.pt")
    new_surrogate = relabel("surrogate", SURROGATE, tmp_path / "surrogate.pt")
    handle = serve.get_deployment_handle("Ingress", APP_NAME)
    replica_before = handle.stats.remote().result()["replica"]

    stop = threading.Event()
    clients = [Client(url, seed, stop) for seed in range(CLIENTS)]
    for client in clients:
        client.start()
    try:
        wait_until(lambda: all(len(c.answers) >= 2 for c in clients), 120, "every client answered twice")
        promoted = base.replace(
            generator=base.generator.replace(checkpoint=str(tmp_path / "generator.pt")).model_dump(),
            surrogate=base.surrogate.replace(checkpoint=str(tmp_path / "surrogate.pt")).model_dump(),
        )
        deploy(promoted)
        seen_new = lambda: all(sum(a[1] == new_generator for a in c.answers) >= 2 for c in clients)  # noqa: E731
        wait_until(seen_new, 180, "every client answered twice by the new generator")
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=150)

    assert [f for c in clients for f in c.failures] == []
    assert {a[0] for c in clients for a in c.answers} == {200}
    for client in clients:
        generators = [a[1] for a in client.answers]
        swap = generators.index(new_generator)
        assert set(generators[:swap]) == {old["generator"]} and set(generators[swap:]) == {new_generator}
        assert client.answers[-1][2] == new_surrogate
    assert handle.stats.remote().result()["replica"] == replica_before  # reconfigured, not replaced
    assert httpx.get(f"{url}/healthz", timeout=60).json() == {
        "status": "ok",
        "generator": new_generator,
        "surrogate": new_surrogate,
    }

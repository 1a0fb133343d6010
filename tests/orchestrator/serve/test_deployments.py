"""The Serve application on the shared Ray session, over real HTTP: bound to 0.0.0.0 with a token (so every
request here sends it, and one without it gets 401), on a free port, deployed the way ``cktloop serve``
deploys it (Serve's config path)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from circuits import Circuit
from orchestrator.serve.config import Caps, ServeConfig
from orchestrator.serve.services import GenerateCall, generate_with

pytestmark = [pytest.mark.ray, pytest.mark.slow]

TOKEN = "test-token-7c1f"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def service(ray_session: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    from ray import serve

    from orchestrator.serve.deployments import deploy

    folder = tmp_path_factory.mktemp("serve")
    (folder / "token").write_text(TOKEN + "\n")
    config = ServeConfig(
        host="0.0.0.0",
        port=free_port(),
        token_file=str(folder / "token"),
        db=f"sqlite:///{folder / 'store.db'}",
        caps=Caps(max_n=20, max_circuits=10),
    )
    deploy(config)
    headers = {"authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=f"http://127.0.0.1:{config.port}", headers=headers, timeout=120) as client:
        yield client
    serve.shutdown()


@pytest.fixture(scope="module")
def generator() -> Any:
    from generator.predict import DESIGN_CHECKPOINT, Generator

    return Generator.load(DESIGN_CHECKPOINT)


def test_health_and_models_name_the_served_versions(service: httpx.Client, generator: Any) -> None:
    health = service.get("/healthz").json()
    assert health["status"] == "ok" and health["generator"] == generator.version
    assert service.get("/v1/models").json()["generator"]["version"] == generator.version
    assert service.get("/openapi.json").status_code == 200


def test_with_a_token_a_request_without_it_gets_401(service: httpx.Client) -> None:
    url = str(service.base_url)
    for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": TOKEN}):
        answer = httpx.post(f"{url}/v1/generate", json={"class": [6, 7, 4]}, headers=headers, timeout=60)
        assert answer.status_code == 401 and answer.json()["error"].startswith("authorization")
        assert httpx.get(f"{url}/v1/models", headers=headers, timeout=60).status_code == 401


def test_concurrent_requests_are_batched_and_answered_as_alone(service: httpx.Client, generator: Any) -> None:
    from ray import serve

    from orchestrator.serve.deployments import APP_NAME

    asks = [{"class": [6, 7, 4], "n": 5, "seed": seed, "sampling": "bank"} for seed in range(16)]
    asks += [{"target": {"gain_db": {"min": 80}}, "n": 3, "seed": seed, "sampling": "spec"} for seed in range(8)]
    with ThreadPoolExecutor(len(asks)) as pool:
        answers = list(pool.map(lambda ask: service.post("/v1/generate", json=ask), asks))
    assert [a.status_code for a in answers] == [200] * len(asks)
    for ask, answer in zip(asks, answers):
        bounds = (("gain_db", 80.0, None),) if "target" in ask else None
        spec = tuple(ask["class"]) if "class" in ask else None
        call = GenerateCall(bounds, spec, ask["n"], ask["seed"], ask["sampling"])
        _classes, alone = generate_with(generator, [call])[0]
        served = [(tuple(c["spec_class"]), Circuit.from_dict(c["circuit"])) for c in answer.json()["circuits"]]
        assert served == [(cls, c) for cls, c in alone if isinstance(c, Circuit)]
    stats = serve.get_deployment_handle("Ingress", APP_NAME).stats.remote().result()  # the generator is in it
    assert max(stats["batch_sizes"]) > 1  # requests that arrived together shared a model call


@pytest.mark.ngspice
def test_simulate_goes_through_the_ngspice_pool(service: httpx.Client, generator: Any) -> None:
    from simulator.ngspice import NgspiceBackend

    circuits = generator.generate([(6, 7, 4)], 3, seed=2)
    answer = service.post("/v1/simulate", json={"circuits": [c.to_dict() for c in circuits]})
    assert answer.status_code == 200, answer.text
    answer = answer.json()
    direct = NgspiceBackend().simulate(circuits)
    assert answer["simulator"].startswith("ngspice")
    assert [m["status"] for m in answer["measured"]] == [p.status.value for p in direct]
    assert [m["gain_db"] for m in answer["measured"]] == pytest.approx([p.gain_db for p in direct], rel=1e-9)


def test_bad_input_through_serve_is_a_4xx_and_serving_goes_on(service: httpx.Client) -> None:
    malformed = service.post("/v1/generate", content=b'{"n": ', headers={"content-type": "application/json"})
    assert malformed.status_code == 400 and "malformed JSON" in malformed.json()["error"]
    refused = service.post("/v1/generate", json={"class": [99, 0, 0]})
    assert refused.status_code == 422 and "[99, 0, 0]" in refused.json()["error"]
    over = service.post("/v1/generate", json={"class": [6, 7, 4], "n": 21})
    assert over.status_code == 422 and "caps.max_n" in over.json()["error"]
    assert service.post("/v1/generate", json={"class": [6, 7, 4], "n": 2}).status_code == 200


def test_access_logs_are_off(service: httpx.Client) -> None:
    """After this module's requests, no Serve log of this Ray session (proxy, replicas) has an access line."""
    from pathlib import Path

    import ray

    assert service.post("/v1/generate", json={"class": [6, 7, 4], "n": 1}).status_code == 200
    logs = Path(ray._private.worker._global_node.get_logs_dir_path()) / "serve"
    files = sorted(logs.glob("*.log"))
    assert any("Ingress" in f.name for f in files)
    assert [f.name for f in files if "/v1/generate" in f.read_text(errors="replace")] == []

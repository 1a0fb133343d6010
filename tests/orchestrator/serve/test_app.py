"""The API in-process (FastAPI's TestClient over LocalModels, no Ray): answers, seeding, and bad input.

The shipped design models answer; simulation is the MNA backend (numpy), so no ngspice is needed here
(the ngspice pool is tested through Serve in test_deployments.py).
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient

from circuits import Circuit
from circuits.targets import Target, class_fits
from orchestrator.serve.app import create_app
from orchestrator.serve.config import Caps, ServeConfig
from orchestrator.serve.services import (
    BadRequest,
    GenerateCall,
    LocalModels,
    Services,
    Unavailable,
    generate_answers,
    generate_with,
)

TARGET = {"gain_db": {"min": 60}, "ugbw_hz": {"min": 1e9}, "pm_deg": {"min": 45, "max": 90}}


@pytest.fixture(scope="module")
def models() -> LocalModels:
    from generator.predict import DESIGN_CHECKPOINT as GEN
    from generator.predict import Generator
    from simulator.mna import MnaBackend
    from surrogate.predict import DESIGN_CHECKPOINT as SUR
    from surrogate.predict import Surrogate

    return LocalModels(Generator.load(GEN), Surrogate.load(SUR, "cpu"), MnaBackend(), SUR)


@pytest.fixture(scope="module")
def client(models: LocalModels) -> TestClient:
    config = ServeConfig(caps=Caps(max_n=20, max_circuits=5, max_body_bytes=20_000))
    return TestClient(create_app(Services(models, config)), raise_server_exceptions=False)


def test_generate_answers_circuits_with_predictions_and_versions(client: TestClient, models: LocalModels) -> None:
    answer = client.post("/v1/generate", json={"target": TARGET, "n": 10, "seed": 1}).json()
    assert answer["model_version"] == models.generator.version
    assert answer["surrogate_version"] == models.surrogate.version
    assert len(answer["circuits"]) + answer["invalid"] == 10
    target = Target.from_mapping("t", TARGET)
    for item in answer["circuits"]:
        Circuit.from_dict(item["circuit"])  # the circuits package's format
        assert class_fits(target, models.generator.spec_classes, tuple(item["spec_class"]))  # a class inside the target
        assert set(item["predicted"]) >= {"gain_db", "ugbw_hz", "pm_deg", "fom", "spec_class"}


def test_same_seed_same_circuits_other_seed_others(client: TestClient) -> None:
    ask = {"class": [6, 7, 4], "n": 8, "seed": 5, "sampling": "spec"}
    first, again = (client.post("/v1/generate", json=ask).json() for _ in range(2))
    other = client.post("/v1/generate", json={**ask, "seed": 6}).json()
    assert first == again
    assert [c["circuit"] for c in first["circuits"]] != [c["circuit"] for c in other["circuits"]]
    assert all(c["spec_class"] == [6, 7, 4] for c in first["circuits"])


def test_batched_calls_answer_what_each_alone_answers(models: LocalModels) -> None:
    """What the Serve deployment merges into one model call: each request's answer is unchanged."""
    calls = [
        GenerateCall(None, (6, 7, 4), 5, 1, "bank"),
        GenerateCall((("gain_db", 80.0, None),), None, 7, 2, "spec"),
        GenerateCall(None, (99, 0, 0), 3, 3, "bank"),  # refused alone, the others still answered
        GenerateCall(None, (3, 5, 2), 4, 1, "bank"),
    ]
    together = generate_with(models.generator, calls)
    alone = [generate_with(models.generator, [call])[0] for call in calls]
    assert isinstance(together[2], Exception) and isinstance(alone[2], Exception)
    assert [a for a in together if not isinstance(a, Exception)] == [a for a in alone if not isinstance(a, Exception)]


def test_answers_made_in_one_batch_equal_each_made_alone(models: LocalModels) -> None:
    """What the generator replica does for a batch (draw, rank all its circuits in one surrogate call, answer
    JSON per request): each answer is the one its request alone gets, a refused request refused alone."""
    import json

    calls = [
        GenerateCall(None, (6, 7, 4), 5, 1, "bank"),
        GenerateCall(None, (99, 0, 0), 3, 3, "bank"),
        GenerateCall((("gain_db", 60.0, None), ("pm_deg", 45.0, 90.0)), None, 7, 2, "spec"),
    ]
    together = generate_answers(models.generator, models.surrogate, calls)
    alone = [generate_answers(models.generator, models.surrogate, [call])[0] for call in calls]
    assert isinstance(together[1], BadRequest) and str(together[1]) == str(alone[1])
    for batched, single in ((together[k], alone[k]) for k in (0, 2)):
        assert isinstance(batched, bytes) and isinstance(single, bytes)
        a, b = json.loads(batched), json.loads(single)
        assert a["model_version"] == models.generator.version and a["surrogate_version"] == models.surrogate.version
        assert [c["circuit"] for c in a["circuits"]] == [c["circuit"] for c in b["circuits"]] and a["circuits"]
        for x, y in zip(a["circuits"], b["circuits"]):
            assert x["predicted"]["spec_class"] == y["predicted"]["spec_class"]
            assert x["predicted"]["gain_db"] == pytest.approx(y["predicted"]["gain_db"], rel=1e-5)


def test_predict_and_simulate_match_the_plain_classes(client: TestClient, models: LocalModels) -> None:
    circuits = models.generator.generate([(6, 7, 4)], 3, seed=0)
    body = {"circuits": [c.to_dict() for c in circuits]}
    predicted = client.post("/v1/predict", json=body).json()
    rows = models.surrogate.predict(circuits)
    assert predicted["model_version"] == models.surrogate.version
    assert [p["gain_db"] for p in predicted["predicted"]] == pytest.approx([r["gain_db"] for r in rows])
    assert [p["spec_class"] for p in predicted["predicted"]] == [list(r["spec_class"]) for r in rows]
    measured = client.post("/v1/simulate", json=body).json()
    direct = models.backend.simulate(circuits)
    assert measured["simulator"].startswith("mna")
    assert [m["status"] for m in measured["measured"]] == [p.status.value for p in direct]
    assert [m["ugbw_hz"] for m in measured["measured"]] == pytest.approx([p.ugbw_hz for p in direct])


def test_models_health_and_openapi(client: TestClient, models: LocalModels) -> None:
    listed = client.get("/v1/models").json()
    assert listed["generator"]["version"] == models.generator.version
    assert listed["generator"]["spec_classes"]["name"] == "cktloop"
    assert client.get("/healthz").json() == {
        "status": "ok",
        "generator": models.generator.version,
        "surrogate": models.surrogate.version,
    }
    spec = client.get("/openapi.json").json()
    assert {"/v1/generate", "/v1/predict", "/v1/simulate", "/v1/models", "/healthz"} <= set(spec["paths"])
    docs = client.get("/docs").text  # Swagger UI from the package's files: no CDN
    assert "/docs-assets/swagger-ui-bundle.js" in docs and "cdn" not in docs.lower()
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
    assert client.get("/").status_code == 200  # the page
    bare = TestClient(create_app(Services(models, ServeConfig(web=False))))
    assert bare.get("/").status_code == 404 and "/v1/generate" in bare.get("/openapi.json").json()["paths"]


BAD: list[tuple[str, Any, int, list[str]]] = [
    ("/v1/generate", '{"n": 5', 400, ["body", "malformed JSON"]),
    ("/v1/generate", {"target": {"gain_x": {"min": 1}}}, 422, ["target.gain_x", "unknown spec"]),
    ("/v1/generate", {"target": {"gain_db": {"min": 80, "max": 60}}}, 422, ["target.gain_db", "min 80 > max 60"]),
    ("/v1/generate", {"target": {"gain_db": {"low": 1}}}, 422, ["target.gain_db.low", "unknown key"]),
    ("/v1/generate", {"class": [1, 1, 1], "n": 1000}, 422, ["n", "1000", "caps.max_n"]),
    ("/v1/generate", {"class": [1, 1, 1], "n": 0}, 422, ["n", "0"]),
    ("/v1/generate", {"class": [1, 1, 1], "n": "5"}, 422, ["n", "'5'"]),
    ("/v1/generate", {"class": [1, 1, 1], "seed": -1}, 422, ["seed", "-1"]),
    ("/v1/generate", {"class": [1, 1, 1], "sampling": "magic"}, 422, ["sampling", "'magic'"]),
    ("/v1/generate", {"class": [99, 0, 0]}, 422, ["class", "[99, 0, 0]"]),
    ("/v1/generate", {"class": [1, 1]}, 422, ["class", "[1, 1]"]),
    ("/v1/generate", {"n": 3}, 422, ["exactly one of 'target' and 'class'"]),
    ("/v1/generate", {"class": [1, 1, 1], "colour": "red"}, 422, ["colour", "unknown key"]),
    ("/v1/generate", {"target": {}}, 422, ["target", "no bounds given"]),
    ("/v1/generate", {"target": {"gain_db": {"min": "high"}}}, 422, ["target.gain_db.min", "'high'"]),
    ("/v1/predict", {"circuits": [{"nodes": [], "edges": []}]}, 422, ["circuits.0", "invalid circuit"]),
    (
        "/v1/predict",
        {"circuits": [{"nodes": [{"type": 0, "pos": 0, "r": "x"}], "edges": []}]},
        422,
        ["circuits.0", "'x'"],
    ),
    ("/v1/simulate", {"circuits": []}, 422, ["circuits"]),
    ("/v1/simulate", {"circuits": "all"}, 422, ["circuits", "'all'"]),
    ("/v1/generate", {"class": [1, 1, 1], "seed": 2**70}, 422, ["seed"]),
]


@pytest.mark.parametrize(("path", "body", "status", "words"), BAD, ids=[f"{p}:{b}"[:60] for p, b, _, _ in BAD])
def test_bad_input_is_a_4xx_naming_field_and_value(
    client: TestClient, path: str, body: Any, status: int, words: list[str]
) -> None:
    kwargs = {"content": body, "headers": {"content-type": "application/json"}} if isinstance(body, str) else {}
    answer = client.post(path, **kwargs) if kwargs else client.post(path, json=body)
    assert answer.status_code == status, answer.text
    problem = answer.json()
    assert problem["status"] == status and "\n" not in problem["error"]
    for word in words:
        assert word in problem["error"], problem
    assert client.get("/healthz").status_code == 200  # still serving


def test_caps_on_circuits_and_body_size(client: TestClient, models: LocalModels) -> None:
    circuits = [c.to_dict() for c in models.generator.generate([(6, 7, 4)], 6, seed=0)]
    over = client.post("/v1/predict", json={"circuits": circuits})
    assert over.status_code == 422 and "circuits: 6 is over the service's cap of 5" in over.json()["error"]
    big = client.post("/v1/predict", content=b"x" * 30_000, headers={"content-type": "application/json"})
    assert big.status_code == 413 and "caps.max_body_bytes" in big.json()["error"]
    streamed = client.post("/v1/predict", content=iter([b"x" * 15_000] * 2))  # no length announced
    assert streamed.status_code == 413
    assert client.get("/nowhere").json() == {"error": "Not Found", "status": 404}
    assert client.get("/v1/generate").status_code == 405


class Broken:
    """Models whose every call fails the way a bug of ours would, with a database URL in the message."""

    async def generate(self, call: Any) -> Any:
        raise RuntimeError("cannot reach postgresql+psycopg://cktloop:hunter2@db.example/designs")

    predict = simulate = info = generate


def test_a_failure_of_ours_is_a_500_without_secrets_and_serving_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    client = TestClient(create_app(Services(Broken(), ServeConfig())), raise_server_exceptions=False)  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR, logger="cktloop.serve"):
        answer = client.post("/v1/generate", json={"class": [1, 1, 1]})
    assert answer.status_code == 500 and answer.json()["error"].startswith("internal error (RuntimeError)")
    assert "hunter2" not in answer.text and "hunter2" not in caplog.text
    assert "cktloop:***@db.example" in caplog.text
    assert client.post("/v1/generate", json={"class": [1, 1]}).status_code == 500  # answers again


class NoSimulator:
    async def simulate(self, circuits: Any) -> Any:
        raise Unavailable("simulator: ngspice's shared library is not installed on the service's node")


def test_a_missing_simulator_is_a_503_naming_it(amp: Any) -> None:
    client = TestClient(create_app(Services(NoSimulator(), ServeConfig())))  # type: ignore[arg-type]
    answer = client.post("/v1/simulate", json={"circuits": [amp().to_dict()]})
    assert answer.status_code == 503 and answer.json()["error"].startswith("simulator: ngspice")


class Failing:
    """A deployment handle's method whose replica raised (as Ray raises it at the caller)."""

    def __init__(self, cause: Exception) -> None:
        self.cause = cause

    async def _raise(self, *_: Any) -> Any:
        from ray.exceptions import RayTaskError

        raise RayTaskError("simulate", "Traceback ...\nline 2", self.cause)

    def remote(self, *args: Any) -> Any:
        return self._raise(*args)


def test_a_failed_replica_is_a_503_naming_the_part_without_secrets(amp: Any) -> None:
    from types import SimpleNamespace

    from circuits import CktLoopError
    from orchestrator.serve.deployments import HandleModels

    url = "postgresql+psycopg://u:hunter2@db/x"
    pool = SimpleNamespace(simulate=Failing(CktLoopError(f"no simulation worker started within 120 s ({url})")))
    client = TestClient(create_app(Services(HandleModels(None, None, pool), ServeConfig())))
    answer = client.post("/v1/simulate", json={"circuits": [amp().to_dict()]})
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"].startswith("simulator: no simulation worker started within 120 s")
    assert "hunter2" not in answer.text

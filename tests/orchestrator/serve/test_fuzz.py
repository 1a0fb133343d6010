"""Schemathesis against the live service: every operation of its OpenAPI schema, over real HTTP.

The app is ``create_app`` over in-process services (the plain classes the Serve deployments wrap: the
shipped generator and surrogate, the numpy MNA simulator, which agrees with ngspice to 1e-13) and the
real design jobs on a fresh SQLite store, served by uvicorn on a free port; the schema is read from its
``/openapi.json``. What is left out, and why: design jobs are accepted, listed, read, reported and
cancelled, but their runner is not started, so no campaign runs (each takes minutes of Ray and ngspice;
``test_web`` and the design-job tests run them). Caps are small (``n`` <= 12, 8 circuits a request) so
that thousands of requests take a minute, not an hour; the caps' own 422s are part of what is fuzzed.

Each generated request is checked by schemathesis' default checks: no 5xx, a status code, content type,
headers and body the schema documents. The test asserts >= 1,000 requests in all and no failure.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

pytestmark = [pytest.mark.slow]

EXAMPLES = 120  # per operation; 15 operations, some with few distinct inputs


def checks() -> list[Any]:
    """What "0 server errors, 0 answers that break the schema" means, as schemathesis checks: no 5xx, and every
    answer's status code, content type, headers and body as the schema documents them. Left out:
    ``positive_data_acceptance`` (a schema-valid request answered 4xx): the domain's rules (a circuit's validity,
    min <= max, exactly one of target and class, at least one bound) are beyond JSON Schema, and such a request
    gets the documented 422 naming the field and the value, which is what the API promises."""
    from schemathesis import checks as c

    return [
        c.not_a_server_error,
        c.status_code_conformance,
        c.content_type_conformance,
        c.response_headers_conformance,
        c.response_schema_conformance,
        c.negative_data_rejection,
    ]


@pytest.fixture(scope="module")
def service(serve_live: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    from generator.predict import DESIGN_CHECKPOINT as GENERATOR
    from generator.predict import Generator
    from orchestrator.serve.app import create_app
    from orchestrator.serve.config import load_serve_config
    from orchestrator.serve.jobs import LocalJobs, design_jobs
    from orchestrator.serve.services import LocalModels, Services
    from simulator.mna import MnaBackend
    from surrogate.predict import DESIGN_CHECKPOINT as SURROGATE
    from surrogate.predict import Surrogate

    db = f"sqlite:///{tmp_path_factory.mktemp('fuzz')}/fuzz.db"
    caps = {"max_n": 12, "max_circuits": 8, "max_budget": 500, "max_targets_per_job": 5, "max_body_bytes": 200_000}
    config = load_serve_config(None, db=db, caps=caps)
    models = LocalModels(Generator.load(GENERATOR), Surrogate.load(SURROGATE, "cpu"), MnaBackend(), SURROGATE)
    services = Services(models, config)
    services.jobs = LocalJobs(design_jobs(config))  # not started: jobs stay queued (see the module's docstring)
    with serve_live(create_app(services)) as url:
        yield url


def test_schemathesis_finds_no_server_error_and_no_answer_off_the_schema(service: str) -> None:
    import requests
    import schemathesis

    schema = schemathesis.openapi.from_url(f"{service}/openapi.json")
    session = requests.Session()
    statuses: Counter[tuple[str, int]] = Counter()
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 14, [op.label for op in operations]

    for operation in operations:
        fuzz(operation, service, session, statuses, failures)
    valid = answered_as_documented(schema, service, session, statuses, failures)
    assert valid >= 8, statuses

    total = sum(statuses.values())
    summary = ", ".join(f"{label} {code}: {n}" for (label, code), n in sorted(statuses.items()))
    print(f"\n{total} requests: {summary}")
    assert not failures, "\n".join(failures)
    assert total >= 1000, summary
    assert not [k for k in statuses if k[1] >= 500], summary


def fuzz(operation: Any, url: str, session: Any, statuses: Counter[tuple[str, int]], failures: list[str]) -> None:
    """``EXAMPLES`` generated requests to one operation, each checked; counts by status, failed checks as -1."""
    from hypothesis import HealthCheck, given, settings

    label = operation.label

    @settings(
        max_examples=EXAMPLES, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck)
    )
    @given(case=operation.as_strategy())
    def one(case: Any) -> None:
        response = case.call(base_url=url, session=session)
        statuses[(label, response.status_code)] += 1
        case.validate_response(response, checks=checks())

    try:
        one()
    except (Exception, BaseExceptionGroup) as exc:  # a failed check: a FailureGroup, after Hypothesis shrank it
        failures.append(f"{label}: {str(exc).strip()[:1500]}")


def answered_as_documented(
    schema: Any, url: str, session: Any, statuses: Counter[tuple[str, int]], failures: list[str]
) -> int:
    """Requests the domain accepts (random ones rarely are), each answer checked against the schema: a target's
    circuits, their predictions and simulations, a design job queued, read, listed and cancelled, its figures
    404 while it has no winner. The number of 2xx answers."""
    ops = {op.label: op for op in (r.ok() for r in schema.get_all_operations())}
    accepted: list[str] = []

    def call(label: str, **parts: Any) -> Any:
        case = ops[label].Case(**parts)
        response = case.call(base_url=url, session=session)
        statuses[(label, response.status_code)] += 1
        try:
            case.validate_response(response, checks=checks())
        except (Exception, BaseExceptionGroup) as exc:
            failures.append(f"{label} (a valid request): {str(exc).strip()[:1500]}")
        if response.status_code < 300:
            accepted.append(label)
        return response

    target = {"gain_db": {"min": 60}, "ugbw_hz": {"min": 1e8}, "pm_deg": {"min": 45, "max": 90}}
    generated = call("POST /v1/generate", body={"target": target, "n": 8, "seed": 3}).json()
    circuits = [c["circuit"] for c in generated["circuits"]][:8]
    assert circuits, generated
    call("POST /v1/generate", body={"class": generated["circuits"][0]["spec_class"], "n": 2, "sampling": "spec"})
    call("POST /v1/predict", body={"circuits": circuits})
    measured = call("POST /v1/simulate", body={"circuits": circuits}).json()["measured"]
    assert any(m["status"] == "ok" for m in measured), measured
    job = call("POST /v1/designs", body={"name": "fuzz", "budget": 50, "targets": [{"name": "t", "specs": target}]})
    job_id = job.json()["id"]
    assert call("GET /v1/designs/{job_id}", path_parameters={"job_id": job_id}).json()["status"] == "queued"
    call("GET /v1/designs")
    for figure in ("bode.svg", "topology.svg", "netlist.cir"):
        answer = call(
            f"GET /v1/designs/{{job_id}}/targets/{{name}}/{figure}", path_parameters={"job_id": job_id, "name": "t"}
        )
        assert answer.status_code == 404, answer.text
    call("DELETE /v1/designs/{job_id}", path_parameters={"job_id": job_id})
    call("GET /v1/designs/{job_id}/report", path_parameters={"job_id": job_id})
    return sum(
        n for (label, code), n in statuses.items() if 200 <= code < 300 and label.startswith(("POST", "GET", "DEL"))
    )

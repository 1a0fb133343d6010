"""/v1/designs over HTTP (create_app, in-process jobs): answers and refusals with a stand-in campaign
run, then a real job (random search, ngspice, on the shared Ray) submitted and polled with curl, its
winners re-simulated by a separate ``ngspice -b`` and measured independently."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from circuits import Performance, SimStatus
from orchestrator.design.campaign import CampaignSettings, run_campaign
from orchestrator.design.search import SearchConfig
from orchestrator.serve.app import create_app
from orchestrator.serve.config import Caps, ServeConfig
from orchestrator.serve.jobs import DesignJobs, LocalJobs
from orchestrator.serve.services import Services
from storage import CandidateRecord, Store
from storage.testing import samples

PERF = Performance(SimStatus.OK, gain_db=65.0, ugbw_hz=3e8, pm_deg=72.0)
ROOT = Path(__file__).resolve().parents[3]
TARGETS = [
    {
        "name": "general-purpose",
        "specs": {"gain_db": {"min": 60}, "ugbw_hz": {"min": 1.0e8}, "pm_deg": {"min": 60, "max": 90}},
    },
    {
        "name": "low-gain-buffer",
        "specs": {"gain_db": {"min": 20, "max": 40}, "ugbw_hz": {"min": 1.0e9}, "pm_deg": {"min": 60, "max": 90}},
    },
]


def _stand_in(store: Any, campaign: Any, settings: Any, address: Any, should_stop: Any, datasets: Any) -> None:
    """Creates the campaign and its targets, as run_campaign does first, and finishes the first target with
    a refined winner (no prediction stored) measured by a made-up simulator."""
    targets = [
        {"name": t.name, "bounds": {f: {"min": b.low, "max": b.high} for f, b in t.bounds}} for t in campaign.targets
    ]
    ids = store.ensure_targets(store.ensure_campaign(campaign.name, {"stand-in": True}), targets)
    circuit = samples(1)[0].circuit
    (winner,) = store.add_candidates(ids[targets[0]["name"]], [CandidateRecord(circuit, "refine")])
    store.add_simulations("ngspice", "0", [(circuit.key, PERF, None)])
    store.finish_target(ids[targets[0]["name"]], True, winner, 7)


class FakeModels:
    """The surrogate part of ``Models``: every circuit predicted alike."""

    def __init__(self) -> None:
        self.calls = 0

    async def predict(self, circuits: Any) -> tuple[str, list[dict[str, Any]]]:
        self.calls += 1
        return "s1", [{"spec_class": [1, 2, 3], "gain_db": 61.0, "ugbw_hz": 2e8, "pm_deg": 70.0, "fom": 100.0}] * len(
            circuits
        )


def _app(
    store: Store, caps: Caps, run: Any = _stand_in, settings: Any = None, models: Any = None
) -> tuple[Any, DesignJobs]:
    config = ServeConfig(caps=caps)
    jobs = DesignJobs(store, settings or CampaignSettings(None, None), caps, run=run, poll_s=0.05)
    return create_app(Services(models, config, jobs=LocalJobs(jobs))), jobs


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'designs.db'}")
    yield s
    s.close()


def _until(client: TestClient, job_id: int, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while (job := client.get(f"/v1/designs/{job_id}").json())["status"] != status:
        assert time.monotonic() < deadline, job
        time.sleep(0.05)
    return job


def test_a_job_is_accepted_listed_shown_reported_and_refused_as_it_should(store: Store) -> None:
    models = FakeModels()
    app, jobs = _app(store, Caps(max_budget=100, max_targets_per_job=2, max_queued_jobs=5), models=models)
    client = TestClient(app)
    answer = client.post("/v1/designs", json={"name": "amp", "budget": 50, "targets": TARGETS})
    assert answer.status_code == 202
    job_id = answer.json()["id"]
    queued = client.get(f"/v1/designs/{job_id}").json()
    assert (queued["id"], queued["status"], queued["name"], queued["simulations"]) == (job_id, "queued", "amp", 0)
    assert [(t["name"], t["status"], t["met"], t["netlist"]) for t in queued["targets"]] == [
        ("general-purpose", "pending", None, None),
        ("low-gain-buffer", "pending", None, None),
    ]
    assert client.get(f"/v1/designs/{job_id}/report").status_code == 409  # nothing to report yet
    jobs.start()
    done = _until(client, job_id, "done")
    assert done["campaign"] == f"job{job_id}-amp" and done["targets_total"] == 2
    assert (done["targets_done"], done["targets_met"], done["simulations"]) == (1, 1, 7)
    won, pending = done["targets"]
    assert (won["status"], won["met"], won["n_simulations"], pending["status"], pending["netlist"]) == (
        "done",
        True,
        7,
        "pending",
        None,
    )
    assert won["netlist"].startswith("*") and won["circuit"] == samples(1)[0].circuit.canonical().to_dict()
    assert won["measured"] == {
        "status": "ok",
        "gain_db": PERF.gain_db,
        "ugbw_hz": PERF.ugbw_hz,
        "pm_deg": PERF.pm_deg,
        "fom": PERF.fom,
    }
    # the refined winner has no stored prediction: the served surrogate's, asked once
    assert won["predicted"] == {"status": None, "gain_db": 61.0, "ugbw_hz": 2e8, "pm_deg": 70.0, "fom": 100.0}
    assert client.get(f"/v1/designs/{job_id}").json()["targets"][0]["predicted"]["gain_db"] == 61.0
    assert models.calls == 1
    listed = client.get("/v1/designs").json()["designs"]
    assert [(j["id"], j["status"]) for j in listed] == [(job_id, "done")] and "targets" not in listed[0]
    report = client.get(f"/v1/designs/{job_id}/report")
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
    assert "general-purpose" in report.text and 'src="data:image/png;base64,' in report.text
    assert client.delete(f"/v1/designs/{job_id}").status_code == 409
    jobs.stop(timeout_s=5)

    def refused(status: int, body: Any, *words: str) -> None:
        answer = client.post("/v1/designs", json=body)
        assert answer.status_code == status, answer.text
        assert all(w in answer.json()["error"] for w in words), answer.json()

    refused(422, {"budget": 101, "targets": TARGETS}, "budget: 101 is over the service's cap of 100")
    three = [{"name": f"t{k}", "specs": {"gain_db": {"min": 40}}} for k in range(3)]
    refused(422, {"budget": 50, "targets": three}, "targets: 3 targets are over the service's cap of 2")
    refused(422, {"targets": [{"name": "x", "specs": {"gain_db": {"min": 9, "max": 1}}}]}, "targets.0", "min 9 > max 1")
    refused(422, {"targets": [{"name": "x", "specs": {"speed": {"min": 1}}}]}, "targets.0", "'speed'", "unknown spec")
    refused(422, {"budget": 0, "targets": TARGETS}, "budget", "greater than or equal to 1")
    refused(422, {"targets": []}, "targets")
    refused(422, {"targets": TARGETS[:1], "colour": "red"}, "colour: unknown key")
    refused(422, {"targets": [TARGETS[0], TARGETS[0]]}, "appears twice")
    for missing in ("/v1/designs/999", "/v1/designs/999/report"):
        answer = client.get(missing)
        assert answer.status_code == 404 and answer.json()["error"] == "no design job with id 999"
    assert client.delete("/v1/designs/999").status_code == 404
    assert client.get("/v1/designs/x").status_code == 422


def test_a_queued_job_is_cancelled_and_a_full_queue_answers_429(store: Store) -> None:
    app, _ = _app(store, Caps(max_queued_jobs=2))  # the runner is not started: jobs stay queued
    client = TestClient(app)
    first = client.post("/v1/designs", json={"targets": TARGETS}).json()["id"]
    client.post("/v1/designs", json={"targets": TARGETS})
    full = client.post("/v1/designs", json={"targets": TARGETS})
    assert full.status_code == 429 and "2 jobs are queued" in full.json()["error"]
    cancelled = client.delete(f"/v1/designs/{first}")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert client.post("/v1/designs", json={"targets": TARGETS}).status_code == 202


def _curl(*args: str) -> Any:
    out = subprocess.run(["curl", "-sS", "--fail-with-body", *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.mark.ray
@pytest.mark.ngspice
@pytest.mark.slow
def test_a_job_by_curl_returns_winners_that_ngspice_b_confirms(ray_session, store, serve_live, tmp_path) -> None:
    if not (shutil.which("curl") and shutil.which("ngspice")):
        pytest.skip("needs the curl and ngspice binaries")
    settings = CampaignSettings(None, None, SearchConfig(refine_share=0.0), workers=1)
    app, jobs = _app(store, Caps(), run=run_campaign, settings=settings)
    jobs.start()
    try:
        with serve_live(app) as url:
            request = tmp_path / "job.json"
            request.write_text(json.dumps({"name": "curl", "budget": 60, "targets": TARGETS}))
            job_id = _curl(
                "-X",
                "POST",
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                f"@{request}",
                f"{url}/v1/designs",
            )["id"]
            deadline = time.monotonic() + 300
            while (job := _curl(f"{url}/v1/designs/{job_id}"))["status"] not in ("done", "failed", "cancelled"):
                assert time.monotonic() < deadline, job
                time.sleep(0.5)
    finally:
        jobs.stop(timeout_s=30)
    assert job["status"] == "done" and job["targets_done"] == 2, job
    assert job["simulations"] == sum(t["n_simulations"] for t in job["targets"]) > 0
    for target in job["targets"]:
        assert target["netlist"].startswith("*") and target["measured"]["status"] in ("ok", "no_crossing")
        assert target["met"] is not None and target["circuit"]["nodes"]
    answer = tmp_path / "answer.json"
    answer.write_text(json.dumps(job))
    check = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "verify_design_job.py"), str(answer)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "2 winners re-simulated" in check.stdout and "2 passed, 0 failed" in check.stdout


@pytest.mark.ray
@pytest.mark.ngspice
@pytest.mark.slow
def test_cancelling_a_running_job_stops_its_campaign_on_ray(ray_session, store) -> None:
    settings = CampaignSettings(None, None, SearchConfig(refine_share=0.0), workers=1)
    app, jobs = _app(store, Caps(), run=run_campaign, settings=settings)
    client = TestClient(app)
    many = [{"name": f"t{k}", "specs": {"gain_db": {"min": 500 + k}}} for k in range(12)]  # unmeetable: full budgets
    job_id = client.post("/v1/designs", json={"budget": 2000, "targets": many}).json()["id"]
    jobs.start()
    try:
        _until(client, job_id, "running")
        cancelled = client.delete(f"/v1/designs/{job_id}")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        deadline = time.monotonic() + 120
        while any(t.is_alive() for t in jobs._running.values()):  # the run notices within a second
            assert time.monotonic() < deadline, "the cancelled campaign is still running"
            time.sleep(0.2)
        job = client.get(f"/v1/designs/{job_id}").json()
        assert job["status"] == "cancelled" and job["targets_done"] < len(many)
    finally:
        jobs.stop(timeout_s=30)
    assert store.job(job_id).status == "cancelled"
    assert store.requeue_jobs() == []  # a restart does not take it up again

"""DesignJobs without Serve or Ray: the runner around a stand-in for run_campaign that records its calls
and waits where told, on a real store. What a real campaign stores is tested in test_jobs_campaign.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from circuits import CktLoopError
from orchestrator.design.campaign import CampaignSettings
from orchestrator.serve.designs import JobConflict, JobNotFound, JobsBusy
from orchestrator.serve.jobs import BadDesign, DesignJobs
from storage import Store

TARGETS = [{"name": "a", "specs": {"gain_db": {"min": 40}}}, {"name": "b", "specs": {"pm_deg": {"min": 45}}}]
SETTINGS = CampaignSettings(None, None)


def caps(**changes: int) -> SimpleNamespace:
    return SimpleNamespace(
        **{"max_budget": 500, "max_targets_per_job": 3, "max_concurrent_jobs": 1, "max_queued_jobs": 3, **changes}
    )


class FakeRun:
    """run_campaign's stand-in: records the campaigns it is given; ``hold`` keeps a run going until it is
    released or told to stop; ``fail`` raises."""

    def __init__(self) -> None:
        self.calls: list[Any] = []
        self.release = threading.Event()
        self.hold = False
        self.fail: str | None = None
        self.stopped: list[str] = []

    def __call__(
        self, store: Any, campaign: Any, settings: Any, address: Any, should_stop: Callable[[], bool], datasets: Any
    ) -> None:
        self.calls.append(campaign)
        if self.fail:
            raise RuntimeError(self.fail + "\nsecond line")
        while self.hold and not self.release.is_set():
            if should_stop():
                self.stopped.append(campaign.name)
                return
            time.sleep(0.02)


@pytest.fixture
def store(tmp_path: Any) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'jobs.db'}")
    yield s
    s.close()


@pytest.fixture
def make(store: Store) -> Iterator[Callable[..., tuple[DesignJobs, FakeRun]]]:
    started: list[DesignJobs] = []

    def build(run: FakeRun | None = None, **cap_changes: int) -> tuple[DesignJobs, FakeRun]:
        run = run or FakeRun()
        jobs = DesignJobs(store, SETTINGS, caps(**cap_changes), run=run, poll_s=0.02)
        started.append(jobs)
        return jobs, run

    yield build
    for jobs in started:
        jobs.stop(timeout_s=5)


def wait_for(jobs: DesignJobs, job_id: int, *statuses: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while (answer := jobs.status(job_id))["status"] not in statuses:
        assert time.monotonic() < deadline, f"job {job_id} still {answer['status']}"
        time.sleep(0.02)
    return answer


def test_a_job_is_queued_runs_its_campaign_and_ends_done(make) -> None:
    jobs, run = make()
    job_id = jobs.submit({"name": "amp", "budget": 60, "targets": TARGETS})
    queued = jobs.status(job_id)
    assert (queued["status"], queued["campaign"], queued["budget"], queued["simulations"]) == (
        "queued",
        f"job{job_id}-amp",
        60,
        0,
    )
    assert [(t["name"], t["status"], t["met"], t["circuit"]) for t in queued["targets"]] == [
        ("a", "pending", None, None),
        ("b", "pending", None, None),
    ]
    assert queued["targets"][0]["bounds"] == {"gain_db": {"min": 40.0, "max": None}}
    jobs.start()
    done = wait_for(jobs, job_id, "done")
    assert done["started_at"] is not None and done["finished_at"] is not None and done["error"] is None
    (campaign,) = run.calls
    assert (campaign.name, campaign.budget, [t.name for t in campaign.targets]) == (f"job{job_id}-amp", 60, ["a", "b"])
    assert [j["id"] for j in jobs.list()] == [job_id]


def test_jobs_beyond_the_concurrency_cap_wait_in_the_queue(make) -> None:
    run = FakeRun()
    run.hold = True
    jobs, _ = make(run)
    first, second = jobs.submit({"targets": TARGETS}), jobs.submit({"targets": TARGETS})
    jobs.start()
    wait_for(jobs, first, "running")
    time.sleep(0.2)  # several runner rounds
    assert jobs.status(second)["status"] == "queued"
    run.release.set()
    wait_for(jobs, second, "done")
    assert [c.name for c in run.calls] == [f"job{first}", f"job{second}"]
    assert [j["id"] for j in jobs.list()] == [second, first]  # newest first


def test_requests_over_the_caps_are_refused_naming_the_cap(make) -> None:
    jobs, _ = make(max_queued_jobs=2)
    with pytest.raises(BadDesign, match=r"budget: 600 is over the service's cap of 500 \(caps.max_budget\)"):
        jobs.submit({"budget": 600, "targets": TARGETS})
    four = [{"name": str(k), "specs": {"gain_db": {"min": 40}}} for k in range(4)]
    with pytest.raises(BadDesign, match=r"targets: 4 targets are over the service's cap of 3"):
        jobs.submit({"targets": four})
    with pytest.raises(CktLoopError, match=r"targets.0: target 'x', field 'gain': unknown spec"):
        jobs.submit({"targets": [{"name": "x", "specs": {"gain": {"min": 1}}}]})
    jobs.submit({"targets": TARGETS})
    jobs.submit({"targets": TARGETS})
    with pytest.raises(JobsBusy, match=r"jobs: 2 jobs are queued"):
        jobs.submit({"targets": TARGETS})


def test_a_failing_campaign_fails_its_job_with_one_line(make) -> None:
    run = FakeRun()
    run.fail = "the simulator is gone"
    jobs, _ = make(run)
    job_id = jobs.submit({"targets": TARGETS})
    jobs.start()
    failed = wait_for(jobs, job_id, "failed")
    assert failed["error"] == "RuntimeError: the simulator is gone"


def test_cancelling_a_queued_job_means_it_never_runs(make) -> None:
    jobs, run = make()
    job_id = jobs.submit({"targets": TARGETS})
    assert jobs.cancel(job_id)["status"] == "cancelled"
    assert jobs.cancel(job_id)["status"] == "cancelled"  # again: unchanged
    jobs.start()
    time.sleep(0.2)
    assert run.calls == [] and jobs.status(job_id)["status"] == "cancelled"


def test_cancelling_a_running_job_stops_its_campaign(make) -> None:
    run = FakeRun()
    run.hold = True
    jobs, _ = make(run)
    job_id = jobs.submit({"targets": TARGETS})
    jobs.start()
    wait_for(jobs, job_id, "running")
    assert jobs.cancel(job_id)["status"] == "cancelled"
    deadline = time.monotonic() + 10
    while not run.stopped:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.1)
    assert run.stopped == [f"job{job_id}"] and jobs.status(job_id)["status"] == "cancelled"


def test_a_job_cancelled_in_the_store_by_another_process_stops_too(make, store: Store) -> None:
    run = FakeRun()
    run.hold = True
    jobs, _ = make(run)
    job_id = jobs.submit({"targets": TARGETS})
    jobs.start()
    wait_for(jobs, job_id, "running")
    store.cancel_job(job_id)
    deadline = time.monotonic() + 10
    while not run.stopped:
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_a_stopped_service_leaves_its_jobs_to_the_next_one(make) -> None:
    run = FakeRun()
    run.hold = True
    jobs, _ = make(run)
    job_id = jobs.submit({"targets": TARGETS})
    jobs.start()
    wait_for(jobs, job_id, "running")
    jobs.stop(timeout_s=5)
    assert jobs.status(job_id)["status"] == "running"  # not done, not failed: left for the next start
    after, run2 = make()
    assert after.start() == [job_id]
    wait_for(after, job_id, "done")
    assert [c.name for c in run2.calls] == [f"job{job_id}"]


def test_unknown_jobs_and_impossible_moves_are_refused(make) -> None:
    jobs, _ = make()
    with pytest.raises(JobNotFound, match="no design job with id 7"):
        jobs.status(7)
    with pytest.raises(JobNotFound):
        jobs.cancel(7)
    job_id = jobs.submit({"targets": TARGETS})
    with pytest.raises(JobConflict, match=f"job {job_id} is queued and has no results yet"):
        jobs.report(job_id)
    jobs.start()
    wait_for(jobs, job_id, "done")
    with pytest.raises(JobConflict, match=f"job {job_id} is already done"):
        jobs.cancel(job_id)


def test_jobs_run_with_the_services_models_or_random_search_on_a_fraction_of_a_cpu() -> None:
    from orchestrator.serve.config import ServeConfig
    from orchestrator.serve.jobs import JOB_SIMULATOR_CPUS, campaign_settings

    served = campaign_settings(ServeConfig())
    config = ServeConfig()
    assert (served.generator, served.surrogate) == (config.generator_checkpoint(), config.surrogate_checkpoint())
    assert (served.source, served.workers, served.seed, served.simulator_cpus) == (
        "generator",
        2,
        0,
        JOB_SIMULATOR_CPUS,
    )
    random = campaign_settings(ServeConfig.model_validate({"designs": {"random": True, "workers": 1, "seed": 3}}))
    assert (random.source, random.workers, random.seed, random.search.refine_share) == ("random", 1, 3, 0.0)


def test_times_are_given_in_utc(make) -> None:
    from datetime import UTC, datetime, timedelta

    jobs, _ = make()
    submitted = jobs.status(jobs.submit({"targets": TARGETS}))["submitted_at"]
    assert submitted.tzinfo is not None and abs(submitted - datetime.now(UTC)) < timedelta(minutes=5)

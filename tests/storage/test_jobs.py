"""Design jobs in the store: queued, taken by one runner, ended, cancelled, requeued after a kill."""

from __future__ import annotations

import pytest

from storage import Store, StoreError

REQUEST = {"name": "amp", "budget": 60, "targets": [{"name": "a", "specs": {"gain_db": {"min": 40}}}]}


def test_a_job_is_queued_then_runs_then_ends(store: Store) -> None:
    job = store.add_job(REQUEST, name="amp")
    assert (job.status, job.name, job.campaign, job.request, job.error) == (
        "queued",
        "amp",
        f"job{job.id}-amp",
        REQUEST,
        None,
    )
    assert job.started_at is None and job.finished_at is None and not job.finished
    assert store.start_job(job.id)
    assert not store.start_job(job.id)  # a second runner does not get it
    running = store.job(job.id)
    assert running.status == "running" and running.started_at is not None
    assert store.end_job(job.id, "done")
    done = store.job(job.id)
    assert (done.status, done.finished) == ("done", True) and done.finished_at is not None
    assert not store.end_job(job.id, "failed", "late")  # a finished job stays as it is
    assert store.job(job.id).status == "done"


def test_unnamed_jobs_get_their_own_campaign_names(store: Store) -> None:
    first, second = store.add_job(REQUEST), store.add_job(REQUEST)
    assert (first.campaign, second.campaign) == (f"job{first.id}", f"job{second.id}")
    assert [j.id for j in store.jobs()] == [first.id, second.id]
    assert [j.id for j in store.jobs("queued")] == [first.id, second.id]
    assert store.jobs(["running", "done"]) == []


def test_a_failed_job_keeps_its_error(store: Store) -> None:
    job = store.add_job(REQUEST)
    store.start_job(job.id)
    assert store.end_job(job.id, "failed", "RuntimeError: " + "x" * 5000)
    failed = store.job(job.id)
    assert failed.status == "failed" and failed.error is not None and len(failed.error) == 2000


def test_cancelling_stops_queued_and_running_jobs_only(store: Store) -> None:
    queued, running, done = (store.add_job(REQUEST) for _ in range(3))
    store.start_job(running.id)
    store.start_job(done.id)
    store.end_job(done.id, "done")
    assert store.cancel_job(queued.id).status == "cancelled"
    assert store.cancel_job(running.id).status == "cancelled"
    assert not store.end_job(running.id, "done")  # the runner finishing after the cancel changes nothing
    assert store.job(running.id).status == "cancelled"
    assert not store.start_job(queued.id)
    assert store.cancel_job(done.id).status == "done"


def test_running_jobs_go_back_to_the_queue_with_their_start_time(store: Store) -> None:
    a, b = store.add_job(REQUEST), store.add_job(REQUEST)
    store.start_job(a.id)
    started = store.job(a.id).started_at
    assert store.requeue_jobs() == [a.id]
    assert [j.status for j in store.jobs()] == ["queued", "queued"]
    assert store.start_job(a.id) and store.job(a.id).started_at == started
    assert store.job(b.id).started_at is None


def test_bad_job_requests_name_what_is_wrong(store: Store) -> None:
    with pytest.raises(StoreError, match="no design job with id 99"):
        store.job(99)
    with pytest.raises(StoreError, match="unknown job status 'paused'"):
        store.jobs("paused")
    with pytest.raises(StoreError, match="a job name must be a non-empty string of at most 150"):
        store.add_job(REQUEST, name="x" * 151)
    with pytest.raises(StoreError, match="the job request is not JSON-serialisable"):
        store.add_job({"budget": float("nan")})
    job = store.add_job(REQUEST)
    with pytest.raises(StoreError, match="a running job ends done or failed, not 'cancelled'"):
        store.end_job(job.id, "cancelled")
    with pytest.raises(StoreError, match="a failed job needs its error"):
        store.end_job(job.id, "failed")


def test_a_job_whose_campaign_name_is_taken_is_refused_whole(store: Store) -> None:
    store.ensure_campaign("job1", {"x": 1})
    with pytest.raises(StoreError, match="a campaign named 'job1' already exists"):
        store.add_job(REQUEST)
    assert store.jobs() == []

"""One PostgreSQL for many processes: per-process pools, and transactions that survive a server restart.

The restart tests run their own server (``local_pg``: a temporary folder on a free port), never the
machine's shared one.
"""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError, ProgrammingError

from storage import Store, StoreError
from storage.engine import backoff_s, connection_lost, pool_settings
from storage.models import dataset_circuits, simulations
from storage.testing import LocalPostgres, fake_performance, rows


def _error(cls: type, sqlstate: str | None) -> Exception:
    class Orig(Exception):
        pass

    orig = Orig("boom")
    orig.sqlstate = sqlstate  # type: ignore[attr-defined]
    return cls("SELECT 1", {}, orig)  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("cls", "sqlstate", "lost"),
    [
        (OperationalError, None, True),  # refused, reset, closed unexpectedly (client side)
        (OperationalError, "08006", True),  # connection failure
        (OperationalError, "57P01", True),  # admin shutdown (pg_ctl stop -m fast)
        (OperationalError, "57P03", True),  # the database system is starting up
        (OperationalError, "40P01", False),  # a deadlock: retried as a conflict, not a reconnect
        (OperationalError, "53100", False),  # disk full
        (ProgrammingError, None, False),
        (ProgrammingError, "42P01", False),  # no such table
    ],
)
def test_connection_lost_tells_lost_connections_from_bad_transactions(
    cls: type, sqlstate: str | None, lost: bool
) -> None:
    assert connection_lost(_error(cls, sqlstate)) is lost


def test_backoff_doubles_to_a_cap_with_jitter() -> None:
    for attempt, top in [(0, 0.1), (1, 0.2), (3, 0.8), (10, 5.0)]:
        pauses = [backoff_s(attempt) for _ in range(50)]
        assert all(top / 2 <= p <= top for p in pauses)


def test_pool_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert pool_settings()["pool_size"] == 2
    monkeypatch.setenv("CKTLOOP_DB_POOL_SIZE", "7")
    monkeypatch.setenv("CKTLOOP_DB_RETRY_S", "2.5")
    assert pool_settings()["pool_size"] == 7 and pool_settings()["retry_s"] == 2.5
    for var, value, message in [
        ("CKTLOOP_DB_POOL_SIZE", "0", "CKTLOOP_DB_POOL_SIZE must be an integer >= 1, got '0'"),
        ("CKTLOOP_DB_POOL_SIZE", "2.5", "CKTLOOP_DB_POOL_SIZE must be an integer >= 1, got '2.5'"),
        ("CKTLOOP_DB_RETRY_S", "soon", "CKTLOOP_DB_RETRY_S must be a number >= 0, got 'soon'"),
    ]:
        monkeypatch.setenv(var, value)
        with pytest.raises(StoreError, match=message):
            pool_settings()
        monkeypatch.delenv(var)


@pytest.mark.postgres
def test_pool_size_is_per_process_setting(local_pg: LocalPostgres, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CKTLOOP_DB_POOL_SIZE", "3")
    monkeypatch.setenv("CKTLOOP_DB_MAX_OVERFLOW", "1")
    with Store.open(local_pg.url) as store:
        assert store.engine.pool.size() == 3  # type: ignore[attr-defined]
        assert store.engine.pool._max_overflow == 1  # type: ignore[attr-defined]
    monkeypatch.setenv("CKTLOOP_DB_POOL_SIZE", "none")
    with pytest.raises(StoreError, match="CKTLOOP_DB_POOL_SIZE must be an integer"):
        Store.open(local_pg.url)


WRITERS, CHUNK, CHUNKS = 3, 5, 30  # each writer: CHUNKS transactions of CHUNK circuits, then their results


@pytest.mark.postgres
@pytest.mark.slow
def test_server_restarted_mid_write_writers_retry_and_nothing_is_lost(local_pg: LocalPostgres) -> None:
    data = rows(WRITERS * CHUNK * CHUNKS)
    store = Store.open(local_pg.url)
    did = store.ensure_dataset("shared", 1, len(data), {"family": "default"})
    progress = [0] * WRITERS
    errors: list[str] = []

    def writer(w: int) -> None:
        mine = data[w::WRITERS]
        try:
            for i in range(0, len(mine), CHUNK):
                chunk = mine[i : i + CHUNK]
                store.add_dataset_circuits(did, chunk)
                store.add_simulations(
                    "ngspice", "t", [(r.circuit.key, fake_performance(r.circuit.key), 0.1) for r in chunk]
                )
                progress[w] += 1
                time.sleep(0.05)  # the writers are still busy when the server goes
        except Exception as exc:  # reported below: a writer that gave up is the failure under test
            errors.append(f"writer {w}: {exc}")

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
    for t in threads:
        t.start()
    while min(progress) < 2 and not errors and any(t.is_alive() for t in threads):
        time.sleep(0.02)
    local_pg.stop("immediate")  # a crash: open transactions and connections are cut
    at_stop = list(progress)
    time.sleep(1.5)  # down for a while: reconnects are refused
    local_pg.start()
    for t in threads:
        t.join(timeout=300)

    assert errors == []
    assert min(at_stop) >= 2 and max(at_stop) < len(data) // WRITERS // CHUNK  # the crash came mid-write
    assert store.reconnects > 0
    with store.engine.connect() as conn:
        members = conn.execute(select(dataset_circuits.c.position).where(dataset_circuits.c.dataset_id == did)).all()
        simulated = conn.execute(select(simulations.c.circuit_id)).all()
    assert sorted(p for (p,) in members) == sorted(r.position for r in data)  # each once, none missing
    assert len(simulated) == len(data) and store.pending(did, "ngspice") == []
    store.close()


@pytest.mark.postgres
def test_a_server_that_stays_down_is_a_one_line_error(local_pg: LocalPostgres, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CKTLOOP_DB_RETRY_S", "1")
    store = Store.open(local_pg.url)
    local_pg.stop("fast")
    started = time.monotonic()
    with pytest.raises(StoreError) as caught:
        store.datasets()
    assert time.monotonic() - started < 60  # bounded: it gave up (the budget is 1 s plus a connect)
    message = str(caught.value)
    assert message.startswith(f"database error on postgresql+psycopg://postgres@127.0.0.1:{local_pg.port}/postgres")
    assert "\n" not in message and store.reconnects > 0
    store.close()


def test_writes_that_must_not_run_twice_say_so(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Adding campaign time, queueing a job and moving one answer wrongly (or count twice) when re-run after
    their commit landed: they ask ``_write`` not to retry then; the idempotent writes let it."""
    store = Store.open(f"sqlite:///{tmp_path / 'w.db'}")
    cid = store.ensure_campaign("c", {})
    job = store.add_job({"name": "c2", "budget": 10, "targets": []})
    tid = store.ensure_targets(cid, [{"name": "t", "bounds": {"gain_db": {"min": 1.0, "max": None}}}])["t"]
    seen: list[bool] = []  # the idempotent flag of each _write
    write = store._write

    def spy(work, *, idempotent=True):  # type: ignore[no-untyped-def]
        seen.append(idempotent)
        return write(work, idempotent=idempotent)

    monkeypatch.setattr(store, "_write", spy)
    calls = {
        "add_campaign_time": lambda: store.add_campaign_time(cid, 1.5),
        "add_job": lambda: store.add_job({"name": "c3", "budget": 10, "targets": []}),
        "start_job": lambda: store.start_job(job.id),
        "end_job": lambda: store.end_job(job.id, "done"),
        "cancel_job": lambda: store.cancel_job(job.id),
        "requeue_jobs": store.requeue_jobs,
        "ensure_campaign": lambda: store.ensure_campaign("c", {}),
        "fail_target": lambda: store.fail_target(tid, "x"),
    }
    flags = {}
    for name, call in calls.items():
        seen.clear()
        call()
        flags[name] = list(seen)
    store.close()
    assert flags == {name: [name in ("ensure_campaign", "fail_target")] for name in calls}


@pytest.mark.postgres
def test_a_lost_commit_of_a_non_idempotent_write_is_not_repeated(
    local_pg: LocalPostgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store.open(local_pg.url)
    runs = []

    def work(conn):  # type: ignore[no-untyped-def]
        runs.append(1)
        conn.exec_driver_sql("SELECT 1")
        local_pg.stop("immediate")  # the server dies before COMMIT reaches it

    with pytest.raises(StoreError, match="the connection was lost while committing"):
        store._write(work, idempotent=False)
    assert len(runs) == 1
    store.close()

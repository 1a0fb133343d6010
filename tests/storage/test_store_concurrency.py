"""Several processes opening, filling and recording results into one fresh database at once."""

from __future__ import annotations

import multiprocessing as mp
import queue
import traceback
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from storage_data import fake_performance, rows

from storage import Store
from storage.models import circuits, dataset_circuits, datasets, simulations, topologies

WORKERS = 3
N = 200  # circuits in the dataset
SPAN = 100  # rows per worker; worker w writes positions [50w, 50w + 100): most rows are written twice
STEP = 50
CHUNK = 15  # rows per call, so the workers' transactions interleave
CONFIG = {"family": "default", "test_fraction": 0.2}


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _writer(url: str, worker: int, barrier: Any, errors: Any) -> None:
    """One process: open (migrating a fresh database), ensure the dataset, add rows, record results."""
    try:
        data = [r for r in rows(N) if STEP * worker <= r.position < STEP * worker + SPAN]
        if worker % 2:
            data.reverse()  # opposite orders, so overlapping transactions meet head-on
        barrier.wait(timeout=120)
        store = Store.open(url)
        did = store.ensure_dataset("shared", 1, N, CONFIG)
        barrier.wait(timeout=120)
        for chunk in _chunks(data, CHUNK):
            store.add_dataset_circuits(did, chunk)
        for chunk in _chunks(data, CHUNK):
            store.add_simulations("ngspice", f"w{worker}", [(r.circuit.key, fake_performance(r.circuit.key), 0.1) for r in chunk])
        store.close()
    except BaseException:
        errors.put(f"worker {worker}: {traceback.format_exc()}")
        raise


def test_concurrent_writers_with_overlapping_rows(db_url: str) -> None:
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(WORKERS)
    errors = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(db_url, w, barrier, errors)) for w in range(WORKERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    for p in procs:
        if p.is_alive():
            p.kill()
    problems = []
    while True:
        try:
            problems.append(errors.get(timeout=0.5))
        except queue.Empty:
            break
    assert not problems, "\n".join(problems)
    assert [p.exitcode for p in procs] == [0] * WORKERS

    expected = [r for r in rows(N) if r.position < STEP * (WORKERS - 1) + SPAN]
    with Store.open(db_url) as store:
        with store.engine.connect() as conn:
            count = {
                t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                for t in (topologies, circuits, simulations, datasets, dataset_circuits)
            }
        assert count == {
            "topologies": len({r.circuit.topology_key for r in expected}),
            "circuits": len(expected),
            "simulations": len(expected),
            "datasets": 1,
            "dataset_circuits": len(expected),
        }
        exported = list(store.dataset_rows("shared"))
    assert [e["id"] for e in exported] == [r.circuit.key for r in expected]
    assert all(e["status"] == fake_performance(e["id"]).status.value for e in exported)

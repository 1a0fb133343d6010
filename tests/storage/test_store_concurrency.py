"""Several processes opening, filling and recording results into one fresh database at once."""

from __future__ import annotations

import multiprocessing as mp
import queue

from sqlalchemy import func, select

from storage import Store
from storage.models import circuits, dataset_circuits, datasets, simulations, topologies
from storage.testing import concurrent_writer, fake_performance, rows

WORKERS = 3
SPAN = 100  # rows per worker; worker w writes positions [50w, 50w + 100): most rows are written twice
STEP = 50


def test_concurrent_writers_with_overlapping_rows(db_url: str) -> None:
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(WORKERS)
    errors = ctx.Queue()
    procs = [
        ctx.Process(target=concurrent_writer, args=(db_url, w, (STEP * w, STEP * w + SPAN), barrier, errors))
        for w in range(WORKERS)
    ]
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

    expected = rows(STEP * (WORKERS - 1) + SPAN)
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
        assert store.datasets()[0].n == STEP * (WORKERS - 1) + SPAN  # grown by the writer of the last span
    assert [e.id for e in exported] == [r.circuit.key for r in expected]
    assert all(e.measured.status == fake_performance(e.id).status.value for e in exported)
